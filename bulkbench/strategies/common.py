"""What every strategy shares: the drop it works on, the client's log of it, and small steps.

The log is the client's own account (what it sent, what came back, why it gave up on an image).
It is never the judge of success (the server's canvas is, see ``bulkbench.truth``); it supplies
the *cause* of a failure the server's state shows.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bulkbench.effects import (
    Answer,
    AnswerKind,
    AwaitAnswers,
    Fetch,
    Hash,
    HttpResult,
    Join,
    Post,
    SendOp,
    Sleep,
    Spawn,
)
from bulkbench.limits import Limits
from bulkbench.protocol import OpType, dumps, execute_operation_frame, frame_bytes, thumbnail_url
from bulkbench.results import Cause
from bulkbench.workload import ImageSpec

T = TypeVar("T")

NODE_TYPE = "media/image"
GRID_COLUMNS = 20
THUMBNAIL_SIZES = (64, 256)


@dataclass(slots=True)
class ImageTrack:
    """The client's record of one image (times in seconds since the drop started)."""

    image: ImageSpec
    created_at: float = 0.0
    digest: str | None = None
    node_sent_at: float | None = None
    node_acked_at: float | None = None
    upload_started_at: float | None = None
    upload_done_at: float | None = None
    upload: HttpResult | None = None
    complete_sent_at: float | None = None
    complete_acked_at: float | None = None
    settled_at: float | None = None
    orphaned: bool = False
    failure: str | None = None
    """The first reason the client gave up on this image, if it did."""
    on_give_up: Callable[[], None] | None = None
    """Told once, when the client first gives up on this image (``Drop.watch_give_ups``)."""

    def fail(self, cause: Cause | str, now: float) -> None:
        if self.failure is None:
            self.failure = str(cause)
            if self.on_give_up is not None:
                self.on_give_up()
        if self.settled_at is None:
            self.settled_at = now

    def timings(self) -> dict[str, float]:
        names = ("node_sent_at", "node_acked_at", "upload_started_at", "upload_done_at",
                 "complete_sent_at", "complete_acked_at", "settled_at")
        return {n: round(v, 4) for n in names if (v := getattr(self, n)) is not None}


@dataclass(slots=True)
class DropLog:
    tracks: dict[str, ImageTrack] = field(default_factory=dict)
    op_ack_s: list[float] = field(default_factory=list)
    upload_s: list[float] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)
    """Answers by kind (ack, rejected, timeout, connection_lost), for the summary."""
    heartbeats: list[list[float | None]] = field(default_factory=list)
    """The page's heartbeat, if it has one: [sent at, its answer handled how late, or None] per ping, as the
    browser engine records a real page's."""
    reconnected_at: list[float] = field(default_factory=list)
    """When the page closed its socket and opened a new one (its heartbeat found it dead)."""

    def record_answer(self, answer: Answer) -> None:
        self.answers[answer.kind.value] = self.answers.get(answer.kind.value, 0) + 1
        if answer.kind is AnswerKind.ACK:
            self.op_ack_s.append(answer.latency_s)

    def record_upload(self, result: HttpResult) -> None:
        if result.status:
            self.upload_s.append(result.latency_s)

    def heartbeat_extra(self) -> dict[str, Any]:
        """The page's heartbeat for its drop's ``extra``, in every engine (nothing for a page without one)."""
        return {"heartbeats": self.heartbeats, "reconnected_at": self.reconnected_at} if self.heartbeats else {}


@dataclass(slots=True)
class Drop:
    """One user's drop: where it goes, what it holds, what the client believes of the server."""

    canvas_id: str
    images: list[ImageSpec]
    limits: Limits = field(default_factory=Limits)
    """The limits the client was built for (the operation cap it chunks batches to)."""
    client_id: str = "client"
    """Unique per user: prefixes operation ids, which the server treats as idempotency keys."""
    log: DropLog = field(default_factory=DropLog)
    seed: int = 0
    """What the client's own chance draws come from (fc1316b's layout race): the run's seed, and in the
    model the replication's; with ``client_id`` it gives each user of a run its own draw."""

    def __post_init__(self) -> None:
        for image in self.images:
            self.log.tracks.setdefault(image.id, ImageTrack(image))

    def watch_give_ups(self, told: Callable[[], None]) -> None:
        """Call ``told`` each time the client first gives up on one of this drop's images (the model stops
        a replication that has already missed its failure target)."""
        for track in self.log.tracks.values():
            track.on_give_up = told

    def track(self, image: ImageSpec) -> ImageTrack:
        return self.log.tracks[image.id]

    def chance(self, what: str) -> random.Random:
        """The draws of one of the client's chances, the same for the same seed and user in every engine
        and process (a string seed: not Python's salted ``hash``)."""
        return random.Random(f"{what}-{self.seed}-{self.client_id}")


def node_params(image: ImageSpec, digest: str) -> dict[str, Any]:
    """A node_create's params, shaped like the reference client's (about 300 bytes)."""
    return {
        "id": image.id,
        "type": NODE_TYPE,
        "pos": [(image.index % GRID_COLUMNS) * 170, (image.index // GRID_COLUMNS) * 130],
        "size": [150, 100],
        "properties": {"hash": digest, "filename": image.filename, "width": image.width,
                       "height": image.height, "bytes": image.size_bytes, "temporary": True},
    }


def upload_item(digest: str, result: HttpResult) -> dict[str, str]:
    return {"hash": digest, "serverUrl": result.body["url"], "serverFilename": result.body["serverFilename"]}


def http_cause(result: HttpResult) -> Cause:
    if result.timed_out or result.status == 0:
        return Cause.HTTP_TIMEOUT
    return {429: Cause.HTTP_429, 503: Cause.HTTP_503}.get(result.status, Cause.HTTP_ERROR)


def answer_cause(answer: Answer) -> Cause:
    return {
        AnswerKind.TIMEOUT: Cause.ACK_TIMEOUT,
        AnswerKind.REJECTED: Cause.REJECTED,
        AnswerKind.CONNECTION_LOST: Cause.CONNECTION_LOST,
    }.get(answer.kind, Cause.REJECTED)


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def fit_to_cap(op_type: OpType, key: str, items: Sequence[dict[str, Any]], limits: Limits) -> list[list[dict]]:
    """Split batch items so that every frame stays under the message cap and the item limit."""
    out: list[list[dict]] = []
    current: list[dict] = []
    envelope = frame_bytes(execute_operation_frame("x" * limits.max_id_chars, op_type, {key: []}))
    size = envelope
    for item in items:
        item_bytes = frame_bytes(dumps(item)) + 1  # and its comma
        if current and (size + item_bytes > limits.max_message_bytes or len(current) >= limits.max_batch_items):
            out.append(current)
            current, size = [], envelope
        current.append(item)
        size += item_bytes
    if current:
        out.append(current)
    return out


def send_and_wait(operation_id: str, op_type: OpType, params: dict[str, Any],
                  timeout_s: float) -> Generator[Any, Any, Answer]:
    """One operation, single-flight: send it, wait for its answer."""
    yield SendOp(operation_id, op_type, params)
    answers = yield AwaitAnswers((operation_id,), timeout_s)
    return answers[operation_id]


def viewport_paths(server_filename: str, count: int) -> tuple[str, ...]:
    """The ``count`` thumbnail GETs the canvas's viewport makes for one node, as the reference's log shows
    (the same few sizes, asked again and again)."""
    stem = server_filename.rsplit(".", 1)[0]
    return tuple(thumbnail_url(THUMBNAIL_SIZES[k % len(THUMBNAIL_SIZES)], stem) for k in range(count))


def fetch_thumbnails(server_filename: str, count: int) -> Generator[Any, Any, None]:
    """The canvas's viewport loader asking for a node's thumbnails."""
    yield Fetch(viewport_paths(server_filename, count))


def spawn_thumbnails(server_filename: str, count: int) -> Generator[Any, Any, Any]:
    if count <= 0:
        return None
    return (yield Spawn(fetch_thumbnails(server_filename, count), "thumbnails"))


THUMBNAIL_GENERATE_PATH = "/api/thumbnails/generate"
"""ImageCanvas's route that makes a thumbnail size on demand; its page calls it before each GET."""


@dataclass(frozen=True, slots=True)
class PageThumbnails:
    """How a page asks for one image's thumbnails once its node carries a URL (fc1316b's renderer):
    every size at once (``WebGLRenderer.js:1815-1840``), each a POST that has it made, then its GET, a
    failed GET (404, 429) tried again after each of ``retry_pauses_s`` (``cache.js:1397-1403``)."""

    sizes: tuple[int, ...]
    generate: bool = True
    retry_pauses_s: tuple[float, ...] = (1.0, 2.0, 4.0)


def load_page_thumbnails(server_filename: str, digest: str, page: PageThumbnails) -> Generator[Any, Any, None]:
    stem = server_filename.rsplit(".", 1)[0]

    def one_size(size: int) -> Generator[Any, Any, None]:
        if page.generate:
            yield Post(THUMBNAIL_GENERATE_PATH, {"hash": digest, "sizes": [size]})
        path = thumbnail_url(size, stem)
        (result,) = yield Fetch((path,))
        for pause in page.retry_pauses_s:
            if result.ok:
                break
            yield Sleep(pause)
            (result,) = yield Fetch((path,))

    yield Join((yield from spawn_all((one_size(size) for size in page.sizes), "thumbnail-size")))


def spawn_all(processes: Iterable[Generator[Any, Any, Any]], name: str) -> Generator[Any, Any, tuple[Any, ...]]:
    """Spawn each process; the handles, for ``Join``."""
    handles = []
    for process in processes:
        handles.append((yield Spawn(process, name)))
    return tuple(handles)


def hash_images(drop: Drop, images: Sequence[ImageSpec], parallel: int, gap_s: float,
                after: Callable[[ImageSpec], Generator[Any, Any, None]] | None = None) -> Generator[Any, Any, None]:
    """Hash files ``parallel`` at a time, ``gap_s`` apart (the reference's pacing); ``after(image)`` runs
    as each one's hash is known (today's client queues its node_create there)."""
    todo = list(images)

    def hasher() -> Generator[Any, Any, None]:
        while todo:
            image = todo.pop(0)
            drop.track(image).digest = yield Hash(image)
            if after is not None:
                yield from after(image)
            yield Sleep(gap_s)

    yield Join((yield from spawn_all((hasher() for _ in range(parallel)), "hasher")))
