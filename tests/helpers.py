"""Test helpers: a real WebSocket client, real images, real multipart uploads."""

from __future__ import annotations

import hashlib
import io
import os
import random
import select
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from websockets.sync.client import ClientConnection, connect

from bulkbench.protocol import Event, OpType, encode, execute_operation_frame, parse_server_frame
from reference_server.process import ServerProcess

RECV_TIMEOUT_S = 20.0
IN_CI = os.environ.get("BULKBENCH_CI") == "1"
"""Set by ``.ci/run``: there, a test that cannot run is a failure, never a silent skip."""


def needs(reason: str | None) -> None:
    """Skip this test with ``reason`` when something it needs is missing here (fail instead in CI)."""
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI must run this test, but: {reason}")
    pytest.skip(reason)


class WsClient:
    """A test's view of one socket: send frames, read until the frame it waits for."""

    def __init__(self, ws_url: str, token: str | None = None) -> None:
        self._stack = ExitStack()
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self.conn: ClientConnection = self._stack.enter_context(
            connect(ws_url, max_size=None, open_timeout=10, additional_headers=headers)
        )
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def close(self) -> None:
        self._stack.close()

    def send(self, event: str, data: dict[str, Any]) -> None:
        self.conn.send(encode(event, data))

    def recv(self) -> tuple[str, dict[str, Any]]:
        event, data = parse_server_frame(self.conn.recv(timeout=RECV_TIMEOUT_S))
        self.seen.append((event, data))
        return event, data

    def until(self, *events: str, operation_id: str | None = None) -> tuple[str, dict[str, Any]]:
        while True:
            event, data = self.recv()
            if event in events and (operation_id is None or data.get("operationId") == operation_id):
                return event, data

    def join(self, canvas_id: str) -> dict[str, Any]:
        self.send(Event.JOIN_CANVAS, {"canvasId": canvas_id})
        return self.until(Event.CANVAS_JOINED)[1]

    def op(self, operation_id: str, op_type: OpType, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Send one operation; return its answer (ack or rejection)."""
        self.conn.send(execute_operation_frame(operation_id, op_type, params))
        return self.until(Event.OPERATION_ACK, Event.OPERATION_REJECTED, operation_id=operation_id)


def node(i: int, image_hash: str | None = None) -> dict[str, Any]:
    props = {"hash": image_hash} if image_hash else {}
    return {"id": f"n{i}", "type": "media/image", "pos": [i * 10, 0], "size": [150, 100], "properties": props}


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (320, 240), seed: int = 0,
                noise: bool = False) -> bytes:
    """A real, decodable image; ``noise`` makes it incompressible (as big as its pixels)."""
    rng = random.Random(seed)
    if noise:
        out = io.BytesIO()
        Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3)).save(out, fmt)
        return out.getvalue()
    image = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    for _ in range(20):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        image.paste((rng.randrange(256), 0, 0), (x, y, min(size[0], x + 30), min(size[1], y + 30)))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def upload(client: httpx.Client, data: bytes, content_type: str = "image/png",
           with_hash: bool = True, name: str = "a.png") -> httpx.Response:
    fields = {"hash": sha256_hex(data)} if with_hash else {}
    return client.post("/api/upload", files={"file": (name, data, content_type)}, data=fields)


def write_profile(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path




def canvas_of(server: ServerProcess, canvas_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/canvases/{canvas_id}", timeout=10)
    response.raise_for_status()
    return response.json()


def ends_within(pid: int, seconds: float) -> bool:
    """True once process ``pid`` has ended, waiting at most ``seconds`` for it (a pidfd: no polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], seconds)[0])  # readable when the process has ended
    finally:
        os.close(fd)


def processes_naming(text: str) -> list[int]:
    """Processes whose command line holds ``text`` (a run's output directory names all its children)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue  # it ended while we looked
    return found
