"""``make demo`` (until ``bulkbench compare`` lands): start the legacy server and drop images both ways.

One-operation-per-image (sequential, as today's client does it) against the batch protocol (one
``batch_node_create``, uploads 6 at a time, one ``batch_upload_complete``), on the same server,
judged by the server's own canvas. A preview of the real comparison, not its substitute: the full
client strategies (merge window, timeouts, orphan sweep, shaped network) are ``bulkbench run``'s.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image
from websockets.sync.client import connect

from bulkbench.protocol import Event, OpType, encode, execute_operation_frame, parse_server_frame
from reference_server.process import ServerProcess

IMAGES = 40


def images(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.frombytes("RGB", (256, 256), rng.randbytes(256 * 256 * 3)).save(buffer, "JPEG", quality=85)
        out.append(buffer.getvalue())
    return out


class Socket:
    def __init__(self, url: str) -> None:
        self.ws = connect(url, max_size=None).__enter__()
        self.sent = 0

    def call(self, op_id: str, op_type: OpType, params: dict) -> dict:
        self.ws.send(execute_operation_frame(op_id, op_type, params))
        self.sent += 1
        while True:
            event, data = parse_server_frame(self.ws.recv(timeout=60))
            if event in (Event.OPERATION_ACK, Event.OPERATION_REJECTED) and data.get("operationId") == op_id:
                return data


def node(i: int, digest: str) -> dict:
    return {"id": f"img{i}", "type": "media/image", "pos": [i * 160, 0], "properties": {"hash": digest}}


def drop(server: ServerProcess, canvas: str, files: list[bytes], batched: bool) -> dict:
    digests = [hashlib.sha256(f).hexdigest() for f in files]
    sock = Socket(server.ws_url)
    sock.ws.send(encode(Event.JOIN_CANVAS, {"canvasId": canvas}))
    sock.sent += 1
    started = time.perf_counter()
    with httpx.Client(base_url=server.url, timeout=120,
                      limits=httpx.Limits(max_connections=6)) as http, \
            concurrent.futures.ThreadPoolExecutor(6) as pool:
        def put(i: int) -> dict:
            return http.post("/api/upload", files={"file": (f"{i}.jpg", files[i], "image/jpeg")},
                             data={"hash": digests[i]}).json()

        if batched:
            sock.call("nodes", OpType.BATCH_NODE_CREATE, {"nodes": [node(i, d) for i, d in enumerate(digests)]})
            stored = list(pool.map(put, range(len(files))))
            sock.call("done", OpType.BATCH_UPLOAD_COMPLETE, {"items": [
                {"hash": s["hash"], "serverUrl": s["url"], "serverFilename": s["serverFilename"]} for s in stored]})
        else:
            for i, digest in enumerate(digests):
                sock.call(f"n{i}", OpType.NODE_CREATE, node(i, digest))
            for i, s in enumerate(pool.map(put, range(len(files)))):
                sock.call(f"u{i}", OpType.IMAGE_UPLOAD_COMPLETE,
                          {"hash": s["hash"], "serverUrl": s["url"], "serverFilename": s["serverFilename"]})
        truth = http.get(f"/api/canvases/{canvas}").json()
    seconds = time.perf_counter() - started
    sock.ws.close()
    ok = sum(1 for n in truth["nodes"] if n["properties"].get("serverUrl"))
    return {"ok": ok, "ws_sent": sock.sent, "seconds": seconds}


def main() -> int:
    files = images(IMAGES, seed=1)
    with tempfile.TemporaryDirectory() as tmp, ServerProcess("legacy", Path(tmp) / "data") as server:
        print(f"legacy server at {server.url}; dropping {IMAGES} images each way ...", flush=True)
        rows = {"individual": drop(server, "individual", files, batched=False),
                "batched": drop(server, "batched", files, batched=True)}
    print(f"\n{'strategy':<12} {'images ok':>10} {'ws frames sent':>15} {'seconds':>8}")
    for name, row in rows.items():
        print(f"{name:<12} {row['ok']:>7}/{IMAGES} {row['ws_sent']:>15} {row['seconds']:>8.2f}")
    print("\n(images ok = nodes on the server's canvas carrying their server URL)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
