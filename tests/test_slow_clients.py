"""Clients that do not read, or trickle their uploads, hold nothing for long and grow nothing without bound."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from bulkbench.protocol import Event, OpType, encode, execute_operation_frame
from tests.conftest import ServerFactory
from tests.helpers import canvas_of, image_bytes, node, sha256_hex, upload, write_profile

LIMITS = """
[limits]
max_pending_bytes = 262144
send_stall_s = 1.0
upload_idle_s = 1.0
upload_grace_s = 1.0
min_upload_bytes_per_s = 1024
"""
DEADLINE_S = 30.0


def _server(start_server: ServerFactory, tmp_path: Path, limits: str = LIMITS):
    profile = write_profile(tmp_path, "slow", f'extends = "optimized"\nname = "slow"\n{limits}')
    return start_server(profile, emulation=False)


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {DEADLINE_S} s: {what}"
        time.sleep(0.05)


@pytest.mark.parametrize(("limits", "reason", "requests"), [
    (LIMITS, "backlog", 2000),  # its backlog reaches max_pending_bytes
    # room for it all, but uncompressed frames fill the socket and a frame waits send_stall_s
    ("ws_compression = false\n" + LIMITS.replace("262144", "268435456"), "stalled", 100),
    # room in bytes, but its backlog passes max_pending_frames first
    ("ws_compression = false\n" + LIMITS.replace("262144", "268435456") + "max_pending_frames = 20\n", "backlog", 200),
])
def test_a_client_that_stops_reading_is_dropped_and_frees_its_backlog(start_server, tmp_path: Path, limits: str,
                                                                      reason: str, requests: int) -> None:
    server = _server(start_server, tmp_path, limits)
    rss_before = server.memory_mib()
    # a small receive buffer and a queue of one message: this client stops taking frames almost at once
    sock = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with connect(server.ws_url, sock=sock, max_queue=1, max_size=None, ping_interval=None) as lazy:
        lazy.send(encode(Event.JOIN_CANVAS, {"canvasId": "big"}))
        lazy.send(execute_operation_frame("b", OpType.BATCH_NODE_CREATE, {"nodes": [node(i) for i in range(1000)]}))
        # the batch applied before the flood: a client dropped while its operation still waits in the queue
        # has no answer for it (it would send it again), so the canvas check below would race the drop
        _wait_for(lambda: len(canvas_of(server, "big")["nodes"]) == 1000, "the batch applied")
        sent = 0
        try:
            while sent < requests:  # each asks for the whole canvas (~150 KB)
                lazy.send(encode(Event.REQUEST_FULL_SYNC, {}))
                sent += 1
        except Exception:
            pass  # the server dropped us mid-way: what this test wants
        _wait_for(lambda: server.metric(f'bulkbench_ws_dropped_total{{reason="{reason}"}}') == 1,
                  f"the lazy reader dropped ({reason})")
        _wait_for(lambda: server.metric("bulkbench_ws_connections") == 0, "its connection released")
    assert sent > 10
    rss_growth_mib = server.memory_mib() - rss_before
    assert rss_growth_mib < 64, f"server RSS grew {rss_growth_mib:.0f} MiB for one lazy reader"
    # the server still serves everybody else, and kept the canvas
    assert len(canvas_of(server, "big")["nodes"]) == 1000


def _raw_upload_headers(server, length: int) -> socket.socket:
    host, port = server.url.split("//")[1].split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall((f"POST /api/upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n"
                  "Content-Type: multipart/form-data; boundary=xyz\r\n\r\n").encode())
    return sock


def _status_of(sock: socket.socket) -> int:
    sock.settimeout(DEADLINE_S)
    head = sock.recv(4096).split(b"\r\n", 1)[0]
    return int(head.split()[1])


def test_a_trickling_upload_is_refused_408_and_holds_no_worker(start_server, tmp_path: Path) -> None:
    server = _server(start_server, tmp_path)
    trickle = _raw_upload_headers(server, 10_000)
    trickle.sendall(b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
                    b"Content-Type: image/png\r\n\r\n")
    trickle.settimeout(0.25)
    status = None
    for _ in range(400):  # one byte at a time, a few a second, at most 100 s
        try:
            trickle.send(b"x")
            status = _status_of_nowait(trickle)
        except OSError:
            status = _status_of(trickle)
        if status is not None:
            break
    assert status == 408
    # meanwhile and afterwards, ordinary uploads go through; nothing half-received is left behind
    data = image_bytes(seed=9)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert upload(client, data).json()["hash"] == sha256_hex(data)
    _wait_for(lambda: not list((server.data_dir / "incoming").glob("*.part")), "the partial file removed")


def _status_of_nowait(sock: socket.socket) -> int | None:
    try:
        head = sock.recv(4096)
    except TimeoutError:
        return None
    return int(head.split(b"\r\n", 1)[0].split()[1]) if head else None


def test_an_upload_that_stops_sending_is_refused_408(start_server, tmp_path: Path) -> None:
    server = _server(start_server, tmp_path)
    stalled = _raw_upload_headers(server, 10_000)
    stalled.sendall(b"--xyz\r\n")
    assert _status_of(stalled) == 408
    assert server.metric('bulkbench_http_responses_total{route="/api/upload",status="408"}') == 1


def test_uploads_over_max_uploads_in_flight_are_refused_503_before_their_body(start_server, tmp_path: Path) -> None:
    profile = write_profile(tmp_path, "one",
                            'extends = "optimized"\nname = "one"\n[limits]\nmax_uploads_in_flight = 1\n')
    server = start_server(profile, emulation=False)
    holding = _raw_upload_headers(server, 10_000)
    holding.sendall(b"--xyz\r\n")  # in flight: its body is being received
    _wait_for(lambda: server.metric("bulkbench_http_in_flight") >= 1, "the first upload in flight")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        refused = upload(client, image_bytes(seed=1))
        assert refused.status_code == 503 and "retry-after" in refused.headers
        assert "max_uploads_in_flight" in refused.json()["error"]["message"]
        holding.close()  # the first one ends (its body never completes); the next one is taken
        _wait_for(lambda: upload(client, image_bytes(seed=2)).status_code == 200, "an upload taken again")


def test_connections_over_max_connections_are_refused_503(start_server, tmp_path: Path) -> None:
    profile = write_profile(tmp_path, "few", 'extends = "optimized"\nname = "few"\n[limits]\nmax_connections = 2\n')
    server = start_server(profile, emulation=False)
    with connect(server.ws_url) as first, connect(server.ws_url) as second:
        assert first.protocol.state.name == second.protocol.state.name == "OPEN"
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 503
    _wait_for(lambda: httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200, "served again")
