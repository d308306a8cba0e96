"""``batched``: the plan. Few, large operations; uploads in small waves; one sync at the end.

- Hash every file (two at a time, as today), then ``batch_node_create`` chunked to fit the
  operation cap; all chunks in flight at once, each answered by one ack with per-item results.
- Upload in waves of 6 (the browser's per-host limit) with a 100 ms pause between waves.
- ``batch_upload_complete`` for every stored file, chunked the same way; then one
  ``request_full_sync`` (deferred state sync) instead of a state round trip per image.
- It follows what the server says: a 429/503 upload waits its Retry-After and tries again; an
  ``overloaded`` batch waits and is resent with the same operation id (the server applies an id
  once); a timed-out chunk is resent, and a chunk that keeps failing is split in half (the
  reference's bulk manager: 3 retries at 1 s x 2^n).
- A lost connection (the server restarted) is not the chunk's fault: it is resent with the same id
  once the socket has reconnected, up to ``resume_retries`` times, without using up its retries; so
  are uploads that got no answer at all.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol

from bulkbench.effects import NOW, AnswerKind, AwaitAnswers, Join, SendFrame, SendOp, Sleep, Upload
from bulkbench.protocol import Event, OpType
from bulkbench.results import Cause
from bulkbench.strategies.common import (
    Drop,
    answer_cause,
    chunks,
    fit_to_cap,
    hash_images,
    http_cause,
    node_params,
    spawn_all,
    spawn_thumbnails,
    upload_item,
)
from bulkbench.workload import ImageSpec


@dataclass(frozen=True, slots=True)
class BatchedParams:
    hash_parallel: int = 2
    hash_gap_s: float = 0.05
    wave_size: int = 6
    wave_pause_s: float = 0.1
    upload_timeout_s: float = 120.0
    upload_attempts: int = 5
    """Tries per upload when the server answers 429/503 (honouring Retry-After)."""
    ack_timeout_s: float = 30.0
    batch_retries: int = 3
    retry_base_s: float = 1.0
    retry_cap_s: float = 8.0
    """Longest pause between two tries that the server gave no Retry-After for."""
    resume_retries: int = 20
    """Further tries of a chunk whose connection was lost, or of an upload that got no answer."""
    thumbnail_gets_per_image: int = 19
    full_sync_at_end: bool = True


class Retrying(Protocol):
    """What ``send_batches`` and ``backoff_s`` need of a strategy's parameters (``batched``, ``pipelined``)."""

    ack_timeout_s: float
    batch_retries: int
    retry_base_s: float
    retry_cap_s: float
    resume_retries: int


def backoff_s(p: Retrying, attempt: int) -> float:
    """The pause before trying again when the server named none (no Retry-After): doubling from
    ``retry_base_s`` with each ``attempt`` (0 for the first), never over ``retry_cap_s``."""
    return min(p.retry_cap_s, p.retry_base_s * 2 ** min(attempt, 8))


def run(drop: Drop, p: BatchedParams) -> Generator[Any, Any, None]:
    yield from hash_images(drop, drop.images, p.hash_parallel, p.hash_gap_s)
    nodes = {image.id: node_params(image, drop.track(image).digest or "") for image in drop.images}
    created = yield from send_batches(drop, OpType.BATCH_NODE_CREATE, "nodes", list(nodes.values()), p, "n")
    for image in drop.images:
        if created.get(image.id):
            drop.track(image).node_acked_at = (yield NOW)

    stored: list[ImageSpec] = []
    for wave in chunks(drop.images, p.wave_size):
        yield Join((yield from spawn_all((upload_with_retries(drop, image, p) for image in wave), "upload")))
        stored += [image for image in wave if (result := drop.track(image).upload) is not None and result.ok]
        yield Sleep(p.wave_pause_s)

    items = [upload_item(drop.track(image).digest or "", drop.track(image).upload) for image in stored]
    done = yield from send_batches(drop, OpType.BATCH_UPLOAD_COMPLETE, "items", items, p, "u")
    at = (yield NOW)
    by_hash = {item["hash"]: image for item, image in zip(items, stored, strict=True)}
    for digest, ok in done.items():
        image = by_hash[digest]
        if ok:
            track = drop.track(image)
            track.complete_acked_at = track.settled_at = at
            yield from spawn_thumbnails(track.upload.body["serverFilename"], p.thumbnail_gets_per_image)
    if p.full_sync_at_end:
        yield SendFrame(Event.REQUEST_FULL_SYNC)


def upload_with_retries(drop: Drop, image: ImageSpec, p: BatchedParams) -> Generator[Any, Any, None]:
    track = drop.track(image)
    refused = unanswered = 0
    while True:
        if track.upload_started_at is None:
            track.upload_started_at = (yield NOW)
        result = yield Upload(image, track.digest or "", p.upload_timeout_s)
        drop.log.record_upload(result)
        track.upload = result
        track.upload_done_at = (yield NOW)
        if result.ok:
            return
        if result.status == 0 and not result.timed_out and unanswered < p.resume_retries:
            unanswered += 1  # connection refused or reset: the server is restarting
            yield Sleep(backoff_s(p, unanswered - 1))
            continue
        refused += 1
        if result.status not in (0, 429, 503) or refused >= p.upload_attempts:
            break
        yield Sleep(result.retry_after_s if result.retry_after_s is not None
                    else backoff_s(p, refused - 1))
    track.fail(http_cause(track.upload), track.upload_done_at or 0.0)


def send_batches(drop: Drop, op_type: OpType, key: str, items: list[dict[str, Any]], p: Retrying,
                 tag: str) -> Generator[Any, Any, dict[str, bool]]:
    """Send ``items`` in cap-sized batches, all in flight; retry and split failures; item key -> ok."""
    field_of = "id" if op_type is OpType.BATCH_NODE_CREATE else "hash"
    track_of = {(t.image.id if field_of == "id" else t.digest): t for t in drop.log.tracks.values()}
    outcome: dict[str, bool] = {}
    pending = [(chunk, 0, 0, f"{drop.client_id}-{tag}{i}")
               for i, chunk in enumerate(fit_to_cap(op_type, key, items, drop.limits))]
    while pending:
        for chunk, _, _, op_id in pending:
            yield SendOp(op_id, op_type, {key: list(chunk)})
        answers = yield AwaitAnswers(tuple(op_id for _, _, _, op_id in pending), p.ack_timeout_s)
        at = (yield NOW)
        retry, delay = [], 0.0
        for chunk, attempt, lost, op_id in pending:
            answer = answers[op_id]
            drop.log.record_answer(answer)
            if answer.ok:
                for item, result in zip(chunk, answer.data["results"], strict=True):
                    # duplicate_node: a resent chunk whose first send was applied after all
                    ok = result["ok"] or result.get("code") == "duplicate_node"
                    outcome[item[field_of]] = ok
                    if not ok:
                        track_of[item[field_of]].fail(Cause.REJECTED, at)
                continue
            if answer.kind is AnswerKind.CONNECTION_LOST and lost < p.resume_retries:
                delay = max(delay, backoff_s(p, lost))
                retry.append((chunk, attempt, lost + 1, op_id))  # sent again once the socket is back
                continue
            refused_for_good = answer.kind is AnswerKind.REJECTED and answer.data.get("code") != "overloaded"
            if refused_for_good or attempt >= p.batch_retries:
                for item in chunk:
                    outcome[item[field_of]] = False
                    track_of[item[field_of]].fail(answer_cause(answer), at)
                continue
            delay = max(delay, answer.retry_after_s or p.retry_base_s * 2**attempt)
            if answer.kind is AnswerKind.TIMEOUT and len(chunk) > 1 and attempt >= 1:
                half = len(chunk) // 2  # a chunk that keeps failing is split, as the bulk manager does
                retry += [(chunk[:half], attempt + 1, lost, f"{op_id}a"),
                          (chunk[half:], attempt + 1, lost, f"{op_id}b")]
            else:
                retry.append((chunk, attempt + 1, lost, op_id))  # same id: the server applies an id once
        if retry:
            yield Sleep(delay)
        pending = retry
    return outcome
