"""Send fuzz cases to a real reference server; check every answer, the canvas and the data directory.

``Fuzzer`` owns one server process (``bulkbench serve`` with the fuzz profile; started again if it
dies), a socket joined to a seeded canvas, and what the server is known to hold: its canvas as
``GET /api/canvases/{id}`` shows it, and its stored uploads. ``run(case)`` returns the violations one
case caused, each of one kind:

- ``5xx``: an HTTP 5xx, or an ``internal`` error frame;
- ``crash``: the server process died, or stopped answering ``/healthz``;
- ``canvas``: the server's canvas after the case is not the one before plus exactly the good items;
- ``protocol``: a wrong, missing or extra answer, a socket closed where the protocol does not say so,
  a file stored (or left in ``incoming/``) where it must not be.
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import orjson
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from bulkbench.profile import load_profile
from bulkbench.protocol import BATCH_OPS, Event, OpType, encode, execute_operation_frame, frame_bytes
from reference_server.process import ServerProcess
from reference_server.uploads import safe_name
from tests.fuzzcases import (
    SEED_HASHES,
    SEED_IMAGES,
    SEED_NODE_IDS,
    Applied,
    Closed,
    Echoed,
    Expect,
    Joined,
    PathCase,
    Refused,
    Synced,
    TransportCase,
    UndoState,
    UploadCase,
    WsCase,
    expected_outcome,
    fuzz_limits,
    fuzz_profile_text,
    render,
    same_json,
)
from tests.helpers import WsClient, sha256_hex, upload

KINDS = ("5xx", "crash", "canvas", "protocol")
ANSWER_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 30.0
ERROR_EVENTS = (Event.ERROR, Event.OPERATION_REJECTED)
DATA_DIR_ENTRIES = {"uploads", "thumbnails", "incoming", "server.log", "bulkbench.sqlite3",
                    "bulkbench.sqlite3-wal", "bulkbench.sqlite3-shm"}
Case = WsCase | TransportCase | UploadCase | PathCase


@dataclass(frozen=True)
class Violation:
    kind: str
    note: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.note}: {self.detail}"


class NoAnswer(Exception):
    """The socket gave no answer in time, or closed."""


@dataclass
class Canvas:
    """A canvas as the server shows it: nodes by id, and its version."""

    nodes: dict[str, Any]
    version: int

    @classmethod
    def of(cls, body: dict[str, Any]) -> Canvas:
        return cls({node["id"]: node for node in body["nodes"]}, body["version"])


class Fuzzer:
    def __init__(self, root: Path, base: str = "optimized", ws_cases_per_canvas: int = 250) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.profile_path = self.root / f"fuzz-{base}.toml"
        self.profile_path.write_text(fuzz_profile_text(base))
        self.limits = fuzz_limits(base)
        self.profile = load_profile(self.profile_path)
        assert self.profile.limits == self.limits, "the strategies must see the limits the server enforces"
        self.ws_cases_per_canvas = ws_cases_per_canvas
        self.server: ServerProcess | None = None
        self.http: httpx.Client | None = None
        """Kept open: a client per request would cost more than the request (its TLS context)."""
        self.ws: ClientConnection | None = None
        self._ws_client: WsClient | None = None
        self.starts = 0
        self._tags = 0
        self._canvases = 0
        self._ws_cases_on_canvas = 0
        self.canvas_id = ""
        self.canvas_ids: set[str] = set()
        self.files: list[str] = []
        """Server names of the seeded uploads (``stored_file(k)``)."""
        self.stored_files: set[str] = set()
        self.truth = Canvas({}, 0)
        self.truths: dict[str, Canvas] = {}
        """The last state read of every canvas the fuzzer wrote to, by id."""

    # ------------------------------------------------------------------ the server and its world

    def __enter__(self) -> Fuzzer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.starts += 1
        self.server = ServerProcess(self.profile_path, self.root / f"data-{self.starts}", emulation=False).start()
        self.canvas_ids, self.stored_files = set(), set()
        self.http = httpx.Client(base_url=self.server.url, timeout=HTTP_TIMEOUT_S)
        answers = [upload(self.http, data) for data in SEED_IMAGES]
        for answer in answers:
            answer.raise_for_status()
        self.files = [answer.json()["serverFilename"] for answer in answers]
        self.stored_files.update(self.files)
        self.new_canvas()

    def stop(self) -> None:
        self._close_ws()
        if self.http is not None:
            self.http.close()
            self.http = None
        if self.server is not None:
            self.server.stop()
            self.server = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def check_restart(self) -> list[Violation]:
        """Stop the server and start another on the same data: every canvas must load as it was."""
        assert self.server is not None and self.http is not None
        data_dir = self.server.data_dir
        self._close_ws()
        self.http.close()
        self.server.stop()
        self.server = ServerProcess(self.profile_path, data_dir, emulation=False).start()
        self.http = httpx.Client(base_url=self.server.url, timeout=HTTP_TIMEOUT_S)
        violations = []
        for canvas_id, truth in self.truths.items():
            response = self.http.get(f"/api/canvases/{canvas_id}")
            if response.status_code != 200:
                violations.append(Violation("5xx" if response.status_code >= 500 else "canvas", "restart",
                                            f"{canvas_id}: {response.status_code} {response.text[:200]}"))
                continue
            violations += [Violation("canvas", "restart", f"{canvas_id}: {problem}")
                           for problem in canvas_differences(truth, Canvas.of(orjson.loads(response.content)))]
        self._connect()
        return violations

    def _close_ws(self) -> None:
        if self._ws_client is not None:
            self._ws_client.close()
        self._ws_client = self.ws = None

    def new_canvas(self) -> None:
        """Join a fresh canvas holding ``seed-0..2`` (carrying the hashes of seeded uploads 0..2)."""
        self._canvases += 1
        self._ws_cases_on_canvas = 0
        self.canvas_id = f"fuzz-{self._canvases}"
        self.canvas_ids.add(self.canvas_id)
        self._connect()
        nodes = [{"id": node_id, "type": "media/image", "pos": [k, k], "properties": {"hash": SEED_HASHES[k]}}
                 for k, node_id in enumerate(SEED_NODE_IDS)]
        assert self.ws is not None
        self.ws.send(execute_operation_frame(f"seed-{self.canvas_id}", OpType.BATCH_NODE_CREATE, {"nodes": nodes}))
        event, data, _ = self._answer()
        assert event == Event.OPERATION_ACK and all(r["ok"] for r in data["results"]), data
        self.truth = self._canvas()

    def _connect(self) -> None:
        assert self.server is not None
        self._close_ws()
        self._ws_client = WsClient(self.server.ws_url)
        self.ws = self._ws_client.conn
        self.ws.send(encode(Event.JOIN_CANVAS, {"canvasId": self.canvas_id}))
        event, _, _ = self._answer()
        assert event == Event.CANVAS_JOINED, event
        self.truth = self._canvas()

    def _canvas(self) -> Canvas:
        assert self.http is not None
        response = self.http.get(f"/api/canvases/{self.canvas_id}")
        response.raise_for_status()
        canvas = self.truths[self.canvas_id] = Canvas.of(orjson.loads(response.content))
        return canvas

    def healthy(self) -> bool:
        """The process runs and answers ``/healthz``."""
        if self.server is None or self.server.process is None or self.server.process.poll() is not None:
            return False
        assert self.http is not None
        try:
            return self.http.get("/healthz", timeout=ANSWER_TIMEOUT_S).status_code == 200
        except httpx.HTTPError:
            return False

    def _tag(self) -> str:
        self._tags += 1
        return f"t{self._tags:03d}"

    def _render(self, value: Any, tag: str) -> Any:
        return render(value, tag, self.files, self.canvas_id)

    # ------------------------------------------------------------------ running a case

    def run(self, case: Case) -> list[Violation]:
        """Send one case; return what it broke. A crashed server is started again for the next case."""
        violations: list[Violation] = []
        if self.server is None or not self.healthy():  # it died after the last case was judged
            violations.append(Violation("crash", case.note, "the server was down before this case"))
            self.restart()
        try:
            if isinstance(case, WsCase):
                violations += self._run_ws(case)
            elif isinstance(case, TransportCase):
                violations += self._run_transport(case)
            elif isinstance(case, UploadCase):
                violations += self._run_upload(case)
            else:
                violations += self._run_path(case)
        except httpx.HTTPStatusError as exc:  # GET /api/canvases/{id} failed: the canvas is lost to clients
            kind = "5xx" if exc.response.status_code >= 500 else "canvas"
            violations.append(Violation(kind, case.note, f"the canvas cannot be read: {exc.response.status_code} "
                                                         f"{exc.response.text[:200]}"))
            self._close_ws()
        except (httpx.HTTPError, OSError, ConnectionClosed, NoAnswer) as exc:
            violations.append(Violation("protocol", case.note, f"the harness lost the server: {exc!r}"))
            self._close_ws()
        if not self.healthy():
            violations.append(Violation("crash", case.note, "the server died or stopped answering /healthz"))
            self.restart()
        elif self.ws is None:
            try:
                self._connect()
            except (ConnectionClosed, NoAnswer, OSError) as exc:
                violations.append(Violation("protocol", case.note, f"its canvas can no longer be joined: {exc!r}"))
                self.new_canvas()
        return violations

    # ------------------------------------------------------------------ WebSocket

    def _answer(self, want: frozenset[str] = frozenset(), ws: ClientConnection | None = None,
                ) -> tuple[str, dict[str, Any], str]:
        """The next frame that answers something (broadcasts skipped): event, data, and its text."""
        ws = ws or self.ws
        assert ws is not None
        while True:
            try:
                text = ws.recv(timeout=ANSWER_TIMEOUT_S)
            except TimeoutError as exc:
                raise NoAnswer(f"no answer within {ANSWER_TIMEOUT_S:.0f} s") from exc
            if isinstance(text, bytes):
                return "<binary>", {}, repr(text[:80])
            try:
                frame = orjson.loads(text)
                event, data = frame["event"], frame.get("data") or {}
            except (ValueError, KeyError, TypeError, AttributeError):
                return "<not a frame>", {}, text[:300]
            if event == Event.STATE_UPDATE or (event == Event.UNDO_STATE_UPDATE and event not in want):
                continue
            return event, data, text

    def _flush(self, note: str, tag: str) -> list[Violation]:
        """A ping marks the end of the case: anything but broadcasts before its pong is an extra answer."""
        assert self.ws is not None
        self.ws.send(f'{{"event":"ping","data":{{"fuzzMarker":"{tag}"}}}}')
        extra = []
        while True:
            event, data, text = self._answer()
            if event == Event.PONG and data == {"fuzzMarker": tag}:
                break
            extra.append(Violation("5xx" if data.get("code") == "internal" else "protocol", note,
                                   f"an extra frame after the answer: {text[:300]}"))
        return extra

    def _run_ws(self, case: WsCase) -> list[Violation]:
        self._ws_cases_on_canvas += 1
        if self._ws_cases_on_canvas > self.ws_cases_per_canvas:
            self.new_canvas()
        tag = self._tag()
        frame = case.frame if isinstance(case.frame, bytes) else self._render(case.frame, tag)
        expect = over_the_message_cap(self._render(case.expect, tag), frame, self.limits.max_message_bytes)
        before = self.truth
        assert self.ws is not None
        self.ws.send(frame)
        try:
            want = frozenset({Event.UNDO_STATE_UPDATE}) if isinstance(expect, UndoState) else frozenset()
            answer = self._answer(want)
        except (NoAnswer, ConnectionClosed) as exc:
            self._close_ws()
            return [Violation("protocol", case.note, f"no answer to {_show(frame)}: {exc!r}")]
        violations, expected = judge_answer(case.note, expect, answer, before, self.stored_files)
        if answer[0] == Event.CANVAS_JOINED:  # it moved to another canvas: back to ours
            self.canvas_ids.add(answer[1].get("canvas", {}).get("id", ""))
            self.ws.send(encode(Event.JOIN_CANVAS, {"canvasId": self.canvas_id}))
            if self._answer()[0] != Event.CANVAS_JOINED:
                violations.append(Violation("protocol", case.note, "joining the fuzzer's canvas again failed"))
        violations += self._flush(case.note, tag)
        return violations + self._check_canvas(case.note, expected, frame)

    def _check_canvas(self, note: str, expected: Canvas, frame: str | bytes) -> list[Violation]:
        self.truth = after = self._canvas()
        return [Violation("canvas", note, f"{problem} after {_show(frame)}")
                for problem in canvas_differences(expected, after)]

    def _run_transport(self, case: TransportCase) -> list[Violation]:
        """The frame goes on a socket of its own; the fuzzer's socket must be served on as before."""
        assert self.server is not None
        tag = self._tag()
        payload = transport_payload(case)
        expect = self._render(case.expect, tag)
        before = self.truth
        violations = []
        with connect(self.server.ws_url, max_size=None, open_timeout=10) as victim:
            victim.send(encode(Event.JOIN_CANVAS, {"canvasId": self.canvas_id}))
            self._answer(ws=victim)
            victim.send(payload, text=case.kind != "binary")
            try:
                answer = self._answer(ws=victim)
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
                if not isinstance(expect, Closed) or code != expect.code:
                    violations.append(Violation("protocol", case.note, f"socket closed with {code}, expected {expect}"))
            except NoAnswer as exc:
                violations.append(Violation("protocol", case.note, str(exc)))
            else:
                if isinstance(expect, Closed):
                    violations.append(Violation("protocol", case.note, f"answered {answer[2][:200]} where the "
                                                                       f"socket must close with {expect.code}"))
                else:
                    found, _ = judge_answer(case.note, expect, answer, before, self.stored_files)
                    violations += found
        violations += self._flush(case.note, tag)  # the bystander is served on
        return violations + self._check_canvas(case.note, before, f"<{case.note}, {case.size} bytes>")

    # ------------------------------------------------------------------ HTTP

    def _run_upload(self, case: UploadCase) -> list[Violation]:
        assert self.server is not None
        data_dir = self.server.data_dir
        uploads_before = set(os.listdir(data_dir / "uploads"))
        # a refused body may be left unread, and its connection closed: one connection per upload
        headers = {b"content-type": case.content_type.encode("latin-1"), b"connection": b"close"}
        content: bytes | Iterator[bytes] = _chunks(case.body) if case.streamed else case.body
        assert self.http is not None
        response = self.http.post("/api/upload", content=content, headers=headers)
        violations = judge_http(case.note, response, case.statuses, case.codes)
        new_files = set(os.listdir(data_dir / "uploads")) - uploads_before
        if response.status_code == 200:
            violations += self._check_stored(case, response, self.http, new_files, uploads_before)
        elif new_files:
            violations.append(Violation("protocol", case.note, f"{response.status_code} but stored {new_files}"))
        if leftovers := os.listdir(data_dir / "incoming"):
            violations.append(Violation("protocol", case.note, f"incoming/ still holds {leftovers}"))
        if strays := set(os.listdir(data_dir)) - DATA_DIR_ENTRIES:
            violations.append(Violation("protocol", case.note, f"unexpected files in the data directory: {strays}"))
        return violations + self._check_canvas(case.note, self.truth, f"<upload: {case.note}>")

    def _check_stored(self, case: UploadCase, response: httpx.Response, http: httpx.Client,
                      new_files: set[str], before: set[str]) -> list[Violation]:
        body = response.json()
        name = body.get("serverFilename", "")
        problems = []
        if case.image is None or not safe_name(name):
            problems.append(f"stored {name!r} from a case that must not be stored")
        else:
            if body.get("hash") != sha256_hex(case.image):
                problems.append("the answer's hash is not the file's")
            if case.extension and not name.endswith(case.extension):
                problems.append(f"{name!r} does not end with {case.extension}")
            if new_files != ({name} if name not in before else set()) or (name in before and not body["deduplicated"]):
                problems.append(f"stored {new_files} for an answer naming {name!r}")
            elif http.get(f"/uploads/{name}").content != case.image:
                problems.append(f"/uploads/{name} does not serve the uploaded bytes")
        self.stored_files.add(name)
        return [Violation("protocol", case.note, p) for p in problems]

    def _run_path(self, case: PathCase) -> list[Violation]:
        assert self.server is not None
        target = self._render(case.target, "")
        status, body = raw_get(self.server.url, target)
        path = unquote(urlsplit(target).path)
        exists = {f"/uploads/{f}" for f in self.stored_files} | {f"/api/canvases/{c}" for c in self.canvas_ids}
        violations = []
        if status >= 500:
            violations.append(Violation("5xx", case.note, f"GET {target!r} -> {status} {body[:200]!r}"))
        elif path in exists and status != 200:
            violations.append(Violation("protocol", case.note, f"GET {target!r} -> {status}, expected 200"))
        elif path not in exists and not path.startswith("/thumbnails/") and status == 200:
            violations.append(Violation("protocol", case.note, f"GET {target!r} -> 200 for {path!r}"))
        elif status not in (200, 307, 400, 404, 405, 414):
            violations.append(Violation("protocol", case.note, f"GET {target!r} -> {status}"))
        elif status == 404 and b'"not_found"' not in body:
            violations.append(Violation("protocol", case.note, f"GET {target!r} -> 404 without a JSON error"))
        return violations


# --------------------------------------------------------------------------- judging (pure)


def over_the_message_cap(expect: Expect, frame: str | bytes, max_message_bytes: int) -> Expect:
    """A readable envelope over ``max_message_bytes`` is refused as too large, whatever else it is."""
    if isinstance(frame, bytes) or frame_bytes(frame) <= max_message_bytes or isinstance(expect, Closed):
        return expect
    if isinstance(expect, Refused) and expect.codes & {"bad_json", "bad_frame"}:
        return expect
    operation_id = expect.operation_id if isinstance(expect, Refused | Applied) else None
    return Refused(frozenset({"message_too_large"}), operation_id)


def judge_answer(note: str, expect: Expect, answer: tuple[str, dict[str, Any], str], before: Canvas,
                 stored_files: set[str]) -> tuple[list[Violation], Canvas]:
    """The violations in one answer, and the canvas the server must hold after it."""
    event, data, text = answer
    found: list[str] = []
    expected = before
    if data.get("code") == "internal":
        return [Violation("5xx", note, f"internal error: {text[:300]}")], before
    refused = event in ERROR_EVENTS
    if isinstance(expect, Refused):
        found += _refusal_problems(expect, event, data)
    elif isinstance(expect, Echoed):
        if not (expect.may_refuse and refused):
            echoed = text == expect.text if expect.text is not None else same_json(expect.data, data)
            if event != Event.PONG or not echoed:
                found.append("expected a pong carrying the ping's data")
    elif isinstance(expect, Synced):
        state = data.get("state", {})
        if event != Event.FULL_STATE_SYNC or data.get("stateVersion") != before.version or not same_json(
                list(before.nodes.values()), state.get("nodes")):
            found.append("expected a full_state_sync of the canvas")
    elif isinstance(expect, Joined):
        canvas = data.get("canvas", {})
        if event != Event.CANVAS_JOINED or canvas.get("id") != expect.canvas_id or not isinstance(
                canvas.get("nodes"), list) or data.get("stateVersion") != canvas.get("version"):
            found.append(f"expected canvas_joined for {expect.canvas_id!r}")
    elif isinstance(expect, UndoState):
        if event != Event.UNDO_STATE_UPDATE or not {"canUndo", "canRedo", "undoCount"} <= set(data):
            found.append("expected an undo_state_update")
    elif isinstance(expect, Applied):
        if expect.may_refuse and refused:
            if event == Event.OPERATION_REJECTED and data.get("operationId") != expect.operation_id:
                found.append("a rejection for another operation")
        else:
            outcome = expected_outcome(expect, {"nodes": list(before.nodes.values()), "version": before.version},
                                       stored_files)
            expected = Canvas(outcome.nodes, outcome.version)
            found += _operation_problems(expect, outcome, event, data)
    else:
        found.append(f"answered where the socket must close with {expect.code}")
    return [Violation("protocol", note, f"{p}; got {text[:300]}") for p in found], expected


def _refusal_problems(expect: Refused, event: str, data: dict[str, Any]) -> list[str]:
    if expect.operation_id is None and event != Event.ERROR:
        return ["expected an error frame"]
    if expect.operation_id is not None and (event != Event.OPERATION_REJECTED
                                            or data.get("operationId") != expect.operation_id):
        return [f"expected operation_rejected for {expect.operation_id!r}"]
    if data.get("code") not in expect.codes:
        return [f"expected code {sorted(expect.codes)}"]
    return []


def _operation_problems(expect: Applied, outcome: Any, event: str, data: dict[str, Any]) -> list[str]:
    op_id = expect.operation_id
    if expect.op_type in BATCH_OPS:
        if event != Event.OPERATION_ACK or data.get("operationId") != op_id:
            return [f"expected operation_ack for {op_id!r}"]
        problems = []
        if data.get("stateVersion") != outcome.version:
            problems.append(f"expected stateVersion {outcome.version}")
        results = data.get("results")
        if not isinstance(results, list) or len(results) != len(outcome.results):
            return [*problems, f"expected {len(outcome.results)} results"]
        for index, ((ok, code), result) in enumerate(zip(outcome.results, results, strict=True)):
            if result.get("ok") is not ok or (not ok and result.get("code") != code):
                problems.append(f"item {index}: expected {'ok' if ok else code}")
            elif index in outcome.attached and result.get("nodes") != outcome.attached[index]:
                problems.append(f"item {index}: expected nodes {outcome.attached[index]}")
        return problems
    ((ok, code),) = outcome.results
    if ok and (event != Event.OPERATION_ACK or data.get("operationId") != op_id
               or data.get("stateVersion") != outcome.version):
        return [f"expected operation_ack for {op_id!r} at version {outcome.version}"]
    if not ok and (event != Event.OPERATION_REJECTED or data.get("operationId") != op_id
                   or data.get("code") != code):
        return [f"expected operation_rejected {code} for {op_id!r}"]
    return []


def canvas_differences(expected: Canvas, actual: Canvas) -> list[str]:
    problems = []
    if actual.version != expected.version:
        problems.append(f"canvas version {actual.version}, expected {expected.version}")
    if missing := sorted(expected.nodes.keys() - actual.nodes.keys()):
        problems.append(f"nodes missing: {missing[:5]}")
    if extra := sorted(actual.nodes.keys() - expected.nodes.keys()):
        problems.append(f"nodes that must not be there: {extra[:5]}")
    try:
        changed = [k for k in expected.nodes.keys() & actual.nodes.keys()
                   if not same_json(expected.nodes[k], actual.nodes[k])]
    except RecursionError:
        changed = ["<too deep to compare>"]
    if changed:
        problems.append(f"nodes not as expected: {sorted(changed)[:5]}")
    return problems


def judge_http(note: str, response: httpx.Response, statuses: frozenset[int],
               codes: frozenset[str] | None) -> list[Violation]:
    """A status among ``statuses``; an error as JSON ``{"error": {"code", "message"}}`` with a code in ``codes``."""
    status = response.status_code
    if status >= 500:
        return [Violation("5xx", note, f"{status}: {response.text[:300]}")]
    if status not in statuses:
        return [Violation("protocol", note, f"status {status}, expected {sorted(statuses)}: {response.text[:300]}")]
    if status >= 400:
        try:
            error = response.json()["error"]
            code, _ = error["code"], error["message"]
        except (ValueError, KeyError, TypeError):
            return [Violation("protocol", note, f"{status} without a JSON error: {response.text[:300]}")]
        if codes is not None and code not in codes:
            return [Violation("protocol", note, f"{status} {code}, expected a code in {sorted(codes)}")]
    return []


# --------------------------------------------------------------------------- wire helpers


def transport_payload(case: TransportCase) -> str | bytes:
    rng = random.Random(case.seed)
    if case.kind == "binary":
        return rng.randbytes(case.size)
    if case.kind == "bad_utf8":
        return rng.randbytes(case.size - 1) + b"\xff"  # 0xff is never UTF-8
    if case.kind == "json_text":
        head, tail = '{"event":"ping","data":{"p":"', '"}}'
        return head + "x" * (case.size - len(head) - len(tail)) + tail
    return rng.randbytes(case.size // 2 + 1).hex()[: case.size]


def _chunks(body: bytes, size: int = 16 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start: start + size]


def raw_get(base_url: str, target: str) -> tuple[int, bytes]:
    """``GET target`` with the request target sent byte for byte (no client-side normalising)."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=HTTP_TIMEOUT_S) as sock:
        sock.sendall(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n")
        chunks = []
        deadline = time.monotonic() + HTTP_TIMEOUT_S
        while time.monotonic() < deadline and (chunk := sock.recv(65536)):
            chunks.append(chunk)
    response = b"".join(chunks)
    head, _, body = response.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise NoAnswer(f"no HTTP answer to GET {target!r}: {response[:100]!r}") from None
    return status, body


def _show(frame: str | bytes) -> str:
    text = repr(frame)
    return text if len(text) <= 160 else text[:160] + "..."
