"""Crash safety: ``kill -9`` the server at random moments during ``batched`` (or ``--strategy pipelined``)
drops, restart it, check.

    python -m benchmarks.hardening.crash_bench --images 500 --kills 20 --seed 1 --out bench-results/crash

The drop runs in this process (gevent, the same DropSocket/Browser/driver as Locust's users); a
killer greenlet SIGKILLs the server after a random pause (or, for a share ``--aim`` of the kills,
a random 0-15 ms after a batch is sent, so that kills land inside batches being applied and
persisted; ``--batch-items`` makes batches small and many), restarts it on the same data directory
and port, and checks the server's truth at once, while the drop carries on (the client reconnects,
rejoins and resends with the same operation ids). Drops repeat, each on a fresh canvas, until
``--kills`` kills are done. Checked after every restart and at the end:

- every operation ever acknowledged is present (acked nodes exist; acked completions set serverUrl);
- no half-applied batch (each batch sent is on the canvas entirely or not at all);
- no duplicates (one node per image hash);
- at the end: every image of every drop succeeded (node, server URL, stored file).

Exit 0 when all hold, 1 otherwise; the figures go to ``--out``/crash.json.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import orjson  # noqa: E402
import urllib3  # noqa: E402

from bulkbench.profile import load_profile  # noqa: E402
from bulkbench.protocol import Event, OpType  # noqa: E402
from bulkbench.strategies import strategy_params  # noqa: E402
from bulkbench.target import REFERENCE, load_target  # noqa: E402
from bulkbench.workload import draw_images, load_workload  # noqa: E402
from loadtests.drop import run_drop  # noqa: E402
from loadtests.dropsocket import DropSocket  # noqa: E402
from loadtests.imagecache import ImageCache  # noqa: E402
from reference_server.process import ServerProcess  # noqa: E402

REFERENCE_TARGET = load_target(REFERENCE)
AIM_WINDOW_S = 0.015
"""An aimed kill lands this long at most after a batch is sent: while its chunks are being applied."""
TRACKED_OPS = {OpType.BATCH_NODE_CREATE.value: "nodes", OpType.BATCH_UPLOAD_COMPLETE.value: "items"}


@dataclass
class Ledger:
    """What the client sent and what the server acknowledged, frame by frame."""

    sent: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    """op id -> (op type, the node ids or hashes it carries)."""
    acked_nodes: set[str] = field(default_factory=set)
    acked_hashes: set[str] = field(default_factory=set)
    acks: int = 0
    batch_sent: gevent.event.Event = field(default_factory=gevent.event.Event)
    """Set whenever a batch goes out: what an aimed kill waits for."""

    def on_send(self, operation_id: str, op_type: str, params: dict[str, Any]) -> None:
        key = TRACKED_OPS.get(str(op_type))
        if key is not None:
            field_name = "id" if key == "nodes" else "hash"
            self.sent[operation_id] = (str(op_type), [item[field_name] for item in params[key]])
            self.batch_sent.set()

    def on_frame(self, event: str, data: dict[str, Any]) -> None:
        if event != Event.OPERATION_ACK or data.get("operationId") not in self.sent:
            return
        self.acks += 1
        op_type, keys = self.sent[data["operationId"]]
        done = {key for key, result in zip(keys, data["results"], strict=True)
                if result["ok"] or result.get("code") == "duplicate_node"}
        (self.acked_nodes if op_type == OpType.BATCH_NODE_CREATE else self.acked_hashes).update(done)

    def violations(self, canvas: dict[str, Any]) -> dict[str, int]:
        nodes = {node["id"]: node for node in canvas.get("nodes", [])}
        hashes = Counter(node["properties"].get("hash") for node in nodes.values())
        with_url = {node["properties"].get("hash") for node in nodes.values() if node["properties"].get("serverUrl")}
        half = 0
        for op_id, (op_type, keys) in self.sent.items():
            if f"{op_id}a" in self.sent:
                continue  # split in two after timeouts: its halves are the batches
            present = sum((key in nodes) if op_type == OpType.BATCH_NODE_CREATE else (key in with_url)
                          for key in keys)
            half += 0 < present < len(keys)
        return {
            "acked_lost": len(self.acked_nodes - nodes.keys()) + len(self.acked_hashes - with_url),
            "half_applied": half,
            "duplicates": sum(count - 1 for count in hashes.values() if count > 1),
        }


def watched_socket(ledger: Ledger) -> type[DropSocket]:
    class WatchedSocket(DropSocket):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, on_frame=ledger.on_frame, **kwargs)

        def send_op(self, operation_id: str, op_type: str, params: dict[str, Any]) -> None:
            ledger.on_send(operation_id, op_type, params)
            super().send_op(operation_id, op_type, params)

    return WatchedSocket


def read_canvas(base_url: str, canvas_id: str) -> dict[str, Any]:
    http = urllib3.PoolManager(retries=urllib3.Retry(total=10, backoff_factor=0.2))
    response = http.request("GET", f"{base_url}/api/canvases/{canvas_id}", headers={"X-Client-Id": "judge"})
    return orjson.loads(response.data) if response.status == 200 else {"nodes": []}


class Killer:
    """Kills and restarts the server after random pauses; checks the truth after each restart."""

    def __init__(self, server: ServerProcess, restart: Any, rng: random.Random, pause_s: tuple[float, float],
                 aim: float) -> None:
        self.server, self.restart, self.rng, self.pause_s, self.aim = server, restart, rng, pause_s, aim
        self.kills = 0
        self.kills_in_batches = 0
        self.active = False
        self.restart_s: list[float] = []
        self.violations: Counter[str] = Counter()

    def during(self, ledger: Ledger, canvas_id: str, budget: int) -> gevent.Greenlet:
        """Kill while ``self.active``; the caller clears it when the drop ends and joins the loop."""
        self.active = True

        def loop() -> None:
            while self.kills < budget:
                aimed = self.rng.random() < self.aim
                if aimed:  # the next batch: its chunks are applied and persisted within milliseconds
                    ledger.batch_sent.clear()
                    ledger.batch_sent.wait()
                    gevent.sleep(self.rng.uniform(0.0, AIM_WINDOW_S))
                else:
                    gevent.sleep(self.rng.uniform(*self.pause_s))
                if not self.active:
                    return
                self.kills_in_batches += bool(aimed)
                self.server.kill()
                self.kills += 1
                started = time.monotonic()
                self.server = self.restart()
                self.restart_s.append(time.monotonic() - started)
                self.violations.update(ledger.violations(read_canvas(self.server.url, canvas_id)))

        return gevent.spawn(loop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--profile", default="optimized")
    parser.add_argument("--strategy", default="batched", choices=["batched", "pipelined"],
                        help="a strategy of the batch protocol (what resumes after a lost connection)")
    parser.add_argument("--workload", default="scenarios/workload-light.toml")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pause", type=float, nargs=2, default=(0.5, 3.0), metavar=("MIN_S", "MAX_S"),
                        help="random pause before each kill (after the previous restart)")
    parser.add_argument("--aim", type=float, default=0.5, help="share of kills aimed just after a batch is sent")
    parser.add_argument("--batch-items", type=int, default=50, help="the profile's max_batch_items for this run")
    parser.add_argument("--max-drops", type=int, default=10, help="stop after this many drops, kills or not")
    parser.add_argument("--out", default="bench-results/crash")
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="crash-", dir=out))
    profile_path = data_dir.with_suffix(".toml")  # the profile with small batches: many of them to kill into
    profile_path.write_text(f'extends = "{args.profile}"\nname = "crash"\n[limits]\n'
                            f"max_batch_items = {args.batch_items}\n")
    profile = load_profile(str(profile_path))
    workload = load_workload(args.workload)
    params = strategy_params(args.strategy)
    cache = ImageCache()
    server = ServerProcess(profile_path, data_dir, emulation=False).start()
    port = int(server.url.rsplit(":", 1)[1])

    def restart() -> ServerProcess:
        return ServerProcess(profile_path, data_dir, port=port, emulation=False).start()

    killer = Killer(server, restart, random.Random(args.seed), tuple(args.pause), args.aim)
    drops: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        for index in range(args.max_drops):
            if killer.kills >= args.kills:
                break
            images = draw_images(workload, user=f"crash-{args.seed}-{index}", count=args.images)
            cache.prepare(images)
            ledger, canvas_id = Ledger(), f"crash-{args.seed}-{index}"
            loop = killer.during(ledger, canvas_id, args.kills)
            result = run_drop(REFERENCE_TARGET, killer.server.url, args.strategy, params, profile.limits, images,
                              canvas_id, index, cache, client_id=f"crash-{index}", socket_type=watched_socket(ledger))
            killer.active = False
            ledger.batch_sent.set()  # an aimed kill waiting for a batch that will not come
            loop.join()
            canvas = read_canvas(killer.server.url, canvas_id)
            final = ledger.violations(canvas)
            killer.violations.update(final)
            failed = Counter(r.cause for r in result.records if r.outcome != "ok")
            with_url = sum(bool(n["properties"].get("serverUrl")) for n in canvas["nodes"])
            drops.append({"canvas": canvas_id, "images": args.images, "nodes": len(canvas["nodes"]),
                          "nodes_with_url": with_url, "failed": dict(failed), "acks": ledger.acks,
                          "reconnects": result.extra["reconnects"], "answers": result.extra["answers"],
                          "http_requests": result.http_requests, "kills_so_far": killer.kills, **final})
            print(f"drop {index}: {len(canvas['nodes'])} nodes, {with_url} with URL, failed {dict(failed) or 0}, "
                  f"reconnects {result.extra['reconnects']}, answers {result.extra['answers']}, "
                  f"HTTP requests {result.http_requests}, kills so far {killer.kills}, {final}", flush=True)
    finally:
        killer.server.stop()
    report = {
        "profile": args.profile, "profile_file": str(profile_path), "max_batch_items": args.batch_items,
        "images_per_drop": args.images, "seed": args.seed,
        "kills": killer.kills, "kills_in_batches": killer.kills_in_batches, "drops": drops,
        "violations": dict(killer.violations),
        "restart_s_max": max(killer.restart_s, default=0.0),
        "seconds": time.monotonic() - started, "data_dir": str(data_dir),
    }
    (out / "crash.json").write_text(json.dumps(report, indent=2))
    bad = sum(killer.violations.values()) + sum(
        d["nodes"] != d["images"] or d["nodes_with_url"] != d["images"] or bool(d["failed"]) for d in drops)
    print(f"kills survived {killer.kills} ({killer.kills_in_batches} aimed into batches), drops {len(drops)}, "
          f"acknowledged lost "
          f"{killer.violations['acked_lost']}, half-applied {killer.violations['half_applied']}, "
          f"duplicates {killer.violations['duplicates']}, drops not whole {bad - sum(killer.violations.values())}"
          f" -> {out / 'crash.json'}", flush=True)
    return 0 if bad == 0 and killer.kills >= args.kills else 1


if __name__ == "__main__":
    sys.exit(main())
