"""One browser's drop: a child process (``python -m realclient.session SPEC.json``), started inside the
run's network namespace when the uplink is shaped, so Chromium, the app and its page share that link.

It makes the drop's canvas, opens the app's page in headless Chromium (Debian's binary, through
Playwright) with the recorder of ``pagejs`` installed, waits until the page can take a drop, drops the
files on the target's element, and lets the page work until it has settled (the target's idle test,
held ``quiet_s``) or the hard cap ends it. Meanwhile it records every Socket.IO frame and every HTTP
answer through Playwright (the DevTools protocol's network events), and samples the TCP connections
open to the app's server. Then it judges each image by the target's truth and writes the drop's
result (``drops/user-N.json``, as a Locust user writes it) or why there is none (``.error``).
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from bulkbench.protocol import Event, OpType
from bulkbench.results import Cause
from bulkbench.strategies.common import Drop
from bulkbench.target import Target, fill, load_target
from bulkbench.truth import DropResult, count_request, judge, last_settled_s
from bulkbench.workload import ImageSpec
from loadtests.targetio import Truth, create_canvas
from realclient.host import Sample, host_series, machine, read_host, sample_host
from realclient.pagejs import BUSY_BUCKET_S, DROP, FILE_INPUT, FRAME_BUCKET_S, RECORDER
from realclient.probe import probe_cores

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-features=Translate,MediaRouter",
    "--use-angle=swiftshader", "--enable-unsafe-swiftshader",  # WebGL on the CPU: the app's renderer needs it
)
"""Debian's Chromium, headless, on a machine whose network reaches nothing outside: without the
background-networking flags it keeps trying Google's hosts."""
READY_TIMEOUT_S = 90.0
SETTLE_BEFORE_DROP_S = 2.0
SETTLE_POLL_S = 0.5
CONNECTION_SAMPLE_S = 0.25
TIMELINE_FRAMES = 5000
SOCKETIO_EVENT = "42"
"""A Socket.IO event packet inside an Engine.IO message: ``42["name",{...}]``."""


@dataclass
class SessionSpec:
    """What the orchestrator hands a session (as JSON)."""

    target: str
    base_url: str
    page_url: str
    user: int
    images: list[dict[str, Any]]
    paths: list[str]
    out: str
    max_seconds: float = 900.0
    quiet_s: float = 3.0
    viewport: tuple[int, int] = (1280, 800)
    canvas_name: str = "browser"
    chromium_args: tuple[str, ...] = ()
    """Flags beyond CHROMIUM_FLAGS (a page on a namespace's address treated as a secure context)."""
    judge_address: str = ""


@dataclass
class Wire:
    """What crossed the network during the drop, as the browser saw it."""

    sent: dict[str, int] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)
    pings: int = 0
    ops: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    """operationId -> (type, image hash, sent at)."""
    answers: dict[str, tuple[str, float]] = field(default_factory=dict)
    """operationId -> (event, at): the first answer."""
    http: list[tuple[float, str, str, int]] = field(default_factory=list)
    """(at, method, path, status) of every request to the app's server (status 0: failed)."""
    asked: list[str] = field(default_factory=list)
    """Every request the page made before it was ready, to any host, as it left (what a page that never
    answers was waiting on)."""
    failed_early: list[str] = field(default_factory=list)
    """Requests that failed before the page was ready, to any host, with the browser's reason (one module
    of ImageCanvas's page that fails to load stops its whole start)."""
    last_activity: float = 0.0
    sockets: list[tuple[float, str]] = field(default_factory=list)
    """(at, "open"/"close") of every WebSocket the page opened to the app's server. ImageCanvas's page closes
    its own when its heartbeat's answer is 30 s late (``NetworkLayer.js`` ``sendPing``), which a page too
    busy to handle it does; from then on none of its operations reaches the server."""
    timeline: list[tuple[float, str, str, str]] = field(default_factory=list)
    """(at, "out"/"in", event, detail) of the first TIMELINE_FRAMES events: the drop's story, for reading."""
    heartbeat: tuple[str, ...] = ()
    """The page's heartbeat events (the target's ``[app] heartbeat``): sent, and answered with its data."""
    beats: dict[str, list[float | None]] = field(default_factory=dict)
    """Each heartbeat by its data: [sent at, its answer handled at, or None]."""

    def frame(self, payload: str | bytes, outgoing: bool, at: float | None = None) -> None:
        now = time.time() if at is None else at
        text = payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
        if not text.startswith(SOCKETIO_EVENT):
            if text in ("2", "3"):  # Engine.IO's heartbeat: counted apart
                self.pings += 1
            return
        try:  # 42, an optional ack id, then the JSON array [event, data]
            event, *rest = json.loads(text[2:].lstrip("0123456789"))
        except (ValueError, TypeError):
            return
        data = rest[0] if rest and isinstance(rest[0], dict) else {}
        if event in self.heartbeat:
            self._beat(event, json.dumps(rest[0] if rest else None), outgoing, now)
        counts = self.sent if outgoing else self.received
        counts[event] = counts.get(event, 0) + 1
        if len(self.timeline) < TIMELINE_FRAMES:
            detail = str(data.get("type") or data.get("stateVersion") or "")
            self.timeline.append((now, "out" if outgoing else "in", str(event), detail))
        op_id = data.get("operationId")
        if outgoing and event == Event.EXECUTE_OPERATION and op_id:
            params = data.get("params") or {}
            image_hash = (params.get("properties") or {}).get("hash") or params.get("hash") or ""
            self.ops[op_id] = (str(data.get("type")), image_hash, now)
            self.last_activity = now
        elif not outgoing and event in (Event.OPERATION_ACK, Event.OPERATION_REJECTED) and op_id:
            self.answers.setdefault(op_id, (event, now))

    def _beat(self, event: str, key: str, outgoing: bool, now: float) -> None:
        if outgoing and event == self.heartbeat[0]:
            self.beats.setdefault(key, [now, None])
        elif not outgoing and event == self.heartbeat[1] and key in self.beats and self.beats[key][1] is None:
            self.beats[key][1] = now

    def sockets_until(self, ended: float) -> list[tuple[float, str]]:
        """The page's socket events in order, up to the drop's end (the browser closing its sockets afterwards
        is not the page losing them)."""
        return sorted(event for event in self.sockets if event[0] <= ended)


def opened_again(events: list[tuple[float, str]]) -> int:
    """How many sockets the page opened after its first (``events`` as ``socket_events`` keeps them)."""
    return max(0, sum(1 for _at, what in events if what == "open") - 1)


def socket_down_since(events: list[tuple[float, str]]) -> float | None:
    """When the page's last socket closed, if it had none open after that (``events`` in order). None: one
    was open at the end, or none ever."""
    open_now, since = 0, None
    for at, what in events:
        open_now += 1 if what == "open" else -1
        if open_now > 0:
            since = None
        elif what == "close":
            since = at
    return since


def sample_connections(port: int, stop: threading.Event, peak: list[int]) -> None:
    """The most TCP connections open at once to the app's server (this namespace's /proc/net/tcp)."""
    remote = f":{port:04X}"
    while not stop.wait(CONNECTION_SAMPLE_S):
        count = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                parts = line.split()
                if parts[3] == "01" and parts[2].endswith(remote) and not parts[1].endswith(remote):
                    count += 1
        peak[0] = max(peak[0], count)


def run_session(spec: SessionSpec) -> DropResult:
    from playwright.sync_api import sync_playwright

    target = load_target(spec.target)
    app = target.app
    images = [ImageSpec(**image) for image in spec.images]
    canvas_id = create_canvas(target, spec.base_url, spec.canvas_name, f"user-{spec.user}", {}, None)
    values = {"canvas": canvas_id}
    server = urlsplit(spec.base_url)
    wire = Wire(heartbeat=target.app.heartbeat)
    peak = [0]
    stop = threading.Event()
    sampler = threading.Thread(target=sample_connections, args=(server.port or 80, stop, peak), daemon=True)
    host: list[Sample] = []
    host_sampler = threading.Thread(target=sample_host, args=(BUSY_BUCKET_S, stop, host), daemon=True)
    page_info: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=[*CHROMIUM_FLAGS, *spec.chromium_args])
        try:
            cores = probe_cores(browser)
            where = {**machine(), "chromium": browser.version}
            context = browser.new_context(viewport={"width": spec.viewport[0], "height": spec.viewport[1]})
            context.add_init_script(RECORDER)
            if app.select_canvas:
                context.add_init_script(fill(app.select_canvas, values))
            page = context.new_page()

            def on_response(response: Any) -> None:
                _http(wire, spec.base_url, response.request.method, response.url, response.status)

            def on_request(request: Any) -> None:
                wire.asked.append(f"{request.method} {request.url}")

            def on_request_failed(request: Any) -> None:  # a page file that failed stops the page's start
                wire.failed_early.append(f"{request.method} {request.url}: {request.failure}")

            page.on("response", on_response)
            page.on("request", on_request)  # until the page is ready: only a page never ready is asked about it
            page.on("requestfailed", on_request_failed)
            page.on("requestfailed", lambda request: _http(wire, spec.base_url, request.method, request.url, 0))
            page.on("websocket", lambda ws: _watch_socket(wire, spec.base_url, ws))
            page.goto(spec.page_url, wait_until="load")
            wait_until_ready(page, fill(app.ready, values), wire, app.starting)
            page.remove_listener("request", on_request)  # no more harness work per request during the drop
            page.remove_listener("requestfailed", on_request_failed)
            if app.prepare:
                page.evaluate(f"() => {{ {fill(app.prepare, values)} }}")
            page.evaluate(FILE_INPUT, "__bb_files")
            page.set_input_files("#__bb_files", spec.paths)
            sampler.start()
            host_sampler.start()
            wire.http.clear()
            started_at = time.time()
            page.evaluate(DROP, [app.drop_on, "__bb_files"])
            capped = settle(page, wire, fill(app.idle, values) if app.idle else "", spec, started_at)
            ended = time.time()
            page_info = page.evaluate("() => window.__bb.dump()")
            page_info["claimed"] = page.evaluate(f"() => {fill(app.claimed, values)}") if app.claimed else None
        finally:
            stop.set()
            browser.close()
    if (last := read_host()) is not None:
        host.append(last)  # the drop's end: its last interval
    truth = Truth(target, spec.base_url, canvas_id, {}, judge_address=spec.judge_address or None)
    try:
        return result(spec, target, images, wire, page_info, truth, started_at, ended, capped, peak[0], canvas_id,
                      host_series(host, started_at), cores, where)
    finally:
        truth.close()


def wait_until_ready(page: Any, ready: str, wire: Wire, starting: str = "") -> None:
    """The page's ready test true, and the page quiet (no request to the server) for ``SETTLE_BEFORE_DROP_S``:
    a page may still be loading its canvas after it first looks ready (ImageCanvas's startup can load the
    canvas twice, and the second load clears the graph: a drop before it would vanish). A person does not
    drop files in the second the page appears either."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    try:
        page.wait_for_function(ready, timeout=READY_TIMEOUT_S * 1000, polling=250)
    except PlaywrightTimeout as exc:
        raise TimeoutError(f"the page was not ready within {READY_TIMEOUT_S:g} s: "
                           f"{_not_ready(page, wire, starting)}") from exc
    deadline = time.time() + READY_TIMEOUT_S
    while time.time() < deadline:
        last = max((at for at, *_ in wire.http), default=0.0)
        if time.time() - last >= SETTLE_BEFORE_DROP_S and page.evaluate(f"() => {ready}"):
            return
        page.wait_for_timeout(250)
    raise TimeoutError(f"the page did not settle within {READY_TIMEOUT_S:g} s of being ready")


def _not_ready(page: Any, wire: Wire, starting: str = "") -> str:
    """What the page had done when it was given up on: where it is, what it asked the app's server, what it
    said (a page that never joins leaves nothing else to read)."""
    try:
        said = page.evaluate("() => window.__bb ? window.__bb.sample.slice(-8) : 'no recorder'")
    except Exception as exc:  # a page too broken to answer is the finding itself
        said = f"page.evaluate failed: {exc}"
    try:  # a page that never asks the app may still be loading its own files: how far it got
        loading = page.evaluate("() => [document.readyState, performance.getEntriesByType('resource')"
                                ".map(e => e.name.split('/').pop() + ':' + Math.round(e.duration))]")
        loaded = f"document {loading[0]}, {len(loading[1])} files loaded, the last {loading[1][-4:]}"
    except Exception as exc:
        loaded = f"page.evaluate failed: {exc}"
    try:
        started = page.evaluate(f"() => {starting}") if starting else "-"
    except Exception as exc:
        started = f"page.evaluate failed: {exc}"
    asked = [(method, path, status) for _at, method, path, status in wire.http[-8:]]
    return (f"url {page.url}; its start: {started}; {loaded}; "
            f"{len(wire.asked)} requests made, the last {wire.asked[-3:]}, failed {wire.failed_early[:4]}; "
            f"{len(wire.http)} answered by the app, the last {asked}; "
            f"frames {wire.sent}; console {said}")


def _is_app(base_url: str, url: str) -> bool:
    """Is ``url`` the app's server (not the page's own files)?"""
    parts, base = urlsplit(url), urlsplit(base_url)
    return (parts.hostname, parts.port) == (base.hostname, base.port) or (
        parts.port == base.port and parts.hostname in ("localhost", "127.0.0.1", "::1"))


def _watch_socket(wire: Wire, base_url: str, ws: Any) -> None:
    """Count a page WebSocket's frames, and when it opened and closed if it is the app's."""
    ws.on("framesent", lambda p: wire.frame(p, True))
    ws.on("framereceived", lambda p: wire.frame(p, False))
    if _is_app(base_url, ws.url):
        wire.sockets.append((time.time(), "open"))
        ws.on("close", lambda _ws: wire.sockets.append((time.time(), "close")))


def _http(wire: Wire, base_url: str, method: str, url: str, status: int) -> None:
    if not _is_app(base_url, url):
        return  # the page's own files, not the app's server
    parts = urlsplit(url)
    now = time.time()
    wire.http.append((now, method, parts.path, status))
    if parts.path.startswith("/api/upload"):
        wire.last_activity = now


def settle(page: Any, wire: Wire, idle: str, spec: SessionSpec, started_at: float) -> bool:
    """Let the page work until it has been idle ``quiet_s`` (its own test, or no upload and no operation
    sent for that long); True if the hard cap ended it first."""
    quiet_since: float | None = None
    while time.time() - started_at < spec.max_seconds:
        page.wait_for_timeout(SETTLE_POLL_S * 1000)
        now = time.time()
        if not idle:  # no test of its own: the network's quiet (no upload, no operation) for quiet_s
            quiet_since = max(wire.last_activity, started_at)
        else:
            quiet_since = (quiet_since or now) if page.evaluate(f"() => {idle}") else None
        if quiet_since is not None and now - quiet_since >= spec.quiet_s:
            return False
    return True


def result(spec: SessionSpec, target: Target, images: list[ImageSpec], wire: Wire, page_info: dict[str, Any],
           truth: Truth, started_at: float, ended: float, capped: bool, peak_connections: int,
           canvas_id: Any, host: list[list[float]] | None = None,
           cores: dict[str, float | None] | None = None, where: dict[str, Any] | None = None) -> DropResult:
    """The drop as the browser saw it, each image judged by the target's truth (found by its hash: the
    page names nodes itself). Counts come from the browser's network events; an operation's times from
    the page's own sockets where it recorded them (see ``pagejs``). ``host``: the machine's series beside
    the drop (``realclient.host``); ``cores``: how fast the cores ran a fixed piece of work just before it
    (``realclient.probe``); ``where``: the machine, its boot and the browser's version (``realclient.host``)."""
    timed = wire
    if page_info.get("frames"):
        timed = Wire()
        for at_ms, direction, text in page_info["frames"]:
            timed.frame(text, direction == "out", at_ms / 1000)
    drop = Drop(str(canvas_id), images)
    by_hash = {}
    for image, path in zip(images, spec.paths, strict=True):
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        drop.track(image).digest = digest
        drop.track(image).created_at = 0.0
        by_hash[digest] = drop.track(image)
    ack_s: list[float] = []
    refused: dict[str, float] = {}
    """When the server first refused one of an image's operations (by its hash)."""
    for op_id, (op_type, image_hash, sent) in sorted(timed.ops.items(), key=lambda item: item[1][2]):
        answer = timed.answers.get(op_id)
        track = by_hash.get(image_hash)
        if answer is not None and answer[0] == Event.OPERATION_ACK:
            ack_s.append(answer[1] - sent)
        if track is None:
            continue
        at, acked = sent - started_at, (answer[1] - started_at) if answer else None
        ok = answer is not None and answer[0] == Event.OPERATION_ACK
        if answer is not None and not ok:
            refused.setdefault(image_hash, acked)
        if op_type == OpType.NODE_CREATE and track.node_sent_at is None:
            track.node_sent_at, track.node_acked_at = at, acked if ok else None
        elif op_type == OpType.IMAGE_UPLOAD_COMPLETE and track.complete_sent_at is None:
            track.complete_sent_at = at
            if ok:
                track.complete_acked_at = track.settled_at = acked
    uploads = page_info.get("uploads", [])
    upload_s = [(u["done"] - u["sent"]) / 1000 for u in uploads if u.get("done") and u.get("status")]
    for upload in uploads:
        track = by_hash.get(upload.get("hash") or "")
        if track is None:
            continue
        if track.upload_started_at is None:
            track.upload_started_at = upload["sent"] / 1000 - started_at
        if upload.get("status") == 200 and track.upload_done_at is None and upload.get("done"):
            track.upload_done_at = upload["done"] / 1000 - started_at
    sockets = wire.sockets_until(ended)
    down_since = socket_down_since(sockets)
    down_s = None if down_since is None else max(0.0, down_since - started_at)
    for image_hash, track in by_hash.items():
        _cause(track, uploads, capped, ended - started_at, down_s, refused.get(image_hash))
    records = judge(drop, truth.canvas, truth.stored, dataclasses.replace(target.truth, node_key="properties.hash"))
    http: dict[str, dict[str, int]] = {"http_by_status": {}}
    for _at, method, path, code in wire.http:
        count_request(http, method, path, code)
    first = min([t for t, *_ in wire.http] + [sent for _t, _h, sent in wire.ops.values()], default=started_at)
    console = dict(sorted(page_info.get("console", [])))
    return DropResult(
        user=spec.user, records=records, ws_messages_sent=sum(wire.sent.values()),
        ws_messages_received=sum(wire.received.values()), http_requests=len(wire.http),
        bytes_uploaded=sum(u.get("bytes", 0) for u in uploads), started_at=started_at,
        first_byte_s=max(0.0, first - started_at), last_settled_s=last_settled_s(drop, ended - started_at),
        op_ack_s=ack_s, upload_s=upload_s,
        extra={"frames_sent": wire.sent, "frames_received": wire.received, "transport_pings": wire.pings,
               "ops_by_type": dict(sorted(Counter(op_type for op_type, _h, _t in wire.ops.values()).items())),
               **{key: dict(sorted(counts.items())) for key, counts in http.items()},
               "upload_attempts": len(uploads), "peak_connections": peak_connections, "capped": capped,
               "settle_s": round(ended - started_at, 3), "canvas_id": canvas_id,
               "long_task_ms": round(page_info.get("longTaskMs", 0.0)), "long_tasks": page_info.get("longTasks", 0),
               "hardware_concurrency": page_info.get("hardwareConcurrency"), "claimed": page_info.get("claimed"),
               "console_counts": console,  # every template the page logged: what it did
               "console_times": {key: [round(first / 1000 - started_at, 3), round(last / 1000 - started_at, 3)]
                                 for key, (first, last) in sorted(page_info.get("consoleTimes", []))},
               "console_lines": sum(console.values()),
               "console_sample": page_info.get("sample", []),
               "timeline": [(round(at - started_at, 3), *rest) for at, *rest in wire.timeline],
               "socket_events": [(round(at - started_at, 3), what) for at, what in sockets],
               "socket_down_s": None if down_s is None else round(down_s, 3),
               "busy_series": busy_series(page_info, started_at, ended),
               "frame_work": frame_work(page_info, started_at, ended),
               "host_series": host or [], "cores_probe": cores or {}, "machine": where or {},
               **({"heartbeats": [[round(sent - started_at, 3), None if answered is None else round(answered - sent, 3)]
                                  for sent, answered in sorted(wire.beats.values())]} if wire.heartbeat else {})},
    )


def busy_series(page_info: dict[str, Any], started_at: float, ended: float) -> list[list[float]]:
    """[seconds from the drop to the bucket's start, long-task ms in it, long tasks, images uploaded by its
    end] per ``BUSY_BUCKET_S`` of the drop: a page caught in its frame feedback is busy all the time and its
    tasks grow with the images uploaded; one that got out of it is not."""
    done = sorted(u["done"] / 1000 for u in page_info.get("uploads", []) if u.get("status") == 200 and u.get("done"))
    return [[round(start - started_at, 1), round(busy_ms), tasks, bisect.bisect_right(done, start + BUSY_BUCKET_S)]
            for start, (busy_ms, tasks) in _drop_buckets(page_info.get("busy", {}), BUSY_BUCKET_S, started_at, ended)]


def frame_work(page_info: dict[str, Any], started_at: float, ended: float) -> list[list[Any]]:
    """[seconds from the drop to the minute's start, what did the work (``render``, ``other`` or ``script:
    INVOKER_TYPE FILE FUNCTION``), its ms in long frames, frames] per ``FRAME_BUCKET_S`` of the drop, biggest
    first within a minute: what the page's busy thread was doing."""
    return [[round(start - started_at, 1), key, round(ms), n]
            for start, work in _drop_buckets(page_info.get("frameWork", {}), FRAME_BUCKET_S, started_at, ended)
            for key, (ms, n) in sorted(work.items(), key=lambda item: -item[1][0])]


def _drop_buckets(buckets: dict[str, Any], width_s: float, started_at: float,
                  ended: float) -> list[tuple[float, Any]]:
    """The page's buckets (keyed by their start over ``width_s``, on the epoch's clock) that overlap the drop, as
    (start in epoch seconds, value), in time order."""
    starts = sorted(((int(bucket) * width_s, value) for bucket, value in buckets.items()), key=lambda item: item[0])
    return [(start, value) for start, value in starts if start + width_s >= started_at and start <= ended]


def _cause(track: Any, uploads: list[dict[str, Any]], capped: bool, ended_s: float, down_s: float | None,
           refused_s: float | None = None) -> None:
    """The client-side reason an image may have failed (the server's state decides whether it did);
    ``down_s``: when the page lost its socket for good, which ends whatever it had not settled;
    ``refused_s``: when the server first refused one of its operations (fc1316b's page, reconnected by
    its heartbeat without joining its canvas again, has every later operation refused "Not authenticated")."""
    mine = [u for u in uploads if u.get("hash") == track.digest]
    upload_failed = bool(mine) and not any(u.get("status") == 200 for u in mine)
    left_open = track.settled_at is None and not upload_failed  # nothing settled it, nor refused its upload
    if down_s is not None and left_open:
        track.fail(Cause.CONNECTION_LOST, down_s)
    elif refused_s is not None and left_open:
        track.fail(Cause.REJECTED, refused_s)
    elif track.node_sent_at is not None and track.node_acked_at is None:
        track.fail(Cause.ACK_TIMEOUT, ended_s)
    elif upload_failed:
        codes = {u.get("status") for u in mine}
        track.fail(Cause.HTTP_429 if 429 in codes else Cause.HTTP_TIMEOUT if codes <= {0, None}
                   else Cause.HTTP_ERROR, ended_s)
    elif capped and track.settled_at is None:
        track.fail(Cause.UNFINISHED, ended_s)


def main(argv: list[str]) -> int:
    spec = SessionSpec(**json.loads(Path(argv[0]).read_text()))
    folder = Path(spec.out) / "drops"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        outcome = run_session(spec)
    except Exception as exc:  # no judgement: an error, never a figure
        (folder / f"user-{spec.user}.error").write_text(f"{type(exc).__name__}: {exc}\n")
        raise
    (folder / f"user-{spec.user}.json").write_bytes(orjson.dumps(outcome.to_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
