"""Overload: offer the server ten times what it sustains; it must refuse with Retry-After, not time out.

    python -m benchmarks.hardening.overload_bench --factor 10 --seconds 20

Against the ``overload`` profile (the optimized server with emulated stage times, so that a client
on the same cores can outrun it), in three phases:

1. **sustainable**: closed loops (as many uploads in flight as upload workers; operations pipelined
   a few deep) measure what the server completes per second;
2. **overload**: open loops offer ``--factor`` times that, for ``--seconds``: every upload and every
   operation must get an answer before ``--timeout`` (200 / 503 + Retry-After / 429 + Retry-After;
   ack / ``overloaded`` with retryAfterMs), while the server's RSS is sampled;
3. **recovery**: once the offered load stops and its queues drain, the closed loops run again and must
   reach most of the sustainable rate, with no refusals.

Prints the figures and writes them to ``--out``/overload.json; exit 1 if a request timed out, a refusal
came without Retry-After, or the server did not recover.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from websockets.asyncio.client import connect

from bulkbench.protocol import Event, OpType, encode, execute_operation_frame, parse_server_frame
from bulkbench.workload import WorkloadSpec, draw_images, image_bytes
from reference_server.process import ServerProcess

PROFILE = "overload"
SMALL_IMAGES = WorkloadSpec(median_bytes=16_000, sigma=0.0, min_bytes=1_000, dimensions=((256, 256),))
RECOVERED_FRACTION = 0.8
"""After the overload, the closed loops must reach this share of the sustainable rate."""


@dataclass
class Tally:
    """Outcomes of one phase: answers by kind, refusals lacking Retry-After, answer times."""

    outcomes: Counter[str] = field(default_factory=Counter)
    missing_retry_after: int = 0
    latencies_s: list[float] = field(default_factory=list)

    def add(self, outcome: str, latency_s: float, retry_after: bool = True) -> None:
        self.outcomes[outcome] += 1
        self.latencies_s.append(latency_s)
        if outcome in ("http_429", "http_503", "overloaded", "rate_limited") and not retry_after:
            self.missing_retry_after += 1

    def to_json(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_s)
        return {"outcomes": dict(self.outcomes), "missing_retry_after": self.missing_retry_after,
                "answered": len(ordered), "p99_s": ordered[int(0.99 * (len(ordered) - 1))] if ordered else None,
                "max_s": ordered[-1] if ordered else None}


class Load:
    """Uploads over HTTP and operations over WebSockets against one server.

    Uploads are pre-encoded HTTP/1.1 requests on raw asyncio streams (one connection each, closed by
    the server): a full HTTP client costs a millisecond of this process's CPU per request, and a client
    that cannot keep up spreads the offered load out and measures itself instead of the server.
    """

    def __init__(self, server: ServerProcess, images: list[bytes], timeout_s: float) -> None:
        self.server, self.timeout_s = server, timeout_s
        host_port = server.url.split("//", 1)[1]
        self.host, self.port = host_port.rsplit(":", 1)[0], int(host_port.rsplit(":", 1)[1])
        self.requests = [self._request(host_port, data) for data in images]
        self.next_image = itertools.cycle(range(len(images)))
        self.op_ids = itertools.count()

    @staticmethod
    def _request(host_port: str, data: bytes) -> bytes:
        body, content_type = urllib3.encode_multipart_formdata(
            {"hash": hashlib.sha256(data).hexdigest(), "file": ("a.png", data, "image/png")})
        head = (f"POST /api/upload HTTP/1.1\r\nHost: {host_port}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        return head.encode() + body

    async def upload(self, tally: Tally) -> None:
        request = self.requests[next(self.next_image)]
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                reader, writer = await asyncio.open_connection(self.host, self.port)
                try:
                    writer.write(request)
                    answer = await reader.read()  # to EOF: the server closes after its answer
                finally:
                    writer.close()
        except TimeoutError:
            tally.add("timeout", time.perf_counter() - started)
            return
        except OSError as exc:
            tally.add(f"error {type(exc).__name__}", time.perf_counter() - started)
            return
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"http/1.1 ") else 0
        outcome = "ok" if status == 200 else f"http_{status}"
        tally.add(outcome, time.perf_counter() - started, b"\r\nretry-after:" in head)

    async def op_socket(self, canvas: str) -> OpSocket:
        socket = OpSocket(await connect(self.server.ws_url, max_size=None, open_timeout=self.timeout_s))
        await socket.join(canvas)
        return socket

    async def operation(self, socket: OpSocket, tally: Tally) -> None:
        op_id = f"o{next(self.op_ids)}"
        started = time.perf_counter()
        try:
            event, data = await asyncio.wait_for(socket.execute(op_id), self.timeout_s)
        except TimeoutError:
            tally.add("timeout", time.perf_counter() - started)
            return
        outcome = "ack" if event == Event.OPERATION_ACK else data.get("code", "rejected")
        tally.add(outcome, time.perf_counter() - started, "retryAfterMs" in data)

class OpSocket:
    """One WebSocket; answers matched to operations by id."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.waiting: dict[str, asyncio.Future[tuple[str, dict[str, Any]]]] = {}
        self.joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for text in self.conn:
            event, data = parse_server_frame(text)
            if event == Event.CANVAS_JOINED and not self.joined.done():
                self.joined.set_result(None)
            elif (future := self.waiting.pop(data.get("operationId", ""), None)) and not future.done():
                future.set_result((event, data))  # done: its waiter timed out and gave up

    async def join(self, canvas: str) -> None:
        await self.conn.send(encode(Event.JOIN_CANVAS, {"canvasId": canvas}))
        await self.joined

    async def execute(self, op_id: str) -> tuple[str, dict[str, Any]]:
        future = self.waiting[op_id] = asyncio.get_running_loop().create_future()
        node = {"id": op_id, "type": "media/image", "pos": [0, 0], "size": [10, 10], "properties": {}}
        await self.conn.send(execute_operation_frame(op_id, OpType.NODE_CREATE, node))
        return await future

    async def close(self) -> None:
        await self.conn.close()
        self.reader.cancel()


async def closed_loop(load: Load, sockets: list[OpSocket], uploaders: int, depth: int,
                      seconds: float) -> tuple[Tally, Tally, float]:
    """Keep ``uploaders`` uploads and ``depth`` operations per socket in flight; rates are per second."""
    uploads, ops = Tally(), Tally()
    deadline = time.perf_counter() + seconds

    async def upload_loop() -> None:
        while time.perf_counter() < deadline:
            await load.upload(uploads)

    async def op_loop(socket: OpSocket) -> None:
        while time.perf_counter() < deadline:
            await load.operation(socket, ops)

    started = time.perf_counter()
    await asyncio.gather(*(upload_loop() for _ in range(uploaders)),
                         *(op_loop(s) for s in sockets for _ in range(depth)))
    return uploads, ops, time.perf_counter() - started


async def open_loop(load: Load, sockets: list[OpSocket], upload_rate: float, op_rate: float,
                    seconds: float) -> tuple[Tally, Tally]:
    """Start requests at fixed rates whatever the answers (bounded: rate x seconds of each)."""
    uploads, ops = Tally(), Tally()
    tasks: list[asyncio.Task[None]] = []

    async def launch(rate: float, start: Any) -> None:
        began = time.perf_counter()
        for n in range(int(rate * seconds)):
            delay = began + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(start(n)))

    await asyncio.gather(launch(upload_rate, lambda n: load.upload(uploads)),
                         launch(op_rate, lambda n: load.operation(sockets[n % len(sockets)], ops)))
    await asyncio.gather(*tasks)
    return uploads, ops


async def drained(server: ServerProcess, timeout_s: float) -> bool:
    """True once no stage has jobs waiting or running (the overload's backlog is gone)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        busy = sum([await asyncio.to_thread(server.metric, name)
                    for name in ("bulkbench_stage_queue_depth", "bulkbench_stage_busy_workers")])
        if busy == 0:
            return True
        await asyncio.sleep(0.1)
    return False


async def run_overload(factor: float, seconds: float, measure_s: float, timeout_s: float, sockets_n: int,
                       data_dir: Path) -> dict[str, Any]:
    images = [image_bytes(spec) for spec in draw_images(SMALL_IMAGES, user="overload", count=500)]
    with ServerProcess(PROFILE, data_dir) as server:
        load = Load(server, images, timeout_s)
        sockets = [await load.op_socket(f"overload-{i}") for i in range(sockets_n)]
        rss_idle = server.memory_mib()
        try:
            up, ops, elapsed = await closed_loop(load, sockets, uploaders=8, depth=2, seconds=measure_s)
            sustainable = {"uploads_per_s": up.outcomes["ok"] / elapsed, "ops_per_s": ops.outcomes["ack"] / elapsed}

            peak = [server.memory_mib()]

            async def sample_rss() -> None:
                while True:
                    peak.append(server.memory_mib())
                    await asyncio.sleep(0.2)

            sampler = asyncio.create_task(sample_rss())
            started = time.perf_counter()
            over_up, over_ops = await open_loop(load, sockets, factor * sustainable["uploads_per_s"],
                                                factor * sustainable["ops_per_s"], seconds)
            overload_s = time.perf_counter() - started
            sampler.cancel()
            was_drained = await drained(server, timeout_s=60)
            rss_after = server.memory_mib()
            rec_up, rec_ops, rec_elapsed = await closed_loop(load, sockets, uploaders=8, depth=2, seconds=measure_s)
            recovered = {"uploads_per_s": rec_up.outcomes["ok"] / rec_elapsed,
                         "ops_per_s": rec_ops.outcomes["ack"] / rec_elapsed}
            hwm = server.memory_mib("VmHWM")
            closed = [f"{sock.conn.close_code} {sock.conn.close_reason}" for sock in sockets if sock.reader.done()]
        finally:
            for socket in sockets:
                await socket.close()
    return {
        "profile": PROFILE, "factor": factor, "seconds": seconds, "timeout_s": timeout_s,
        "sustainable": sustainable,
        "offered": {k: factor * v for k, v in sustainable.items()},
        "overload": {"uploads": over_up.to_json(), "ops": over_ops.to_json(), "wall_s": overload_s},
        "drained": was_drained, "sockets_closed": closed,
        "recovery": {"uploads": rec_up.to_json(), "ops": rec_ops.to_json(), **recovered},
        "rss_mib": {"idle": rss_idle, "peak_sampled": max(peak), "high_water": hwm, "after": rss_after},
    }


def verdict(report: dict[str, Any]) -> list[str]:
    """What went wrong, in words (empty when the server held)."""
    problems = []
    for kind in ("uploads", "ops"):
        tally = report["overload"][kind]
        if tally["outcomes"].get("timeout") or any(k.startswith("error") for k in tally["outcomes"]):
            problems.append(f"{kind}: requests without an answer under overload: {tally['outcomes']}")
        if tally["missing_retry_after"]:
            problems.append(f"{kind}: {tally['missing_retry_after']} refusals without Retry-After")
        rate_key = f"{kind}_per_s"
        if report["recovery"][rate_key] < RECOVERED_FRACTION * report["sustainable"][rate_key]:
            problems.append(f"{kind}: recovered to {report['recovery'][rate_key]:.1f}/s only, "
                            f"sustainable {report['sustainable'][rate_key]:.1f}/s")
        refused = {k: v for k, v in report["recovery"][kind]["outcomes"].items() if k not in ("ok", "ack")}
        if refused:
            problems.append(f"{kind}: still refused after the overload: {refused}")
    if not report["drained"]:
        problems.append("the server's queues did not drain within 60 s of the load stopping")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--factor", type=float, default=10.0, help="offered load over the sustainable one")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the overload is offered")
    parser.add_argument("--measure", type=float, default=5.0, help="seconds of each closed-loop measurement")
    parser.add_argument("--timeout", type=float, default=10.0, help="a request unanswered this long timed out")
    parser.add_argument("--sockets", type=int, default=8, help="WebSocket connections sending operations")
    parser.add_argument("--out", default="bench-results/overload")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="overload-") as data_dir:
        report = asyncio.run(run_overload(args.factor, args.seconds, args.measure, args.timeout, args.sockets,
                                          Path(data_dir)))
    report["problems"] = verdict(report)
    (out / "overload.json").write_text(json.dumps(report, indent=2))
    s, o, r = report["sustainable"], report["overload"], report["rss_mib"]
    print(f"sustainable: {s['uploads_per_s']:.1f} uploads/s, {s['ops_per_s']:.1f} ops/s; offered x{args.factor:g} "
          f"for {args.seconds:g} s")
    print(f"overload answers: uploads {o['uploads']['outcomes']} (p99 {o['uploads']['p99_s']:.2f} s), "
          f"ops {o['ops']['outcomes']} (p99 {o['ops']['p99_s']:.2f} s)")
    print(f"server RSS MiB: idle {r['idle']:.0f}, peak sampled {r['peak_sampled']:.0f}, high water "
          f"{r['high_water']:.0f}, after {r['after']:.0f}")
    print(f"recovery: {report['recovery']['uploads_per_s']:.1f} uploads/s, {report['recovery']['ops_per_s']:.1f} "
          f"ops/s; problems: {report['problems'] or 'none'} -> {out / 'overload.json'}")
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
