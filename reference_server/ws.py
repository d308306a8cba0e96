"""The WebSocket transport: read frames, hand typed messages to the service, write its frames.

One reader loop per connection and one writer task draining a bounded outbox, so a slow reader
cannot make the server buffer without end: over ``max_pending_frames`` or ``max_pending_bytes``
queued, or when one frame waits ``send_stall_s`` for the reader, the connection is dropped (1008)
and its reader loop cancelled, so a client that stops reading holds nothing for long.
Operations run as tasks, so one client may pipeline; the ``ops`` stage's FIFO keeps their order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket, WebSocketDisconnect

from bulkbench.profile import Overloaded
from bulkbench.protocol import (
    ErrorCode,
    Event,
    ExecuteOperation,
    JoinCanvas,
    Ping,
    ProtocolError,
    RequestFullSync,
    RequestUndoState,
    encode,
    event_of,
    parse_client_frame,
)
from reference_server.http import scope_token
from reference_server.service import Room

if TYPE_CHECKING:
    from reference_server.app import Server

log = logging.getLogger("bulkbench.server")
CLOSE_POLICY = 1008


class Connection:
    """One client socket as a room member: frames queue in ``outbox`` and a writer sends them."""

    def __init__(self, websocket: WebSocket, server: Server) -> None:
        self.websocket = websocket
        self.server = server
        self.user_id = server.service.new_session_id()
        self.room: Room | None = None
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.pending_bytes = 0
        self.overflowed = False
        self.reader: asyncio.Task[object] | None = None
        """The task reading this socket: cancelled when the client is dropped for not reading."""

    def send(self, text: str) -> None:
        if self.overflowed:
            return
        limits = self.server.profile.limits
        if self.outbox.qsize() >= limits.max_pending_frames or (
                self.pending_bytes and self.pending_bytes + len(text) > limits.max_pending_bytes):
            self._drop("backlog", "over max_pending_frames or max_pending_bytes waiting for a slow reader")
            return
        self.pending_bytes += len(text)
        self.outbox.put_nowait(text)

    def _drop(self, reason: str, why: str) -> None:
        """Give up on a client that does not read: free its outbox and stop reading it."""
        if self.overflowed:
            return
        self.overflowed = True
        self.server.metrics.ws_dropped_total.labels(reason).inc()
        log.warning("dropping a WebSocket client: %s", why)
        while not self.outbox.empty():
            self.outbox.get_nowait()
        self.pending_bytes = 0
        self.outbox.put_nowait(None)
        if self.reader is not None and self.reader is not asyncio.current_task():
            self.reader.cancel()

    async def write_loop(self) -> None:
        count_out = self.server.metrics.ws_frame_counter("out")
        stall_s = self.server.profile.limits.send_stall_s
        try:
            while (text := await self.outbox.get()) is not None:
                self.pending_bytes -= len(text)
                try:
                    await asyncio.wait_for(self.websocket.send_text(text), stall_s)
                except TimeoutError:
                    self._drop("stalled", f"a frame waited send_stall_s={stall_s:g} for the reader")
                    return
                count_out(event_of(text))
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        if self.overflowed:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await asyncio.wait_for(self.websocket.close(CLOSE_POLICY, "too many frames waiting for a slow reader"),
                                       stall_s)

    async def execute(self, message: ExecuteOperation, frame: str) -> None:
        assert self.room is not None
        try:
            await self.server.service.execute(self.room, message, frame, self)
        except Overloaded as exc:
            self.send(
                self.server.service.rejection(
                    ProtocolError(ErrorCode.OVERLOADED, str(exc), message.operation_id, exc.retry_after_s)
                )
            )
        except Exception:
            log.exception("operation %s failed", message.operation_id)
            self.send(
                self.server.service.rejection(
                    ProtocolError(ErrorCode.INTERNAL, "internal error", message.operation_id)
                )
            )

    def leave(self) -> None:
        if self.room is not None:
            self.room.members.discard(self)
            self.room = None


async def websocket_endpoint(websocket: WebSocket) -> None:
    server: Server = websocket.app.state.server
    service, limits = server.service, server.profile.limits
    count_in = server.metrics.ws_frame_counter("in")
    handshake_token = scope_token(websocket.scope) if server.auth else None
    await websocket.accept()
    server.metrics.ws_connections.inc()
    conn = Connection(websocket, server)
    conn.reader = asyncio.current_task()
    writer = asyncio.create_task(conn.write_loop())
    running: set[asyncio.Task[None]] = set()
    try:
        while not conn.overflowed:
            received = await websocket.receive()
            if received["type"] == "websocket.disconnect":
                break
            frame = received.get("text")
            message = parse_client_frame(frame if frame is not None else received.get("bytes", b""), limits)
            match message:
                case ExecuteOperation():
                    count_in(Event.EXECUTE_OPERATION)
                    if conn.room is None:
                        conn.send(service.rejection(ProtocolError(
                            ErrorCode.NOT_JOINED, "join_canvas first", message.operation_id)))
                        continue
                    task = asyncio.create_task(conn.execute(message, frame))
                    running.add(task)
                    task.add_done_callback(running.discard)
                case JoinCanvas(canvas_id, token):
                    count_in(Event.JOIN_CANVAS)
                    if server.auth is not None:
                        try:
                            server.auth.authorize(token or handshake_token, canvas_id, time.time())
                        except ProtocolError as refused:
                            conn.send(service.rejection(refused))
                            continue
                    conn.leave()
                    conn.room = service.open(canvas_id)
                    conn.room.members.add(conn)
                    canvas = conn.room.canvas
                    conn.send(encode(Event.CANVAS_JOINED, {
                        "canvas": canvas.to_json(),
                        "session": {"sessionId": conn.user_id, "userId": conn.user_id},
                        "stateVersion": canvas.version,
                    }))
                case RequestFullSync():
                    count_in(Event.REQUEST_FULL_SYNC)
                    if conn.room is None:
                        conn.send(service.rejection(ProtocolError(ErrorCode.NOT_JOINED, "join_canvas first")))
                        continue
                    canvas = conn.room.canvas
                    conn.send(encode(Event.FULL_STATE_SYNC, {
                        "state": {"nodes": list(canvas.nodes.values()), "version": canvas.version},
                        "stateVersion": canvas.version,
                    }))
                case RequestUndoState():
                    count_in(Event.REQUEST_UNDO_STATE)
                    if conn.room is not None:
                        conn.send(encode(Event.UNDO_STATE_UPDATE, service.undo_state(conn.room)))
                case Ping(data):
                    count_in(Event.PING)
                    conn.send(encode(Event.PONG, data))
                case ProtocolError():
                    count_in("invalid")
                    conn.send(service.rejection(message))
    except WebSocketDisconnect:
        pass
    except asyncio.CancelledError:
        if not conn.overflowed:
            raise  # the server is stopping: not ours to swallow
    finally:
        conn.leave()
        server.metrics.ws_connections.dec()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        conn.outbox.put_nowait(None)
        await asyncio.gather(writer, return_exceptions=True)
