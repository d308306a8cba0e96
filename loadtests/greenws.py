"""A lean WebSocket client for gevent on ``websockets``' sans-I/O ``ClientProtocol``.

``websockets.sync`` hands every frame from a reader thread to the caller (a lock and a condition
per frame); at tens of thousands of frames per second that handoff is the load generator's
bottleneck. Here the protocol object does the framing and this class only moves bytes: many
frames go out in one ``sendall``, every frame a ``recv`` brought in is parsed at once. The
WebSocket protocol itself stays ``websockets``' (the same design as its own asyncio and sync
layers, thinner).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

RECV_BYTES = 256 * 1024


class ConnectionClosed(Exception):
    pass


class GreenWebSocket:
    def __init__(self, url: str, compression: bool = True, timeout_s: float = 30.0,
                 headers: dict[str, str] | None = None) -> None:
        uri = parse_uri(url)
        self.sock = socket.create_connection((uri.host, uri.port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        extensions = enable_client_permessage_deflate(None) if compression else None
        self.protocol = ClientProtocol(uri, extensions=extensions, max_size=None)
        request = self.protocol.connect()
        for name, value in (headers or {}).items():
            request.headers[name] = value
        self.protocol.send_request(request)
        self._flush()
        self._await_handshake()
        if self.protocol.handshake_exc is not None:
            raise self.protocol.handshake_exc
        self.sock.settimeout(None)

    def _await_handshake(self) -> None:
        while True:
            if any(isinstance(event, Response) for event in self.protocol.events_received()):
                return
            self._feed()

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def _feed(self) -> None:
        data = self.sock.recv(RECV_BYTES)
        if not data:
            self.protocol.receive_eof()
            raise ConnectionClosed("server closed the connection")
        self.protocol.receive_data(data)

    def send_many(self, texts: Iterable[str]) -> int:
        """Frame every text and write them all at once; returns how many."""
        count = 0
        for text in texts:
            self.protocol.send_text(text.encode())
            count += 1
        self._flush()
        return count

    def receive(self) -> list[str]:
        """Block until at least one text frame has arrived; return every frame that has."""
        while True:
            frames = [event.data.decode() for event in self.protocol.events_received()
                      if isinstance(event, Frame) and event.opcode is Opcode.TEXT]
            self._flush()  # answers to pings, close frames
            if frames:
                return frames
            self._feed()

    def close(self) -> None:
        try:
            self.protocol.send_close()
            self._flush()
        except OSError:
            pass
        finally:
            self.sock.close()
