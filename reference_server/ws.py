"""The server's sockets: raw WebSocket JSON frames on ``/ws``, Socket.IO 4 on ``/socket.io/``.

``Connection`` is one client socket whatever carries it: it reads typed messages (``handle``), hands
operations to the service, and writes frames through one writer task draining a bounded outbox, so a
slow reader cannot make the server buffer without end: over ``max_pending_frames`` or
``max_pending_bytes`` queued, or when one frame waits ``send_stall_s`` for the reader, the connection
is dropped (1008) and its reader cancelled. The two transports are thin: ``websocket_endpoint``
moves frames, ``socketio_server`` moves events (python-socketio's ASGI server, beside ``/ws``, as
ImageCanvas runs Socket.IO beside Express). Operations run as tasks, so one client may pipeline; the
``ops`` stage's FIFO keeps their order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import socketio
from starlette.websockets import WebSocket, WebSocketDisconnect

from bulkbench.profile import Overloaded
from bulkbench.protocol import (
    MESSAGE_EVENTS,
    ClientMessage,
    ErrorCode,
    ProtocolError,
    encode,
    event_of,
    loads,
    parse_client_frame,
)
from bulkbench.server_core import Execute, Session, overloaded, rejection
from reference_server.http import scope_token

if TYPE_CHECKING:
    from reference_server.app import Server

log = logging.getLogger("bulkbench.server")
CLOSE_POLICY = 1008
SOCKETIO_PATH = "socket.io"

Deliver = Callable[[str], Awaitable[None]]
"""Writes one frame's text to the client (raw: as it is; Socket.IO: as its event)."""
Hangup = Callable[[int, str], Awaitable[None]]


class Connection:
    """One client socket as a room member: frames queue in ``outbox`` and a writer sends them."""

    def __init__(self, server: Server, deliver: Deliver, hangup: Hangup, handshake_token: str | None) -> None:
        self.server = server
        self.deliver = deliver
        self.hangup = hangup
        self.user_id = server.service.new_session_id()
        auth = server.auth
        authorize = None if auth is None else lambda token, canvas_id: auth.authorize(token, canvas_id, time.time())
        self.session = Session(self.user_id, self, server.service.open, authorize, handshake_token)
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.pending_bytes = 0
        self.overflowed = False
        self.reader: asyncio.Task[object] | None = None
        """The task reading this socket: cancelled when the client is dropped for not reading."""
        self.running: set[asyncio.Task[None]] = set()
        self.count_in = server.metrics.ws_frame_counter("in")
        self.writer = asyncio.create_task(self.write_loop())

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
                    await asyncio.wait_for(self.deliver(text), stall_s)
                except TimeoutError:
                    self._drop("stalled", f"a frame waited send_stall_s={stall_s:g} for the reader")
                    return
                count_out(event_of(text))
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        if self.overflowed:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError, TimeoutError):
                await asyncio.wait_for(self.hangup(CLOSE_POLICY, "too many frames waiting for a slow reader"),
                                       stall_s)

    def handle(self, message: ClientMessage | ProtocolError) -> None:
        """One message from the client: the session answers it, or hands an operation to the service."""
        self.count_in(MESSAGE_EVENTS.get(type(message), "invalid"))
        reply = self.session.receive(message)
        if isinstance(reply, Execute):
            task = asyncio.create_task(self.execute(reply))
            self.running.add(task)
            task.add_done_callback(self.running.discard)
        elif reply is not None:
            self.send(self.server.service.encode_reply(reply))

    async def execute(self, order: Execute) -> None:
        message, service = order.message, self.server.service
        try:
            await service.execute(order.room, message, self)
        except Overloaded as exc:
            self.send(service.encode_reply(overloaded(message.operation_id, exc)))
        except Exception:
            log.exception("operation %s failed", message.operation_id)
            self.send(service.encode_reply(
                rejection(ProtocolError(ErrorCode.INTERNAL, "internal error", message.operation_id))))

    def leave(self) -> None:
        self.session.leave()

    async def finish(self) -> None:
        """The client is gone: leave the room, let running operations end, flush and stop the writer."""
        self.leave()
        if self.running:
            await asyncio.gather(*self.running, return_exceptions=True)
        self.outbox.put_nowait(None)
        await asyncio.gather(self.writer, return_exceptions=True)


async def websocket_endpoint(websocket: WebSocket) -> None:
    server: Server = websocket.app.state.server
    limits = server.profile.limits
    handshake_token = scope_token(websocket.scope) if server.auth else None
    await websocket.accept()
    server.metrics.ws_connections.inc()
    conn = Connection(server, websocket.send_text, lambda code, reason: websocket.close(code, reason),
                      handshake_token)
    conn.reader = asyncio.current_task()
    try:
        while not conn.overflowed:
            received = await websocket.receive()
            if received["type"] == "websocket.disconnect":
                break
            frame = received.get("text")
            conn.handle(parse_client_frame(frame if frame is not None else received.get("bytes", b""), limits))
    except WebSocketDisconnect:
        pass
    except asyncio.CancelledError:
        if not conn.overflowed:
            raise  # the server is stopping: not ours to swallow
    finally:
        server.metrics.ws_connections.dec()
        await conn.finish()


def socketio_server(server: Server) -> socketio.AsyncServer:
    """The same connections over Socket.IO 4: each event's data is the frame's ``data``, so an event
    is parsed, limited and answered exactly as the raw frame ``{"event": NAME, "data": DATA}`` is."""
    limits = server.profile.limits
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*", max_http_buffer_size=limits.max_frame_bytes,
                               async_handlers=False)  # events handled in arrival order, as frames are
    connections: dict[str, Connection] = {}

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = scope_token(environ["asgi.scope"]) if server.auth else None
        if isinstance(auth, dict) and isinstance(auth.get("token"), str):
            token = auth["token"]

        async def deliver(text: str) -> None:
            frame = loads(text)
            await sio.emit(frame["event"], frame["data"], to=sid)

        async def hangup(code: int, reason: str) -> None:
            await sio.disconnect(sid)

        server.metrics.ws_connections.inc()
        connections[sid] = Connection(server, deliver, hangup, token)

    @sio.event
    async def disconnect(sid: str, reason: Any = None) -> None:
        conn = connections.pop(sid, None)
        if conn is not None:
            server.metrics.ws_connections.dec()
            await conn.finish()

    @sio.on("*")
    async def any_event(event: str, sid: str, data: Any = None) -> None:
        conn = connections.get(sid)
        if conn is None or conn.overflowed:
            return
        frame = encode(event, data if data is not None else {})
        conn.handle(parse_client_frame(frame, limits))

    return sio
