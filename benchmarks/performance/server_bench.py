"""``make bench``: the reference server measured side by side with bare baselines, in one run.

Each figure is a ratio against a baseline started in the same run on the same machine, so a busy
or slow machine moves both sides: (1) sequential ``node_create`` round trips against a bare
``websockets`` echo server, (2) a 1000-node ``batch_node_create`` acked (hence durable), (3) 200
uploads of 1 MiB, 6 at a time, against a minimal streaming Starlette endpoint. Rounds alternate
the two sides and the median is reported. Results go to ``bench-results/server_bench.json``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from PIL import Image
from websockets.sync.client import connect

from bulkbench.protocol import Event, OpType, execute_operation_frame, parse_server_frame
from reference_server.process import ServerProcess

BASELINE = [sys.executable, "-m", "benchmarks.performance.baselines"]


def _node(i: int, prefix: str) -> dict:
    return {"id": f"{prefix}{i}", "type": "media/image", "pos": [i, i], "size": [150, 100],
            "properties": {"hash": f"{i:064x}", "filename": f"image-{i}.jpg"}}


def echo_round_trips(ws_url: str, count: int) -> float:
    frame = execute_operation_frame("op", OpType.NODE_CREATE, _node(0, "e"))
    with connect(ws_url, max_size=None) as ws:
        started = time.perf_counter()
        for _ in range(count):
            ws.send(frame)
            ws.recv()
        return count / (time.perf_counter() - started)


def node_create_round_trips(ws_url: str, count: int, tag: str) -> float:
    """Sequential node_create: send, wait for its ack (reading the state_update on the way)."""
    with connect(ws_url, max_size=None) as ws:
        ws.send(json.dumps({"event": "join_canvas", "data": {"canvasId": f"rt-{tag}"}}))
        ws.recv()
        started = time.perf_counter()
        for i in range(count):
            op_id = f"{tag}-{i}"
            ws.send(execute_operation_frame(op_id, OpType.NODE_CREATE, _node(i, tag)))
            while True:
                event, data = parse_server_frame(ws.recv())
                if event == Event.OPERATION_ACK and data["operationId"] == op_id:
                    break
        return count / (time.perf_counter() - started)


def batch_seconds(ws_url: str, nodes: int, rounds: int, compression: bool) -> list[float]:
    """Seconds from sending a ``nodes``-node batch to holding its ack, per round."""
    times = []
    options = {} if compression else {"compression": None}
    with connect(ws_url, max_size=None, **options) as ws:
        for r in range(rounds):
            ws.send(json.dumps({"event": "join_canvas", "data": {"canvasId": f"batch-{compression}-{r}"}}))
            while parse_server_frame(ws.recv())[0] != Event.CANVAS_JOINED:
                pass
            frame = execute_operation_frame(f"b{r}", OpType.BATCH_NODE_CREATE,
                                            {"nodes": [_node(i, f"r{r}-") for i in range(nodes)]})
            started = time.perf_counter()
            ws.send(frame)
            while True:
                event, data = parse_server_frame(ws.recv())
                if event == Event.OPERATION_ACK:
                    assert all(item["ok"] for item in data["results"]), "a batch item failed"
                    break
            times.append(time.perf_counter() - started)
    return times


def make_images(count: int, size_bytes: int, seed: int) -> list[bytes]:
    """Incompressible PNGs of about ``size_bytes`` each (random pixels), distinct by seed."""
    rng = random.Random(seed)
    side = int((size_bytes / 3) ** 0.5)
    images = []
    for _ in range(count):
        out = io.BytesIO()
        Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3)).save(out, "PNG", compress_level=0)
        images.append(out.getvalue())
    return images


def upload_mib_per_s(url: str, images: list[bytes], parallel: int) -> float:
    import hashlib

    def send(client: httpx.Client, data: bytes) -> None:
        response = client.post("/api/upload", files={"file": ("i.png", data, "image/png")},
                               data={"hash": hashlib.sha256(data).hexdigest()})
        response.raise_for_status()

    limits = httpx.Limits(max_connections=parallel, max_keepalive_connections=parallel)
    with httpx.Client(base_url=url, timeout=120, limits=limits) as client, \
            concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        started = time.perf_counter()
        list(pool.map(lambda d: send(client, d), images))
        elapsed = time.perf_counter() - started
    return sum(map(len, images)) / (1 << 20) / elapsed


def alternate(
    rounds: int, ours: Callable[[int], float], base: Callable[[int], float]
) -> tuple[list[float], list[float]]:
    """Run the two sides in turns (baseline first), so drift in the machine hits both alike."""
    a, b = [], []
    for r in range(rounds):
        b.append(base(r))
        a.append(ours(r))
    return a, b


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--round-trips", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--out", default="bench-results/server_bench.json")
    args = parser.parse_args(argv)
    results: dict = {"machine": {"python": sys.version.split()[0]}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        no_thumbs = tmp_path / "optimized-nothumbs.toml"
        no_thumbs.write_text('extends = "optimized"\nname = "optimized-nothumbs"\nthumbnails = "off"\n'
                             'dedup_by_hash = false\n')

        with ServerProcess("optimized", tmp_path / "ours", emulation=False) as ours, \
                ServerProcess("", tmp_path / "echo", command=[*BASELINE, "echo"]) as echo:
            print("1/3 sequential node_create round trips vs bare websockets echo ...", flush=True)
            echo_round_trips(echo.ws_url, 200)
            node_create_round_trips(ours.ws_url, 200, "warm")
            mine, base = alternate(
                args.rounds,
                lambda r: node_create_round_trips(ours.ws_url, args.round_trips, f"r{r}"),
                lambda r: echo_round_trips(echo.ws_url, args.round_trips),
            )
            results["round_trips"] = {
                "ours_per_s": statistics.median(mine), "echo_per_s": statistics.median(base),
                "ratio": statistics.median(m / b for m, b in zip(mine, base, strict=True)), "target": 0.5,
                "samples_ours": mine, "samples_echo": base,
            }
            print(f"   ours {statistics.median(mine):,.0f}/s, echo {statistics.median(base):,.0f}/s, "
                  f"ratio {results['round_trips']['ratio']:.2f} (target >= 0.5)", flush=True)

            print("2/3 batch_node_create of 1000 nodes, acked and durable ...", flush=True)
            for compression in (True, False):
                batch_seconds(ours.ws_url, 1000, 2, compression)
                times = batch_seconds(ours.ws_url, 1000, 20, compression)
                key = "batch_deflate" if compression else "batch_no_deflate"
                results[key] = {"nodes_per_s": 1000 / statistics.median(times), "target": 100_000,
                                "median_ms": statistics.median(times) * 1000,
                                "p95_ms": sorted(times)[int(0.95 * len(times)) - 1] * 1000}
                print(f"   permessage-deflate {'on ' if compression else 'off'}: "
                      f"{results[key]['nodes_per_s']:,.0f} nodes/s "
                      f"(median {results[key]['median_ms']:.1f} ms per 1000-node batch)", flush=True)

        print(f"3/3 {args.uploads} uploads of 1 MiB, 6 at a time, thumbnails off ...", flush=True)
        images = make_images(args.uploads, 1 << 20, seed=7)
        with ServerProcess(no_thumbs, tmp_path / "ours-up", emulation=False) as ours, \
                ServerProcess("", tmp_path / "base-up",
                              command=[*BASELINE, "upload", "--data-dir", str(tmp_path / "base-files")]) as base:
            upload_mib_per_s(ours.url, images[:12], 6)
            upload_mib_per_s(base.url, images[:12], 6)
            mine, theirs = alternate(
                args.rounds,
                lambda r: upload_mib_per_s(ours.url, images, 6),
                lambda r: upload_mib_per_s(base.url, images, 6),
            )
        results["uploads"] = {
            "ours_mib_per_s": statistics.median(mine), "baseline_mib_per_s": statistics.median(theirs),
            # each round's pair ran back to back: the median of their ratios resists machine drift
            "ratio": statistics.median(m / t for m, t in zip(mine, theirs, strict=True)), "target": 0.7,
            "samples_ours": mine, "samples_baseline": theirs,
        }
        print(f"   ours {statistics.median(mine):.0f} MiB/s, minimal Starlette {statistics.median(theirs):.0f} MiB/s, "
              f"ratio {results['uploads']['ratio']:.2f} (target >= 0.7)", flush=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
