"""One drop's WebSocket, as a browser tab holds it: frames out in order, one reader greenlet.

The reader matches ``operation_ack`` / ``operation_rejected`` to waiting operations by
``operationId`` and counts every frame it sees; frames really sent and received are the counts
the summary reports. Works under gevent (``websockets.sync`` uses threads, which gevent patches).

A lost connection answers every waiting operation ``connection_lost``; the next frame to send
reconnects and rejoins the canvas first (backing off, within ``resume_s``), as a browser's
socket.io client does. The strategy decides what to resend; the server applies an operation id once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import AsyncResult
from gevent.lock import Semaphore
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection, connect

from bulkbench.effects import Answer, AnswerKind
from bulkbench.protocol import Event, encode, execute_operation_frame, parse_server_frame

ANSWER_EVENTS = (Event.OPERATION_ACK, Event.OPERATION_REJECTED)
RESUME_S = 60.0
"""How long a lost socket keeps trying to reconnect before its frames fail ``connection_lost``."""
RESUME_BACKOFF_S = (0.1, 2.0)
"""First and largest pause between reconnection attempts (doubling)."""
CONNECT_ERRORS = (OSError, WebSocketException, TimeoutError, gevent.Timeout)


class DropSocket:
    def __init__(self, ws_url: str, headers: dict[str, str] | None = None, emulated_rtt_s: float = 0.0,
                 on_frame: Callable[[str, dict[str, Any]], None] | None = None, resume_s: float = RESUME_S) -> None:
        self.ws_url = ws_url
        self.headers = headers or {}
        self.emulated_rtt_s = emulated_rtt_s
        self.on_frame = on_frame
        self.resume_s = resume_s
        self.canvas_id: str | None = None
        self.reconnects = 0
        self.shut = False
        self._resuming = Semaphore()
        self.sent = 0
        self.received = 0
        self.received_by_event: dict[str, int] = {}
        self.pending: dict[str, AsyncResult] = {}
        self.sent_at: dict[str, float] = {}
        self.op_types: dict[str, str] = {}
        self.joined = AsyncResult()
        self._open()

    def _open(self) -> None:
        self.conn: ClientConnection = connect(self.ws_url, max_size=None, open_timeout=30,
                                              additional_headers=self.headers).__enter__()
        self.closed = False
        self._reader = gevent.spawn(self._read, self.conn)

    def resume(self) -> bool:
        """Reconnect and rejoin after a lost connection; False if that fails within ``resume_s``."""
        with self._resuming:  # one greenlet reconnects; the others find it open
            deadline, pause = time.monotonic() + self.resume_s, RESUME_BACKOFF_S[0]
            while self.closed and not self.shut and time.monotonic() < deadline:
                try:
                    self._open()
                    if self.canvas_id is not None:
                        self.join(self.canvas_id, timeout_s=max(0.1, deadline - time.monotonic()))
                    self.reconnects += 1
                except CONNECT_ERRORS:
                    self.closed = True
                    gevent.sleep(pause)
                    pause = min(pause * 2, RESUME_BACKOFF_S[1])
            return not self.closed

    # ------------------------------------------------------------------ sending

    def send_text(self, text: str) -> None:
        """Send one frame, reconnecting first if the socket was lost; raises ConnectionClosed if it stays lost."""
        if self.closed and not self.resume():
            raise ConnectionClosed(None, None)
        if self.emulated_rtt_s:
            gevent.sleep(self.emulated_rtt_s / 2)
        self.conn.send(text)
        self.sent += 1

    def send(self, event: str, data: dict[str, Any]) -> None:
        try:
            self.send_text(encode(event, data))
        except ConnectionClosed:
            self._lost(self.conn)

    def send_op(self, operation_id: str, op_type: str, params: dict[str, Any]) -> None:
        result = self.pending.get(operation_id)
        if result is None or result.ready():
            self.pending[operation_id] = AsyncResult()
        self.sent_at[operation_id] = time.perf_counter()
        self.op_types[operation_id] = str(op_type)
        try:
            self.send_text(execute_operation_frame(operation_id, op_type, params))
        except ConnectionClosed:
            self._lost(self.conn)

    def join(self, canvas_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
        self.canvas_id = canvas_id
        self.joined = AsyncResult()
        self.conn.send(encode(Event.JOIN_CANVAS, {"canvasId": canvas_id}))
        self.sent += 1
        return self.joined.get(timeout=timeout_s)

    # ------------------------------------------------------------------ answers

    def await_answers(self, operation_ids: tuple[str, ...], timeout_s: float) -> dict[str, Answer]:
        deadline = time.perf_counter() + timeout_s
        out = {}
        for op_id in operation_ids:
            result = self.pending.setdefault(op_id, AsyncResult())
            try:
                out[op_id] = result.get(timeout=max(0.0, deadline - time.perf_counter()))
                del self.pending[op_id]
            except gevent.Timeout:
                out[op_id] = Answer(AnswerKind.TIMEOUT, latency_s=timeout_s)
        return out

    def _read(self, conn: ClientConnection) -> None:
        try:
            while True:
                text = conn.recv()
                self.received += 1
                if self.emulated_rtt_s:
                    gevent.sleep(self.emulated_rtt_s / 2)
                event, data = parse_server_frame(text)
                self.received_by_event[event] = self.received_by_event.get(event, 0) + 1
                if event in ANSWER_EVENTS:
                    self._answer(event, data)
                elif event == Event.CANVAS_JOINED:
                    self.joined.set(data)
                if self.on_frame is not None:
                    self.on_frame(event, data)
        except (ConnectionClosed, OSError):
            self._lost(conn)

    def _answer(self, event: str, data: dict[str, Any]) -> None:
        op_id = data.get("operationId")
        result = self.pending.get(op_id)
        if result is None or result.ready():
            return  # an answer nobody waits for any more (abandoned after a timeout)
        kind = AnswerKind.ACK if event == Event.OPERATION_ACK else AnswerKind.REJECTED
        result.set(Answer(kind, data, time.perf_counter() - self.sent_at.get(op_id, time.perf_counter())))

    def _lost(self, conn: ClientConnection) -> None:
        if conn is not self.conn:
            return  # an earlier connection's reader, ending after a resume
        self.closed = True
        with contextlib.suppress(*CONNECT_ERRORS):
            conn.close()
        if not self.joined.ready():
            self.joined.set_exception(ConnectionClosed(None, None))
        for result in self.pending.values():
            if not result.ready():
                result.set(Answer(AnswerKind.CONNECTION_LOST))

    def close(self) -> None:
        self.closed = self.shut = True
        try:
            self.conn.close()
        finally:
            self._reader.join(timeout=5)
            self._reader.kill()
