"""Slow clients at once: WebSocket readers that stop reading and uploads that trickle one byte a second.

    python -m benchmarks.hardening.slow_clients_bench --lazy 20 --trickle 50

Against the shipped ``optimized`` profile and its default limits (``bulkbench/limits.py``): each lazy
reader joins a 1000-node canvas, then asks for the whole canvas over and over without reading; each
trickler starts an upload and sends one byte a second. Meanwhile a well-behaved client does operation
round trips. Reports the server's RSS over time (idle, peak, after), how long until every slow client
was let go, and the well-behaved client's round trips. Exit 1 if a slow client is still held at the
deadline or the well-behaved client stopped being served.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from bulkbench.limits import DEFAULT_LIMITS
from bulkbench.protocol import Event, OpType, encode, execute_operation_frame, parse_server_frame
from reference_server.process import ServerProcess

CANVAS_NODES = 1000


def _node(i: int) -> dict[str, Any]:
    return {"id": f"n{i}", "type": "media/image", "pos": [i, 0], "size": [150, 100], "properties": {}}


def lazy_reader(server: ServerProcess, port: int, stop: threading.Event, requests: int) -> None:
    """Join, then ask for the whole canvas ``requests`` times without reading a frame."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        with connect(server.ws_url, sock=sock, max_queue=1, max_size=None, open_timeout=30) as ws:
            ws.send(encode(Event.JOIN_CANVAS, {"canvasId": "big"}))
            for _ in range(requests):
                if stop.is_set():
                    return
                ws.send(encode(Event.REQUEST_FULL_SYNC, {}))
            stop.wait()
    except Exception:
        return  # dropped by the server: the point


def trickler(port: int, stop: threading.Event, held_s: list[float]) -> None:
    """One upload, one byte a second, until the server answers or closes."""
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(1.0)
    sock.sendall(b"POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
                 b"Content-Type: multipart/form-data; boundary=xyz\r\n\r\n"
                 b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
                 b"Content-Type: image/png\r\n\r\n")
    try:
        while not stop.is_set():
            sock.send(b"x")
            try:
                if sock.recv(4096) is not None:
                    break  # answered (408) or closed
            except TimeoutError:
                continue
    except OSError:
        pass
    finally:
        held_s.append(time.monotonic() - started)
        sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lazy", type=int, default=20, help="WebSocket clients that stop reading")
    parser.add_argument("--trickle", type=int, default=50, help="uploads sent at one byte a second")
    parser.add_argument("--requests", type=int, default=400, help="full-canvas requests per lazy reader")
    parser.add_argument("--deadline", type=float, default=DEFAULT_LIMITS.send_stall_s * 2 + 30,
                        help="seconds by which every slow client must have been let go")
    parser.add_argument("--out", default="bench-results/slow-clients")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    with tempfile.TemporaryDirectory(prefix="slow-") as data_dir, \
            ServerProcess("optimized", Path(data_dir), emulation=False) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with connect(server.ws_url, max_size=None) as good:
            good.send(encode(Event.JOIN_CANVAS, {"canvasId": "big"}))
            good.send(execute_operation_frame("fill", OpType.BATCH_NODE_CREATE,
                                              {"nodes": [_node(i) for i in range(CANVAS_NODES)]}))
            while parse_server_frame(good.recv(timeout=30))[0] != Event.OPERATION_ACK:
                pass
            idle = server.memory_mib()
            held: list[float] = []
            threads = [threading.Thread(target=lazy_reader, args=(server, port, stop, args.requests), daemon=True)
                       for _ in range(args.lazy)]
            threads += [threading.Thread(target=trickler, args=(port, stop, held), daemon=True)
                        for _ in range(args.trickle)]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            series, round_trips, failed_round_trips = [], [], 0
            let_go_s = None
            n = 0
            while time.monotonic() - started < args.deadline:
                n += 1
                sent = time.perf_counter()
                good.send(execute_operation_frame(f"g{n}", OpType.NODE_CREATE, _node(CANVAS_NODES + n)))
                try:
                    while parse_server_frame(good.recv(timeout=10))[0] != Event.OPERATION_ACK:
                        pass
                    round_trips.append(time.perf_counter() - sent)
                except TimeoutError:
                    failed_round_trips += 1
                dropped = server.metric("bulkbench_ws_dropped_total")
                refused = server.metric('bulkbench_http_responses_total{route="/api/upload",status="408"}')
                series.append({"t": round(time.monotonic() - started, 2), "rss_mib": round(server.memory_mib(), 1),
                               "ws_dropped": dropped, "uploads_408": refused})
                if dropped >= args.lazy and refused >= args.trickle:
                    let_go_s = time.monotonic() - started
                    break
                time.sleep(0.5)  # pacing the probe, not synchronisation
            after, high_water = server.memory_mib(), server.memory_mib("VmHWM")
            stop.set()
    ordered = sorted(round_trips)
    report = {
        "profile": "optimized", "lazy_readers": args.lazy, "tricklers": args.trickle,
        "limits": {k: getattr(DEFAULT_LIMITS, k) for k in ("max_pending_bytes", "max_pending_frames", "send_stall_s",
                                                          "upload_idle_s", "upload_grace_s", "min_upload_bytes_per_s")},
        "rss_mib": {"idle": idle, "peak_sampled": max(p["rss_mib"] for p in series), "high_water": high_water,
                    "after": after},
        "all_let_go_s": let_go_s, "trickle_held_s_max": max(held, default=None),
        "round_trips": len(round_trips), "round_trips_failed": failed_round_trips,
        "round_trip_p50_ms": 1000 * ordered[len(ordered) // 2] if ordered else None,
        "round_trip_max_ms": 1000 * ordered[-1] if ordered else None,
        "series": series,
    }
    (out / "slow_clients.json").write_text(json.dumps(report, indent=2))
    print(f"{args.lazy} lazy readers + {args.trickle} tricklers: server RSS idle {idle:.0f} MiB, peak "
          f"{high_water:.0f} MiB (high water), after {after:.0f} MiB; all let go after "
          f"{let_go_s if let_go_s is None else round(let_go_s, 1)} s (trickle held <= "
          f"{report['trickle_held_s_max'] or 0:.1f} s); well-behaved round trips {len(round_trips)} "
          f"(p50 {report['round_trip_p50_ms'] or 0:.1f} ms, max {report['round_trip_max_ms'] or 0:.0f} ms, "
          f"failed {failed_round_trips}) -> {out / 'slow_clients.json'}")
    return 0 if let_go_s is not None and failed_round_trips == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
