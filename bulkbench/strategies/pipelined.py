"""``pipelined``: the batch protocol run as a pipeline, steered by what the server and the link say.

``batched`` fixes the loss but not the time: it hashes every file first, uploads in waves that wait
for their slowest member (the link idles between waves), and completes every image at the very end.
Here each stage starts as soon as it has work:

- **Hashing runs ahead.** Two hashers feed two queues: the node batcher and the upload window.
- **Nodes in batches as hashes arrive.** ``batch_node_create`` of whatever has been hashed, at most
  ``flush_items`` at a time or every ``flush_s``; one batch in flight, the next gathering meanwhile.
- **A sliding window of uploads**, not waves: a slot is refilled the moment an upload ends. The window
  is steered like congestion control: it grows by one each time a window's worth of uploads has
  ended while the upload goodput still grows (``grow_ratio``); it halves on 429/503 (and every upload
  waits the Retry-After, or a back-off without one), on an upload timeout, and when operation acks
  slow past ``ack_slow_s`` (the server's queue is filling).
- **Completions flushed progressively**: ``batch_upload_complete`` every ``flush_items`` stored files
  or ``flush_s`` seconds, so images settle while the drop goes on, not all at its end. A file is
  completed only once its node is acknowledged.
- **Thumbnails after the uploads** (``thumbnails_after_uploads``): the page already shows its local
  previews, so the viewport's GETs wait until the last upload has ended instead of competing with the
  uploads for the browser's 6 connections and for a per-address rate limit.
- **The viewport's GETs paced by the server** (``viewport.ViewportLoader``): a 429, or a 503 for a
  thumbnail not made yet, pauses all of them for its Retry-After, not each on its own.

It keeps every promise ``batched`` keeps (its ``send_batches``): idempotent resends with the same
operation id, a chunk that keeps timing out split in half, resending after a lost connection.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from bulkbench.effects import BROWSER_CONNECTIONS_PER_HOST, NOW, Join, Put, SendFrame, Spawn, Take, Upload
from bulkbench.protocol import Event, OpType
from bulkbench.results import Cause
from bulkbench.strategies.batched import backoff_s, send_batches
from bulkbench.strategies.common import Drop, hash_images, http_cause, node_params, upload_item
from bulkbench.strategies.viewport import ViewportLoader
from bulkbench.workload import ImageSpec


class _End:
    """Closes a queue (not None: a ``Take`` that timed out answers None)."""


END = _End()


@dataclass(frozen=True, slots=True)
class PipelinedParams:
    hash_parallel: int = 2
    hash_gap_s: float = 0.0
    """No pacing: hashing only has to stay ahead of the uploads."""
    window_initial: int = 6
    window_min: int = 1
    window_max: int = BROWSER_CONNECTIONS_PER_HOST
    """More uploads than the browser's connections per host would only wait in the browser."""
    grow_ratio: float = 1.05
    """Grow the window while a window's worth of uploads runs this much faster than the last one."""
    ack_slow_s: float = 2.0
    """An operation ack slower than this: the server's queue is filling, the window shrinks."""
    flush_items: int = 25
    flush_s: float = 0.5
    upload_timeout_s: float = 120.0
    upload_attempts: int = 8
    """Tries per upload refused with 429/503 or timed out."""
    ack_timeout_s: float = 30.0
    batch_retries: int = 3
    retry_base_s: float = 1.0
    retry_cap_s: float = 8.0
    resume_retries: int = 20
    thumbnail_gets_per_image: int = 19
    thumbnail_attempts: int = 8
    """Times the viewport asks for one thumbnail the server refused (429, or 503 while it is owed)."""
    thumbnail_cache: bool = True
    """The page keeps the thumbnails it got: the viewport's ``thumbnail_gets_per_image`` asks come to one
    GET per size."""
    thumbnails_after_uploads: bool = True
    full_sync_at_end: bool = True


@dataclass(slots=True)
class Window:
    """The upload window and its steering (the state every process of the drop shares)."""

    p: PipelinedParams
    size: int = 0
    in_flight: int = 0
    paused_until: float = 0.0
    round_bytes: int = 0
    round_ended: int = 0
    round_started: float = 0.0
    last_goodput: float = 0.0
    shrinks: list[tuple[float, str]] = field(default_factory=list)
    """When and why the window shrank (for the tests and the log)."""

    def __post_init__(self) -> None:
        self.size = self.p.window_initial

    def shrink(self, now: float, why: str) -> None:
        self.size = max(self.p.window_min, self.size // 2)
        self.shrinks.append((now, why))
        self._new_round(now)

    def ended_ok(self, now: float, nbytes: int, started_at: float) -> None:
        """An upload ended well: at the end of a round (a window's worth of uploads), grow if the
        goodput grew. Uploads started before a shrink say nothing of the smaller window."""
        if self.shrinks and started_at < self.shrinks[-1][0]:
            return
        self.round_bytes += nbytes
        self.round_ended += 1
        if self.round_ended < self.size:
            return
        elapsed = now - self.round_started
        goodput = self.round_bytes / elapsed if elapsed > 0 else float("inf")
        if goodput >= self.last_goodput * self.p.grow_ratio and self.size < self.p.window_max:
            self.size += 1
        self.last_goodput = goodput
        self._new_round(now)

    def _new_round(self, now: float) -> None:
        self.round_bytes = self.round_ended = 0
        self.round_started = now


def run(drop: Drop, p: PipelinedParams) -> Generator[Any, Any, None]:
    window = Window(p)
    viewport = ViewportLoader(p.thumbnail_gets_per_image, lambda refusals: backoff_s(p, refusals),
                              attempts=p.thumbnail_attempts, cache=p.thumbnail_cache)
    nodes_q, steer_q, done_q = "p-nodes", "p-steer", "p-complete"

    def after_hash(image: ImageSpec) -> Generator[Any, Any, None]:
        yield Put(nodes_q, image)
        yield Put(steer_q, ("hashed", image, None))

    def hashing() -> Generator[Any, Any, None]:
        yield from hash_images(drop, drop.images, p.hash_parallel, p.hash_gap_s, after=after_hash)
        yield Put(nodes_q, END)

    def create_nodes() -> Generator[Any, Any, None]:
        batch = 0
        while (images := (yield from gather(nodes_q, p))) is not None:
            params = [node_params(image, drop.track(image).digest or "") for image in images]
            at = (yield NOW)
            for image in images:
                drop.track(image).node_sent_at = at
            created = yield from send_batches(drop, OpType.BATCH_NODE_CREATE, "nodes", params, p, f"n{batch}")
            batch += 1
            at = (yield NOW)
            for image in images:
                if created.get(image.id):
                    drop.track(image).node_acked_at = at
            note_acks(drop, window, at)
            yield Put(done_q, ("nodes", None, None))
        yield Put(done_q, ("nodes-end", None, None))

    def upload_one(image: ImageSpec) -> Generator[Any, Any, None]:
        track = drop.track(image)
        started = yield NOW
        if track.upload_started_at is None:
            track.upload_started_at = started
        result = yield Upload(image, track.digest or "", p.upload_timeout_s)
        drop.log.record_upload(result)
        track.upload = result
        track.upload_done_at = (yield NOW)
        yield Put(steer_q, ("uploaded", image, (result, started)))

    def steer_uploads() -> Generator[Any, Any, None]:
        """Keep the window full; on each upload's end, steer it, and try a refused one again."""
        remaining = len(drop.images)
        ready: deque[ImageSpec] = deque()
        tries: dict[str, int] = {}
        while remaining:
            now = (yield NOW)
            while ready and window.in_flight < window.size and now >= window.paused_until:
                window.in_flight += 1
                yield Spawn(upload_one(ready.popleft()), "upload")
            paused = bool(ready) and window.in_flight < window.size and now < window.paused_until
            kind, image, outcome = yield from take(steer_q, window.paused_until - now if paused else None)
            if kind == "hashed":
                ready.append(image)
            if kind != "uploaded":
                continue  # hashed, or a pause that ended
            result, started = outcome
            window.in_flight -= 1
            now = (yield NOW)
            if result.ok:
                window.ended_ok(now, image.size_bytes, started)
                remaining -= 1
                yield Put(done_q, ("stored", image, None))
                continue
            tried = tries[image.id] = tries.get(image.id, 0) + 1
            lost = result.status == 0 and not result.timed_out  # refused or reset: the server restarting
            if (lost and tried < p.resume_retries) or (result.status in (0, 429, 503) and tried < p.upload_attempts):
                if not lost:
                    window.shrink(now, f"http {result.status}" if result.status else "upload timeout")
                pause = result.retry_after_s if result.retry_after_s is not None else backoff_s(p, tried - 1)
                window.paused_until = max(window.paused_until, now + pause)
                ready.appendleft(image)
                continue
            drop.track(image).fail(http_cause(result), now)
            remaining -= 1
        yield Put(done_q, ("uploads-end", None, None))

    def complete() -> Generator[Any, Any, None]:
        """Flush stored files whose node is acknowledged: ``flush_items`` at once, or ``flush_s`` after
        the first of them waits."""
        stored: list[ImageSpec] = []
        uploads_done = nodes_done = False
        deadline: float | None = None
        flushes = 0
        thumbnails_later: list[str] = []
        while True:
            now = (yield NOW)
            stored = [image for image in stored if drop.track(image).failure is None]  # a node refused
            ready = [image for image in stored if drop.track(image).node_acked_at is not None]
            finished = uploads_done and nodes_done
            if ready and (finished or len(ready) >= p.flush_items or (deadline is not None and now >= deadline)):
                batch = ready[:p.flush_items]
                taken = {image.id for image in batch}
                stored = [image for image in stored if image.id not in taken]
                later = yield from flush(batch, f"u{flushes}", defer=p.thumbnails_after_uploads and not uploads_done)
                thumbnails_later += later
                flushes += 1
                deadline = ((yield NOW) + p.flush_s) if stored else None
                continue
            if finished:
                for image in stored:  # its node never came: nothing can complete it
                    drop.track(image).fail(Cause.REJECTED, now)
                break
            if deadline is not None and now >= deadline:
                deadline = None  # due, but no node acknowledged yet: wait for the nodes
            kind, image, _ = yield from take(done_q, None if deadline is None else deadline - now)
            if kind == "stored":
                stored.append(image)
                if deadline is None:
                    deadline = (yield NOW) + p.flush_s
            elif kind == "nodes" and stored and deadline is None:
                deadline = (yield NOW)  # files that waited for their nodes go now
            elif kind == "nodes-end":
                nodes_done = True
            elif kind == "uploads-end":
                uploads_done = True
                for name in thumbnails_later:
                    yield from viewport.add(name)
                thumbnails_later.clear()

    def flush(batch: list[ImageSpec], tag: str, defer: bool) -> Generator[Any, Any, list[str]]:
        at = (yield NOW)
        for image in batch:
            drop.track(image).complete_sent_at = at
        items = [upload_item(drop.track(image).digest or "", drop.track(image).upload) for image in batch]
        done = yield from send_batches(drop, OpType.BATCH_UPLOAD_COMPLETE, "items", items, p, tag)
        at = (yield NOW)
        note_acks(drop, window, at)
        later = []
        for image, item in zip(batch, items, strict=True):
            if done.get(item["hash"]):
                track = drop.track(image)
                track.complete_acked_at = track.settled_at = at
                name = track.upload.body["serverFilename"]
                if defer:
                    later.append(name)
                else:
                    yield from viewport.add(name)
        return later

    processes = []
    for process, name in ((hashing(), "hashing"), (create_nodes(), "nodes"), (steer_uploads(), "uploads"),
                          (complete(), "complete")):
        processes.append((yield Spawn(process, name)))
    yield Join(tuple(processes))
    if p.full_sync_at_end:
        yield SendFrame(Event.REQUEST_FULL_SYNC)


def take(queue: str, timeout_s: float | None) -> Generator[Any, Any, tuple[Any, ...]]:
    """The next event of ``queue``; ``("timeout", None, ...)`` when ``timeout_s`` passed first."""
    item = yield Take(queue, timeout_s=None if timeout_s is None else max(0.0, timeout_s))
    return item if item is not None else ("timeout", None, None)


def gather(queue: str, p: PipelinedParams) -> Generator[Any, Any, list[ImageSpec] | None]:
    """Up to ``flush_items`` items of ``queue``, waiting at most ``flush_s`` after the first; None at its end."""
    first = yield Take(queue)
    if first is END:
        return None
    items = [first]
    started = yield NOW
    while len(items) < p.flush_items:
        left = p.flush_s - ((yield NOW) - started)
        if left <= 0:
            break
        item = yield Take(queue, timeout_s=left)
        if item is None:
            break
        if item is END:
            yield Put(queue, END)  # the next gather ends on it
            break
        items.append(item)
    return items


def note_acks(drop: Drop, window: Window, now: float) -> None:
    """A slow operation ack means the server's queue is filling: fewer uploads at once."""
    if drop.log.op_ack_s and drop.log.op_ack_s[-1] > window.p.ack_slow_s:
        window.shrink(now, f"ack {drop.log.op_ack_s[-1]:.1f} s")
