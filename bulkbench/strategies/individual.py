"""``individual``: today's client, as the reference describes it (../shared/reference/imagecanvas.md).

- Files are hashed two at a time, 50 ms apart; as each hash finishes, one ``node_create`` is
  queued and the file joins the upload queue.
- One operation queue, single flight, FIFO: each operation waits a 100 ms merge window, then the
  queue's idle callback (up to 50 ms while the main thread is busy, as it is during a drop), is
  sent, and waits up to 5 s for its answer; a timeout is a failure, never retried.
- Up to 12 uploads at once (the browser lets 6 through per host); no retry; each finished upload
  queues one ``image_upload_complete`` into the same operation queue.
- After every operation, the server pushes ``undo_state_update`` and the client asks
  ``request_undo_state`` (legacy), and the viewport loader GETs the node's thumbnails.
- Every 10 s a cleanup sweeps local nodes the server has not confirmed: after 30 s, or 60 s once
  the canvas holds over 100 nodes. A swept node's queued operations are dropped: ``orphaned``.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from bulkbench.effects import NOW, Join, Put, SendFrame, Sleep, Spawn, Take, Upload
from bulkbench.protocol import Event, OpType
from bulkbench.results import Cause
from bulkbench.strategies.common import (
    Drop,
    answer_cause,
    hash_images,
    http_cause,
    node_params,
    send_and_wait,
    spawn_all,
    spawn_thumbnails,
    upload_item,
)
from bulkbench.workload import ImageSpec

DONE = None
"""Sentinel closing a queue."""


@dataclass(frozen=True, slots=True)
class IndividualParams:
    merge_window_s: float = 0.1
    idle_wait_s: float = 0.05
    """requestIdleCallback's timeout: during a drop the main thread is never idle, so it is reached."""
    ack_timeout_s: float = 5.0
    upload_concurrency: int = 12
    upload_timeout_s: float = 120.0
    hash_parallel: int = 2
    hash_gap_s: float = 0.05
    request_undo_state: bool = True
    """Ask ``request_undo_state`` after each ``undo_state_update`` push (the reference does)."""
    thumbnail_gets_per_image: int = 19
    """Viewport thumbnail GETs per image once it has its URL (about 500 after a 26-image drop)."""
    orphan_sweep_every_s: float = 10.0
    orphan_after_s: float = 30.0
    orphan_after_large_s: float = 60.0
    large_canvas_nodes: int = 100


def run(drop: Drop, params: IndividualParams) -> Generator[Any, Any, None]:
    yield from run_images(drop, drop.images, params, queue_prefix="")


def run_images(drop: Drop, images: Sequence[ImageSpec], p: IndividualParams,
               queue_prefix: str) -> Generator[Any, Any, None]:
    """The whole individual flow for ``images`` (all of a drop, or one chunk of ``chunked``)."""
    ops, uploads, stop_sweeper = (f"{queue_prefix}ops", f"{queue_prefix}uploads", f"{queue_prefix}sweep")
    start = (yield NOW)
    for image in images:
        drop.track(image).created_at = start
    canvas_nodes = len(drop.log.tracks)  # previews and nodes exist locally before any traffic
    orphan_after = p.orphan_after_large_s if canvas_nodes > p.large_canvas_nodes else p.orphan_after_s

    def queue_node_and_upload(image: ImageSpec) -> Generator[Any, Any, None]:
        yield Put(ops, ("node", image))
        yield Put(uploads, image)

    def uploader() -> Generator[Any, Any, None]:
        while (image := (yield Take(uploads))) is not DONE:
            track = drop.track(image)
            track.upload_started_at = (yield NOW)
            result = yield Upload(image, track.digest or "", p.upload_timeout_s)
            drop.log.record_upload(result)
            track.upload_done_at = (yield NOW)
            track.upload = result
            if result.ok:
                yield Put(ops, ("complete", image))
            else:
                track.fail(http_cause(result), track.upload_done_at)

    def operation_queue() -> Generator[Any, Any, None]:
        while (item := (yield Take(ops))) is not DONE:
            kind, image = item
            track = drop.track(image)
            if track.orphaned:
                continue  # the cleanup removed its node: its operations go nowhere
            yield Sleep(p.merge_window_s + p.idle_wait_s)
            sent = (yield NOW)
            if kind == "node":
                track.node_sent_at = sent
                answer = yield from send_and_wait(f"{image.id}-node", OpType.NODE_CREATE,
                                                  node_params(image, track.digest or ""), p.ack_timeout_s)
            else:
                assert track.upload is not None
                track.complete_sent_at = sent
                answer = yield from send_and_wait(f"{image.id}-done", OpType.IMAGE_UPLOAD_COMPLETE,
                                                  upload_item(track.digest or "", track.upload), p.ack_timeout_s)
            drop.log.record_answer(answer)
            at = (yield NOW)
            if not answer.ok:
                track.fail(answer_cause(answer), at)
                continue
            if kind == "node":
                track.node_acked_at = at
            else:
                track.complete_acked_at = track.settled_at = at
                yield from spawn_thumbnails(track.upload.body["serverFilename"], p.thumbnail_gets_per_image)
            if p.request_undo_state:
                yield SendFrame(Event.REQUEST_UNDO_STATE)

    def orphan_sweeper() -> Generator[Any, Any, None]:
        # nodes the server has not confirmed yet, in drop order (a confirmed or swept one never returns)
        unconfirmed = [drop.track(image) for image in images]
        while (yield Take(stop_sweeper, timeout_s=p.orphan_sweep_every_s)) is None:
            at = (yield NOW)
            waiting = []
            for track in unconfirmed:
                if track.node_acked_at is not None or track.orphaned:
                    continue
                if at - track.created_at >= orphan_after:
                    track.orphaned = True
                    track.fail(Cause.ORPHANED, at)
                else:
                    waiting.append(track)
            unconfirmed = waiting

    sweeper = yield Spawn(orphan_sweeper(), "orphan-sweeper")
    queue = yield Spawn(operation_queue(), "operation-queue")
    hashing = yield Spawn(hash_images(drop, images, p.hash_parallel, p.hash_gap_s, queue_node_and_upload), "hashing")
    upload_slots = yield from spawn_all((uploader() for _ in range(p.upload_concurrency)), "upload")
    yield Join((hashing,))
    for _ in upload_slots:
        yield Put(uploads, DONE)
    yield Join(upload_slots)
    yield Put(ops, DONE)
    yield Join((queue,))
    yield Put(stop_sweeper, True)
    yield Join((sweeper,))
