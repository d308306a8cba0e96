"""``individual``: today's client: one operation per step of each image, one queue, single flight.

Its defaults are the client as the plan describes it when the failure was reported
(../shared/reference/imagecanvas.md): up to 12 uploads, none tried again, and local nodes the server
has not confirmed swept as orphans. ``individual:fc1316b`` (``scenarios/strategies.toml``) is the
client of the ImageCanvas code we can run (commit fc1316b), as its own page measured in a browser
behaves (``bulkbench browser-run``); each parameter below names the mechanism it stands for.

- Files are hashed ``hash_parallel`` at a time, ``hash_gap_s`` apart; as each hash finishes, its
  ``node_create`` is queued, and its upload (at once, or on the upload coordinator's next tick).
- One operation queue, single flight, FIFO: an operation waits the merge window, then the queue's idle
  callback, is sent, and waits ``ack_timeout_s`` for its answer; a timeout is a failure, never retried.
  After each answer the client asks ``request_undo_state``.
- Uploads run ``upload_concurrency`` at a time (the browser lets 6 through per host); each finished
  upload queues one ``image_upload_complete``. The page's client tries a failed upload again after
  ``upload_retry_pause_s`` (its coordinator never gives up: bounded here by ``upload_attempts``),
  drops to ``upload_concurrency_after_failure`` slots for good after a first failure, and, once every
  file has been read again (``reread_s_per_mb``), uploads every image once more unless its first
  upload is still waiting or under way (``second_upload``): every image then gets two completions.
- Once an image's node carries its URL, the viewport loader asks for its thumbnails (fc1316b's page: as
  its upload ends, all six sizes).
- fc1316b's page does all of this from one busy main thread (``page.MainThread``): each step (a hash's
  tasks, an operation sent, its answer handled, an upload started, its result taken) waits for a frame
  that grows with the images uploaded while hashing runs, and its previews and second reads are long
  work that the steps after them wait for.
- fc1316b's page lays the drop out before its last previews exist where it has had no idle moment for
  ``layout_unready_s``: those files get no node (its own count: "Previews ready at layout").
- fc1316b's page pings its server every ``heartbeat_every_s`` and, on a thread so busy that no answer was
  handled for 30 s at a check, closes its socket and opens one that never joins the canvas again
  (``strategies.heartbeat``): the server refuses every operation after it.
- Every ``orphan_sweep_every_s`` a cleanup sweeps local nodes the server has not confirmed (the plan's
  client; fc1316b's sweep never touches dropped nodes): a swept node's queued operations are dropped.
"""

from __future__ import annotations

import random
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bulkbench.config import ConfigError
from bulkbench.effects import NOW, Join, Put, SendFrame, Sleep, Spawn, Take, Upload
from bulkbench.protocol import Event, OpType
from bulkbench.results import Cause
from bulkbench.strategies.common import (
    Drop,
    PageThumbnails,
    answer_cause,
    hash_images,
    http_cause,
    load_page_thumbnails,
    node_params,
    send_and_wait,
    spawn_all,
    spawn_thumbnails,
    upload_item,
)
from bulkbench.strategies.heartbeat import HeartbeatRule, heartbeat
from bulkbench.strategies.page import MainThread
from bulkbench.workload import ImageSpec

DONE = None
"""Sentinel closing a queue."""
TOBLOB_IDLE_TIMEOUT_S = 1.0
"""Chromium encodes a JPEG or PNG ``canvas.toBlob`` in an idle task, or on the main thread once this long
has passed without one (Blink's ``canvas_async_blob_creator.cc``: ``kIdleTaskStartTimeoutDelayMs`` = 1000
on Linux, Mac and Windows)."""


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
    """Ask ``request_undo_state`` after each operation's answer (the reference does)."""
    thumbnail_gets_per_image: int = 19
    """Viewport thumbnail GETs per image once it has its URL (about 500 after a 26-image drop)."""
    orphan_sweep: bool = True
    """Sweep dropped nodes the server has not confirmed (the plan's client); fc1316b sweeps only nodes
    made by duplicate and paste (``StateSyncManager.js:1517``), never dropped ones."""
    orphan_sweep_every_s: float = 10.0
    orphan_after_s: float = 30.0
    orphan_after_large_s: float = 60.0
    large_canvas_nodes: int = 100
    upload_tick_s: float = 0.0
    """0: a file joins the upload queue as its hash is known; > 0: on the upload coordinator's next tick
    (fc1316b's ``ImageUploadCoordinator`` checks every 2 s)."""
    upload_retry_pause_s: float = 0.0
    """A failed upload (429, timeout, any error) is queued again after this pause (fc1316b: 2 s)."""
    upload_attempts: int = 1
    """Tries of one image's first upload (fc1316b's coordinator resets its counter and never stops;
    a bound keeps every drop finite)."""
    upload_concurrency_after_failure: int = 0
    """Upload slots from the first failed upload on (fc1316b: the failure rate the upload manager keeps
    never falls, so one 429 pins bulk uploads at 3); 0: unchanged."""
    second_upload: bool = False
    """Once every file is hashed and read again, upload each image once more unless its first upload is
    still waiting or under way (then the two share it); either way it gets a second completion
    (fc1316b: ``dragdrop.js`` 709-759, its own upload stage, beside the coordinator's)."""
    reread_s_per_mb: float = 0.0
    """The page reads every file again, one at a time, before its own upload stage starts ..."""
    reread_s_per_file: float = 0.0
    """... and works this long more on each (fc1316b cuts its own thumbnails from it for every node out of
    view, ``dragdrop.js`` 632-671): long work, which every other step of the page waits for."""
    page_preview_s_per_image: float = 0.0
    """Before anything is sent the page makes a small preview of every file and lays out the drop, on its
    main thread (fc1316b: 64 px previews 4 at a time, ``dragdrop.js`` 194-446; its first node_create left
    1.4-2.9 s after the drop of 50, 5.4-8.3 s of 200, 16-19 s of 500)."""
    page_frame_s: float = 0.0
    """The page's main thread (``bulkbench.strategies.page``): every step the page takes (a file hashed and
    read, an operation sent, its answer handled, an upload started, its result taken, a file read again)
    waits for the page's long work under way (its previews, its second reads) and for a frame drawn before
    it, of this long ..."""
    page_s_per_uploaded_image: float = 0.0
    """... plus, while the hash stage runs, this long per image it holds a server URL for (its upload done:
    the renderer asks for its thumbnails and queues their textures; fc1316b re-sorts its texture queue on
    every request, ``TextureLODManager.js:274-286``) ..."""
    page_s_per_node: float = 0.0
    """... and this long per node the canvas holds (every frame draws them, the drop's previews included) ...
    All of them 0 (the plan's client): the page takes no time and its steps do not wait."""
    page_frame_s_per_s: float = 0.0
    """... and this much longer for every second of the drop past ``page_frame_growth_from_s``: fc1316b's mean
    long task stays at 0.2 s for its first 200 s and then grows by 0.18 s every 100 s to the cap, alike for both
    versions, though their uploads do not grow alike (12 pages of ``browser-harness``, ``-day3``, ``-slower``) ..."""
    page_frame_growth_from_s: float = 0.0
    """... from this second of the drop on."""
    page_thread_serial: bool = False
    """Every step holds the page's thread for its frame, one at a time in the order posted
    (``bulkbench.strategies.page``: a thread busy all the time); False: short steps do not wait for each other."""
    page_tasks_per_hash: int = 1
    """Tasks of the page's main thread between a file's hash and its node_create, each waiting for a frame
    (fc1316b: the file read as bytes, the digest, the read as a data URL and its write to IndexedDB,
    ``file-hash.js:56-86``, ``dragdrop.js:506-531``)."""
    page_tasks_per_upload: int = 1
    """Tasks of the main thread before a first upload is sent, each waiting for a frame (fc1316b: its
    coordinator uploads the cached data URL, fetched and read back as a blob first,
    ``ImageUploadManager.js`` ``_dataURLToBlob``; the second stage sends the File itself: one task)."""
    page_thumbnail_sizes: tuple[int, ...] = ()
    """Sizes the page asks for, each with a POST that has it made and a GET tried again on failure
    (fc1316b's renderer: all six); empty: ``thumbnail_gets_per_image`` GETs of 64 and 256 px."""
    layout_unready_s: float | tuple[float, ...] = 0.0
    """The page lays the drop out with the previews it has (``dragdrop.js:153``), and a preview exists once
    Chromium has encoded it (``canvas.toBlob``'s callback fills the map, line 250), which it does in idle
    time or after ``TOBLOB_IDLE_TIMEOUT_S``: on a page with no idle moment for this long before its layout,
    the files whose previews it asked for in that time get no node. They are still hashed, not read again
    (line 601), uploaded by its own upload stage and completed once (``fileNodeMap`` maps by index, lines
    451-458; the stage uploads every hashed file, 709-759). 0: every file gets its node (50-image drops on the machine
    ``individual:fc1316b`` was fitted on). Several values: how long it was in each of the page's own runs
    (``bulkbench calibrate --page`` reads them off its count, "Previews ready at layout"), one drawn per
    drop from the drop's seed: the race is the page's load in that second, not a constant."""

    heartbeat_every_s: float = 0.0
    """The page pings its server this often and drops its socket when an answer is late
    (``bulkbench.strategies.heartbeat``; fc1316b: 10 s, ``NetworkLayer.js:680-716``); 0: no heartbeat."""
    heartbeat_check_s: float = 10.0
    """A ping's check runs this long after it ..."""
    heartbeat_dead_s: float = 30.0
    """... and finds the socket dead if the last answer handled is older than this."""
    heartbeat_rejoin: bool = False
    """The socket opened again joins the canvas again (fc1316b's does not: the server refuses the rest)."""
    heartbeat_wait_scale: float = 1.0
    """A heartbeat task (the ping, its answer's handler, the check) waits this many times what the page's thread
    holds when it is posted (its long work under way and the canvas's load, hashing or not), on average ..."""
    heartbeat_wait_shape: float = 1.0
    """... spread as a gamma of this shape: the real page's answers are late by a few seconds at the median
    and, now and then, by 10-40 s."""

    def __post_init__(self) -> None:
        times = self.layout_unready_s if isinstance(self.layout_unready_s, list | tuple) else (self.layout_unready_s,)
        if not times or not all(isinstance(t, int | float) and not isinstance(t, bool)
                                and 0.0 <= t <= TOBLOB_IDLE_TIMEOUT_S for t in times):
            raise ConfigError(f"layout_unready_s = {self.layout_unready_s}: one or more times, each between 0 and "
                              f"{TOBLOB_IDLE_TIMEOUT_S} s (Chromium encodes a toBlob after that long on a busy page)")
        object.__setattr__(self, "layout_unready_s", tuple(float(t) for t in times))
        if self.heartbeat_every_s < 0:
            raise ConfigError(f"heartbeat_every_s = {self.heartbeat_every_s}: 0 (no heartbeat) or a period in seconds")
        if self.heartbeat_every_s:
            self.heartbeat_rule()  # its own checks, before any drop

    def heartbeat_rule(self) -> HeartbeatRule:
        return HeartbeatRule(self.heartbeat_every_s, self.heartbeat_check_s, self.heartbeat_dead_s,
                             self.heartbeat_rejoin, self.heartbeat_wait_scale, self.heartbeat_wait_shape)

    def unplaced(self, images: int, chance: random.Random | None = None) -> int:
        """Files the page lays out without a node: those whose previews it asked for in the last
        ``layout_unready_s`` before its layout, at ``page_preview_s_per_image`` each; of several times,
        the one ``chance`` draws (a drop's ``Drop.chance``)."""
        times: tuple[float, ...] = self.layout_unready_s  # type: ignore[assignment]  # a tuple once made
        if len(times) > 1 and chance is None:
            raise ValueError("several layout_unready_s times: say which drop's chance draws one")
        unready_s = times[0] if len(times) == 1 else chance.choice(times)  # type: ignore[union-attr]
        if not unready_s or not self.page_preview_s_per_image:
            return 0
        return min(images, int(unready_s / self.page_preview_s_per_image + 1e-6))


PAGE_CPU_PARAMS = ("reread_s_per_mb", "reread_s_per_file", "page_preview_s_per_image", "page_frame_s",
                   "page_s_per_uploaded_image", "page_s_per_node", "page_frame_s_per_s")
"""The page's main-thread work among the parameters: a faster machine does it faster (``bulkbench calibrate
--page`` scales them); the page's timers (its tick, its retry pause, its idle callback's timeout) do not."""


@dataclass(slots=True)
class _Uploads:
    """The upload side of one drop: what is waiting or under way, and the slots open."""

    slots: int
    pending: set[str] = field(default_factory=set)
    """Images whose upload is in the queue or under way (the page shares a second upload of them; one
    waiting out its retry pause is neither, and gets a second POST)."""
    shared: set[str] = field(default_factory=set)
    """Images whose pending upload a second stage shares: its success completes them twice."""
    failed_once: bool = False
    uploaded: int = 0
    """Images with a server URL on the page: its frame grows with them while hashing runs."""
    hashing: bool = True
    """The hash stage is under way: it leaves the page no idle time (fc1316b drains its texture queue only
    in idle slices over 2 ms, ``WebGLRenderer.js:1253-1290``, so the queue and the frame grow with every
    image uploaded meanwhile; once hashing ends the queue drains, and the second reads are long tasks with
    idle time between them). The upload coordinator stops ticking once it is over."""
    second_uploads: int = 0
    completions: dict[str, int] = field(default_factory=dict)


def run(drop: Drop, params: IndividualParams) -> Generator[Any, Any, None]:
    yield from run_images(drop, drop.images, params, queue_prefix="")


def run_images(drop: Drop, images: Sequence[ImageSpec], p: IndividualParams,
               queue_prefix: str) -> Generator[Any, Any, None]:
    """The whole individual flow for ``images`` (all of a drop, or one chunk of ``chunked``)."""
    ops, uploads, resolved, stop_sweeper, stop_heartbeat = (
        f"{queue_prefix}ops", f"{queue_prefix}uploads", f"{queue_prefix}resolved", f"{queue_prefix}sweep",
        f"{queue_prefix}heartbeat")
    start = (yield NOW)
    for image in images:
        drop.track(image).created_at = start
    canvas_nodes = len(drop.log.tracks)  # previews and nodes exist locally before any traffic
    orphan_after = p.orphan_after_large_s if canvas_nodes > p.large_canvas_nodes else p.orphan_after_s
    state = _Uploads(slots=p.upload_concurrency)
    unplaced = {image.id for image in images[len(images) - p.unplaced(len(images), drop.chance("layout-race")):]}
    """Files the page laid out before their previews existed: no node, hashed and uploaded all the same."""
    page_thumbnails = PageThumbnails(tuple(p.page_thumbnail_sizes)) if p.page_thumbnail_sizes else None
    ticking: list[ImageSpec] = []
    """Hashed images the upload coordinator will queue at its next tick."""

    def queue_upload(image: ImageSpec, second: bool = False) -> Generator[Any, Any, None]:
        state.pending.add(image.id)
        yield Put(uploads, (image, 1, second))

    def canvas_load_s(now: float) -> float:
        """What the canvas's images cost the page's thread between two of its tasks."""
        return (p.page_frame_s + p.page_s_per_uploaded_image * state.uploaded + p.page_s_per_node * canvas_nodes
                + p.page_frame_s_per_s * max(0.0, now - p.page_frame_growth_from_s))

    def frame_s(now: float) -> float:
        if not state.hashing:  # the page drains its texture queue in idle time: a frame is short again
            return p.page_frame_s
        return canvas_load_s(now)

    def heartbeat_wait_s(now: float) -> float:
        """The heartbeat's tasks wait for the canvas's load, hashing or not: the real page's answers came
        later and later after its last node_create (437-637 s into browser-slower's drops, late by 2.4-5.6 s
        at the median in their last minutes, as ~0.04 s per image uploaded), where its steps did not."""
        return main.backlog_s(now) + canvas_load_s(now)

    main = MainThread(frame_s, serial=p.page_thread_serial)
    page_works = bool(p.page_frame_s or p.page_s_per_uploaded_image or p.page_s_per_node or p.page_frame_s_per_s)

    def page_step(own_s: float = 0.0) -> Generator[Any, Any, None]:
        """A step of the page's own script (nothing for the plan's client, whose page takes no time)."""
        if page_works:
            yield from main.step(own_s)
        elif own_s:
            yield Sleep(own_s)

    def queue_node_and_upload(image: ImageSpec) -> Generator[Any, Any, None]:
        for _ in range(p.page_tasks_per_hash):  # the hash stage's reads, digest and caching, on the main thread
            yield from page_step()
        if image.id in unplaced:
            return  # no node to create, nor for the coordinator to upload for: only its own upload stage will
        yield Put(ops, ("node", image))
        if p.upload_tick_s > 0:
            ticking.append(image)
        else:
            yield from queue_upload(image)

    def coordinator() -> Generator[Any, Any, None]:
        """fc1316b's upload coordinator: every tick, the hashed images not yet queued join the queue."""
        while True:
            yield Sleep(p.upload_tick_s)
            while ticking:
                yield from queue_upload(ticking.pop(0))
            if not state.hashing:
                return

    def uploader(slot: int) -> Generator[Any, Any, None]:
        while slot < state.slots and (job := (yield Take(uploads))) is not DONE:
            image, attempt, second = job
            track = drop.track(image)
            for _ in range(1 if second else p.page_tasks_per_upload):  # the request sent, after its body is made
                yield from page_step()
            now = yield NOW
            if track.upload_started_at is None:
                track.upload_started_at = now
            result = yield Upload(image, track.digest or "", p.upload_timeout_s)
            yield from page_step()  # the request's load event and its handlers
            drop.log.record_upload(result)
            at = yield NOW
            if result.ok:
                state.pending.discard(image.id)
                if track.upload is None:
                    track.upload_done_at, track.upload = at, result
                    state.uploaded += 1
                    renders = page_thumbnails is not None and image.id not in unplaced
                    if renders:  # the page's node has its URL: the renderer asks at once
                        yield Spawn(load_page_thumbnails(result.body["serverFilename"], track.digest or "",
                                                         page_thumbnails), "thumbnails")
                completions = 2 if image.id in state.shared else 1
                state.shared.discard(image.id)
                for _ in range(completions):
                    yield Put(ops, ("complete", image, result))
                yield Put(resolved, image.id)
                continue
            if p.upload_concurrency_after_failure and not state.failed_once:
                state.failed_once = True
                state.slots = min(state.slots, p.upload_concurrency_after_failure)
            state.pending.discard(image.id)
            if not second and attempt < p.upload_attempts and track.upload is None:
                yield Spawn(retry(image, attempt + 1), "upload-retry")
                continue
            if track.upload is None:
                track.fail(http_cause(result), at)
            yield Put(resolved, image.id)
        if slot >= state.slots:  # this slot closed: its queue share goes to the others
            return

    def retry(image: ImageSpec, attempt: int) -> Generator[Any, Any, None]:
        yield Sleep(p.upload_retry_pause_s)
        state.pending.add(image.id)
        yield Put(uploads, (image, attempt, False))

    def second_stage() -> Generator[Any, Any, None]:
        """fc1316b's own upload stage, once every file with a node has been read again (``dragdrop.js:601``:
        a file without one is skipped); it uploads every file, and looks at no server URL."""
        for image in images:
            if image.id not in unplaced:
                yield from page_step(p.reread_s_per_mb * image.size_bytes / 1e6 + p.reread_s_per_file)
        for image in images:
            if image.id in state.pending:
                state.shared.add(image.id)
            else:
                state.second_uploads += 1
                yield from queue_upload(image, second=True)

    def operation_queue() -> Generator[Any, Any, None]:
        while (item := (yield Take(ops))) is not DONE:
            kind, image = item[0], item[1]
            track = drop.track(image)
            if track.orphaned:
                continue  # the cleanup removed its node: its operations go nowhere
            yield Sleep(p.merge_window_s + p.idle_wait_s)
            yield from page_step()  # the idle callback that sends it
            sent = (yield NOW)
            if kind == "node":
                track.node_sent_at = sent
                answer = yield from send_and_wait(f"{image.id}-node", OpType.NODE_CREATE,
                                                  node_params(image, track.digest or ""), p.ack_timeout_s)
            else:
                result = item[2]
                count = state.completions[image.id] = state.completions.get(image.id, 0) + 1
                if track.complete_sent_at is None:
                    track.complete_sent_at = sent
                answer = yield from send_and_wait(f"{image.id}-done" + (f"{count}" if count > 1 else ""),
                                                  OpType.IMAGE_UPLOAD_COMPLETE,
                                                  upload_item(track.digest or "", result), p.ack_timeout_s)
            yield from page_step()  # the answer's handlers, before the queue takes the next
            drop.log.record_answer(answer)
            at = (yield NOW)
            if image.id in unplaced:
                continue  # a completion for a file without a node: the page has nothing to mark
            if not answer.ok:
                if (kind == "node" or track.complete_acked_at is None) and track.failure is None:
                    track.fail(answer_cause(answer), at)
                continue
            if p.request_undo_state:  # after every ack (StateSyncManager.js:1343)
                yield SendFrame(Event.REQUEST_UNDO_STATE)
            if kind == "node":
                track.node_acked_at = at
            elif track.complete_acked_at is None:
                track.complete_acked_at = track.settled_at = at
                if page_thumbnails is None:  # the viewport asks once the server has the URL
                    yield from spawn_thumbnails(item[2].body["serverFilename"], p.thumbnail_gets_per_image)

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

    sweeper = (yield Spawn(orphan_sweeper(), "orphan-sweeper")) if p.orphan_sweep else None
    pinger = None
    if p.heartbeat_every_s > 0:
        beats = heartbeat(p.heartbeat_rule(), heartbeat_wait_s, drop.chance(f"{queue_prefix}heartbeat"), drop.log,
                          stop_heartbeat)
        pinger = yield Spawn(beats, "heartbeat")
    queue = yield Spawn(operation_queue(), "operation-queue")
    yield from page_step(p.page_preview_s_per_image * len(images))
    ticker = (yield Spawn(coordinator(), "upload-coordinator")) if p.upload_tick_s > 0 else None
    hashing = yield Spawn(hash_images(drop, images, p.hash_parallel, p.hash_gap_s, queue_node_and_upload), "hashing")
    upload_slots = yield from spawn_all((uploader(slot) for slot in range(p.upload_concurrency)), "upload")
    yield Join((hashing,))
    state.hashing = False
    if ticker is not None:
        yield Join((ticker,))
    if p.second_upload:
        yield Join(((yield Spawn(second_stage(), "second-upload-stage")),))
    for _ in range(len(images) - len(unplaced) + state.second_uploads):  # each upload job resolved: ok or tries used up
        yield Take(resolved)
    for _ in upload_slots:
        yield Put(uploads, DONE)
    yield Join(upload_slots)
    yield Put(ops, DONE)
    yield Join((queue,))
    for stop, process in ((stop_sweeper, sweeper), (stop_heartbeat, pinger)):
        if process is not None:
            yield Put(stop, True)
            yield Join((process,))
