"""The wire under a drop's socket: raw WebSocket JSON frames, or Socket.IO 4 events.

A wire moves (event, data) pairs and nothing else: ``send`` one, and its reader calls
``on_event(event, data)`` for each that arrives and ``on_lost()`` once when the connection ends.
``DropSocket`` (``loadtests.dropsocket``) holds the drop's logic above it: answers, counts, joining,
resuming. Both wires bind the browser's own source address when it has one (a per-IP limiter must
see distinct browsers) and work under gevent.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import engineio
import gevent
import socketio
from engineio import packet as eio_packet
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

from bulkbench.protocol import encode, parse_server_frame

OnEvent = Callable[[str, dict[str, Any]], None]
OnLost = Callable[[], None]
OPEN_TIMEOUT_S = 30.0


class WireClosed(Exception):
    """The wire is gone; sending on it is not possible."""


class RawWire:
    """bulkbench's own framing: each WebSocket text frame is ``{"event": NAME, "data": {...}}``."""

    def __init__(self, url: str, path: str, headers: dict[str, str], source_address: str | None,
                 on_event: OnEvent, on_lost: OnLost) -> None:
        ws_url = "ws" + url[len("http"):].rstrip("/") + path
        extra = {"source_address": (source_address, 0)} if source_address else {}
        self.conn: ClientConnection = connect(ws_url, max_size=None, open_timeout=OPEN_TIMEOUT_S,
                                              additional_headers=headers, **extra)
        self.on_event, self.on_lost = on_event, on_lost
        self.pings = 0
        """Transport-level pings (the raw wire's are WebSocket control frames, not counted)."""
        self._reader = gevent.spawn(self._read)

    def send(self, event: str, data: dict[str, Any]) -> None:
        try:
            self.conn.send(encode(event, data))
        except ConnectionClosed as exc:
            raise WireClosed(str(exc)) from exc

    def _read(self) -> None:
        try:
            while True:
                event, data = parse_server_frame(self.conn.recv())
                self.on_event(event, data)
        except (ConnectionClosed, OSError):
            self.on_lost()

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            self._reader.join(timeout=5)
            self._reader.kill()


class _CountingEngineIO(engineio.Client):
    """Engine.IO client that counts its heartbeats apart and opens each WebSocket from a given address.

    engine.io's websocket transport (websocket-client) takes a pre-connected socket but no source
    address, so one is made here for every connection attempt.
    """

    source_address: str | None = None
    pings_received = 0

    def _connect_websocket(self, url: str, headers: dict[str, str], engineio_path: str) -> bool:
        if self.source_address:
            parts = urlsplit(url)
            sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=OPEN_TIMEOUT_S,
                                            source_address=(self.source_address, 0))
            self.websocket_extra_options["socket"] = sock
        return super()._connect_websocket(url, headers, engineio_path)

    def _receive_packet(self, pkt: eio_packet.Packet) -> None:
        if pkt.packet_type == eio_packet.PING:
            self.pings_received += 1
        super()._receive_packet(pkt)


class _Client(socketio.Client):
    def _engineio_client_class(self) -> type[engineio.Client]:
        return _CountingEngineIO


class SocketIOWire:
    """Socket.IO 4 over its websocket transport only, as ImageCanvas's page connects
    (``transports: ['websocket']``, no reconnection of its own: ``DropSocket`` resumes)."""

    def __init__(self, url: str, path: str, headers: dict[str, str], source_address: str | None,
                 on_event: OnEvent, on_lost: OnLost) -> None:
        self.on_event, self.on_lost = on_event, on_lost
        self.client = _Client(reconnection=False, handle_sigint=False, request_timeout=OPEN_TIMEOUT_S)
        self.client.eio.source_address = source_address
        self.client.on("*", self._event)
        self.client.on("disconnect", self._disconnected)
        self._lost = False
        try:
            self.client.connect(url, headers=headers, transports=["websocket"], socketio_path=path.strip("/"),
                                wait_timeout=OPEN_TIMEOUT_S)
        except socketio.exceptions.ConnectionError as exc:
            raise ConnectionError(f"Socket.IO connection to {url} failed: {exc}") from exc

    @property
    def pings(self) -> int:
        return self.client.eio.pings_received

    def _event(self, event: str, data: Any = None) -> None:
        self.on_event(event, data if isinstance(data, dict) else {"value": data})

    def _disconnected(self, reason: Any = None) -> None:
        if not self._lost:
            self._lost = True
            self.on_lost()

    def send(self, event: str, data: dict[str, Any]) -> None:
        if self._lost or not self.client.connected:
            raise WireClosed("Socket.IO connection lost")
        self.client.emit(event, data)

    def close(self) -> None:
        self._lost = True
        self.client.disconnect()


Wire = RawWire | SocketIOWire
WIRES: dict[str, type[RawWire] | type[SocketIOWire]] = {"websocket": RawWire, "socketio": SocketIOWire}
# what opening a wire raises while the server is down or dying (InvalidHandshake: a handshake cut short by it;
# ConnectionClosed: a server killed between accepting the connection and reading the handshake's request)
CONNECT_ERRORS: tuple[type[BaseException], ...] = (OSError, WireClosed, TimeoutError, gevent.Timeout,
                                                   InvalidHandshake, ConnectionClosed, ConnectionError,
                                                   socketio.exceptions.SocketIOError)
