"""One drop's socket, as a browser tab holds it: events out in order, answers matched as they come.

Incoming ``operation_ack`` / ``operation_rejected`` answer waiting operations by ``operationId``;
every event sent and received is counted by name (the transport's own heartbeats apart), and those
are the counts the summary reports. The wire under it (raw WebSocket or Socket.IO) and the shape of
joining and of node creates come from the target description (``bulkbench.target``).

A lost connection answers every waiting operation ``connection_lost``; the next event to send
reconnects and rejoins the canvas first (backing off, within ``resume_s``), as a browser's
socket.io client does. The strategy decides what to resend; the server applies an operation id once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import AsyncResult
from gevent.lock import Semaphore

from bulkbench.effects import Answer, AnswerKind
from bulkbench.protocol import Event, OpType
from bulkbench.target import Target, fill
from loadtests.wires import CONNECT_ERRORS, WIRES, Wire, WireClosed

ANSWER_EVENTS = (Event.OPERATION_ACK, Event.OPERATION_REJECTED)
RESUME_S = 60.0
"""How long a lost socket keeps trying to reconnect before its frames fail ``connection_lost``."""
RESUME_BACKOFF_S = (0.1, 2.0)
"""First and largest pause between reconnection attempts (doubling)."""
JOIN_TIMEOUT_S = 30.0


class SocketLost(Exception):
    """The socket is lost and could not be resumed."""


def node_for_target(target: Target, node: dict[str, Any]) -> dict[str, Any]:
    """A node create's params (bulkbench's own shape, ``strategies.common.node_params``) as the target
    wants them: its node type, its property names, an id or none."""
    ops = target.operations
    out = {key: value for key, value in node.items() if key != "id" or ops.node_id == "client"}
    out["type"] = ops.node_type
    if ops.node_properties:
        props = node.get("properties", {})
        values = {"hash": props.get("hash", ""), "filename": props.get("filename", ""),
                  "width": props.get("width", 0), "height": props.get("height", 0),
                  "size_bytes": props.get("bytes", 0)}
        out["properties"] = fill(dict(ops.node_properties), values)
    return out


def params_for_target(target: Target, op_type: str, params: dict[str, Any]) -> dict[str, Any]:
    if op_type == OpType.NODE_CREATE:
        return node_for_target(target, params)
    if op_type == OpType.BATCH_NODE_CREATE:
        return {**params, "nodes": [node_for_target(target, node) for node in params["nodes"]]}
    return params


class DropSocket:
    def __init__(self, target: Target, base_url: str, headers: dict[str, str] | None = None,
                 source_address: str | None = None, username: str = "user", emulated_rtt_s: float = 0.0,
                 on_frame: Callable[[str, dict[str, Any]], None] | None = None, resume_s: float = RESUME_S) -> None:
        self.target = target
        self.base_url = base_url
        self.headers = headers or {}
        self.source_address = source_address
        self.username = username
        self.emulated_rtt_s = emulated_rtt_s
        self.on_frame = on_frame
        self.resume_s = resume_s
        self.canvas_id: Any = None
        self.joined = False
        """The open socket is in the canvas (not after a ``reopen`` without rejoining)."""
        self.reconnects = 0
        self.shut = False
        self.closed = True
        self._resuming = Semaphore()
        self.sent = 0
        self.received = 0
        self.sent_by_event: dict[str, int] = {}
        self.received_by_event: dict[str, int] = {}
        self.pending: dict[str, AsyncResult] = {}
        self.sent_at: dict[str, float] = {}
        self.op_types: dict[str, str] = {}
        self.waiting_for: dict[str, AsyncResult] = {}
        """Events a join is waiting for (``canvas_joined``, ``full_state_sync``)."""
        self._pings_before = 0
        self.wire: Wire | None = None
        self._open()

    def _open(self) -> None:
        if self.wire is not None:
            self._pings_before += self.wire.pings
        make = WIRES[self.target.socket.transport]
        self.closed = False
        wire: Wire | None = None

        def lost() -> None:
            self._lost(wire)

        wire = make(self.base_url, self.target.socket.path, self.headers, self.source_address,
                    self._received, lost)
        self.wire = wire

    @property
    def transport_pings(self) -> int:
        """The transport's own heartbeats received (Engine.IO pings): counted apart from events."""
        return self._pings_before + (self.wire.pings if self.wire is not None else 0)

    def resume(self) -> bool:
        """Reconnect and rejoin after a lost connection; False if that fails within ``resume_s``."""
        with self._resuming:  # one greenlet reconnects; the others find it open
            deadline, pause = time.monotonic() + self.resume_s, RESUME_BACKOFF_S[0]
            while self.closed and not self.shut and time.monotonic() < deadline:
                try:
                    self._open()
                    self.joined = False
                    if self.canvas_id is not None:
                        self.join(self.canvas_id, timeout_s=max(0.1, deadline - time.monotonic()))
                    self.reconnects += 1
                except (*CONNECT_ERRORS, SocketLost):
                    self.closed = True
                    gevent.sleep(pause)
                    pause = min(pause * 2, RESUME_BACKOFF_S[1])
            return not self.closed

    def reopen(self, rejoin: bool) -> None:
        """Close the socket and open a new one, as a page that found its socket dead does; without
        ``rejoin`` the new one is not in the canvas, and the server refuses its operations. Answers still
        owed on the old socket are lost with it."""
        old = self.wire
        self.closed, self.joined = True, False
        if old is not None:
            old.close()
        self._answer_lost()
        try:
            self._open()
            if rejoin and self.canvas_id is not None:
                self.join(self.canvas_id)
            self.reconnects += 1
        except (*CONNECT_ERRORS, SocketLost):
            self.closed = True  # the next send resumes (and rejoins), as after any lost connection

    # ------------------------------------------------------------------ sending

    def _emit(self, event: str, data: dict[str, Any]) -> None:
        """Send one event on the open wire; raises WireClosed."""
        if self.emulated_rtt_s:
            gevent.sleep(self.emulated_rtt_s / 2)
        assert self.wire is not None
        self.wire.send(event, data)
        self.sent += 1
        name = str(event)
        self.sent_by_event[name] = self.sent_by_event.get(name, 0) + 1

    def send(self, event: str, data: dict[str, Any]) -> None:
        """Send one event, reconnecting first if the socket was lost; a loss is noted, never raised."""
        if self.closed and not self.resume():
            return
        if event == Event.REQUEST_FULL_SYNC and self.canvas_id is not None:
            data = {"canvasId": self.canvas_id, **data}
        try:
            self._emit(event, data)
        except WireClosed:
            self._lost(self.wire)

    def send_op(self, operation_id: str, op_type: str, params: dict[str, Any]) -> None:
        result = self.pending.get(operation_id)
        if result is None or result.ready():
            self.pending[operation_id] = AsyncResult()
        self.sent_at[operation_id] = time.perf_counter()
        self.op_types[operation_id] = str(op_type)
        if self.closed and not self.resume():
            self._answer_lost()
            return
        data = {"operationId": operation_id, "type": str(op_type),
                "params": params_for_target(self.target, str(op_type), params)}
        try:
            self._emit(Event.EXECUTE_OPERATION, data)
        except WireClosed:
            self._lost(self.wire)

    def join(self, canvas_id: Any, timeout_s: float = JOIN_TIMEOUT_S) -> dict[str, Any]:
        """Join the canvas as the target wants it (and full-sync, if it wants that too); the join's answer."""
        self.canvas_id = canvas_id
        spec = self.target.join
        values = {"canvas": canvas_id, "user": self.username}
        deadline = time.monotonic() + timeout_s
        joined = self._await_event(spec.answer, lambda: self._emit(spec.event, fill(dict(spec.payload), values)),
                                   timeout_s)
        if spec.full_sync:
            self._await_event(Event.FULL_STATE_SYNC,
                              lambda: self._emit(Event.REQUEST_FULL_SYNC, {"canvasId": canvas_id}),
                              max(0.1, deadline - time.monotonic()))
        self.joined = True
        return joined

    def full_sync(self, timeout_s: float = JOIN_TIMEOUT_S) -> dict[str, Any]:
        """The server's state of the canvas, over the socket (joined again first if the page's socket left
        it: the judge reads the canvas, whatever the page did to its socket)."""
        if self.closed and not self.resume():
            raise SocketLost("socket lost")
        if not self.joined and self.canvas_id is not None:
            self.join(self.canvas_id, timeout_s)
        return self._await_event(Event.FULL_STATE_SYNC,
                                 lambda: self._emit(Event.REQUEST_FULL_SYNC, {"canvasId": self.canvas_id}),
                                 timeout_s)

    def _await_event(self, event: str, send: Callable[[], None], timeout_s: float) -> dict[str, Any]:
        waiter = self.waiting_for[event] = AsyncResult()
        try:
            send()
            return waiter.get(timeout=timeout_s)
        except gevent.Timeout:
            raise SocketLost(f"no {event} within {timeout_s:g} s") from None
        except WireClosed as exc:
            raise SocketLost(str(exc)) from exc
        finally:
            self.waiting_for.pop(event, None)

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

    def _received(self, event: str, data: dict[str, Any]) -> None:
        self.received += 1
        self.received_by_event[event] = self.received_by_event.get(event, 0) + 1
        if self.emulated_rtt_s:
            gevent.sleep(self.emulated_rtt_s / 2)
        if event in ANSWER_EVENTS:
            self._answer(event, data)
        waiter = self.waiting_for.get(event)
        if waiter is not None and not waiter.ready():
            waiter.set(data)
        if self.on_frame is not None:
            self.on_frame(event, data)

    def _answer(self, event: str, data: dict[str, Any]) -> None:
        op_id = data.get("operationId")
        result = self.pending.get(op_id)
        if result is None or result.ready():
            return  # an answer nobody waits for any more (abandoned after a timeout)
        kind = AnswerKind.ACK if event == Event.OPERATION_ACK else AnswerKind.REJECTED
        result.set(Answer(kind, data, time.perf_counter() - self.sent_at.get(op_id, time.perf_counter())))

    def _lost(self, wire: Wire | None) -> None:
        if wire is not self.wire or self.closed:
            return  # an earlier connection's reader, ending after a resume
        self.closed = True
        for waiter in self.waiting_for.values():
            if not waiter.ready():
                waiter.set_exception(WireClosed("connection lost"))
        self._answer_lost()

    def _answer_lost(self) -> None:
        for result in self.pending.values():
            if not result.ready():
                result.set(Answer(AnswerKind.CONNECTION_LOST))

    def close(self) -> None:
        self.closed = self.shut = True
        if self.wire is not None:
            self.wire.close()
