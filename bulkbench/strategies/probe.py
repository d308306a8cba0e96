"""``probe``: one thing at a time, to see what each costs the server (``bulkbench calibrate``'s black box).

For each image in turn: hash it, create its node and wait for the ack, upload it and wait for the
answer, send its ``image_upload_complete`` and wait, then pause ``gap_s``. Nothing overlaps, so each
answer's latency is the server's cost of that one job (plus a loopback round trip): an ack's grows
with the canvas it rewrites, an upload's with the image's bytes and pixels. A target gives no stage
samples; these timings, in ``images.jsonl``, are what ``calibrate`` fits a target's costs from.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from bulkbench.effects import NOW, Hash, Sleep, Upload
from bulkbench.protocol import OpType
from bulkbench.strategies.common import Drop, answer_cause, http_cause, node_params, send_and_wait, upload_item


@dataclass(frozen=True, slots=True)
class ProbeParams:
    ack_timeout_s: float = 30.0
    upload_timeout_s: float = 120.0
    gap_s: float = 0.2
    """Pause between images: work the server does after an answer (async thumbnails) ends before the next."""


def run(drop: Drop, p: ProbeParams) -> Generator[Any, Any, None]:
    for image in drop.images:
        track = drop.track(image)
        track.created_at = yield NOW
        track.digest = digest = yield Hash(image)
        track.node_sent_at = yield NOW
        answer = yield from send_and_wait(f"{image.id}-node", OpType.NODE_CREATE, node_params(image, digest),
                                          p.ack_timeout_s)
        drop.log.record_answer(answer)
        if not answer.ok:
            track.fail(answer_cause(answer), (yield NOW))
            continue
        track.node_acked_at = track.upload_started_at = yield NOW
        result = yield Upload(image, digest, p.upload_timeout_s)
        drop.log.record_upload(result)
        track.upload_done_at = track.complete_sent_at = yield NOW
        track.upload = result
        if not result.ok:
            track.fail(http_cause(result), track.upload_done_at)
            continue
        answer = yield from send_and_wait(f"{image.id}-done", OpType.IMAGE_UPLOAD_COMPLETE,
                                          upload_item(digest, result), p.ack_timeout_s)
        drop.log.record_answer(answer)
        at = yield NOW
        if answer.ok:
            track.complete_acked_at = track.settled_at = at
        else:
            track.fail(answer_cause(answer), at)
        yield Sleep(p.gap_s)
