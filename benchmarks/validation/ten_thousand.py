"""10,000 images in one drop (issue 14): ``pipelined`` on the ``optimized`` profile, one user, on unshaped
loopback and on a 100 Mbit/s uplink, each a real run judged by the server's state, with the model's
prediction beside it.

    python -m benchmarks.validation.ten_thousand --out bench-results/ten-thousand
    python -m benchmarks.validation.ten_thousand --images 2000 --uplink-mbit 100   # a shorter look

Per run it prints and writes (``ten_thousand.json``): images kept, drop time, the bound and the ratio,
the server's resident memory over the drop (from ``server_metrics.csv``, at each tenth) and its high
water (``VmHWM``), the SQLite file, the stored files and thumbnails on disk, and the model's drop time
for the same scenario with its own wall time. Not a CI test: a
run takes minutes and gigabytes (about 4.9 GB of images, cached in ``.cache/images``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

from bulkbench.results import RunSummary
from loadtests.run import RunOptions, run
from sim.run import SimOptions, run_sim

STRATEGY, PROFILE = "pipelined", "optimized"


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def rss_by_tenth(series_csv: Path) -> list[float]:
    """The server's resident memory (MB) at 0 %, 10 %, ... 100 % of the sampled drop."""
    with open(series_csv, newline="") as handle:
        rows = [float(r["server_rss_mb"]) for r in csv.DictReader(handle) if r.get("server_rss_mb")]
    if not rows:
        raise RuntimeError(f"{series_csv}: no server_rss_mb samples: the server's memory was not measured")
    return [rows[min(len(rows) - 1, round(k * (len(rows) - 1) / 10))] for k in range(11)]


def measure(images: int, uplink_mbit: float, out: Path) -> dict[str, Any]:
    summary: RunSummary = run(RunOptions(strategy=STRATEGY, profile=PROFILE, images=images, uplink_mbit=uplink_mbit,
                                         out=out, quiet=True, max_seconds=7200))
    data = out / "server-data"
    started = time.perf_counter()
    model = run_sim(SimOptions(strategy=STRATEGY, profile=PROFILE, images=images, uplink_mbit=uplink_mbit))
    model_wall_s = time.perf_counter() - started
    return {
        "images": images, "uplink_mbit": uplink_mbit, "kept": summary.images_ok, "lost": summary.images_failed,
        "causes": summary.failures_by_cause, "drop_s": summary.drop_seconds, "bound_s": summary.bound_seconds,
        "drop_over_bound": summary.drop_over_bound, "settled_p50_s": summary.settled_p50_s,
        "ws_messages_sent": summary.ws_messages_sent, "ops_by_type": summary.extra.get("ops_by_type"),
        "rss_high_water_mib": summary.extra.get("server_rss_peak_mib"),
        "rss_mb_by_tenth": rss_by_tenth(out / "server_metrics.csv"),
        "sqlite_mb": round(sum(p.stat().st_size for p in data.glob("bulkbench.sqlite3*")) / 1e6, 2),
        "uploads_mb": round(folder_bytes(data / "uploads") / 1e6, 1),
        "thumbnails_mb": round(folder_bytes(data / "thumbnails") / 1e6, 1),
        "server_cpu_s": summary.extra.get("server_cpu_s"),
        "model_drop_s": model.drop_seconds, "model_lost": model.images_failed, "model_wall_s": round(model_wall_s, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench-results/ten-thousand")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--uplink-mbit", type=float, action="append",
                        help="0 for unshaped loopback (repeatable; default: 0 and 100)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for mbit in args.uplink_mbit or [0.0, 100.0]:
        print(f"[ten-thousand] {args.images} images, {STRATEGY} on {PROFILE}, "
              f"{'loopback' if not mbit else f'{mbit:g} Mbit/s'}", flush=True)
        result = measure(args.images, mbit, out / f"run-{mbit:g}mbit")
        results.append(result)
        print(json.dumps(result, indent=1), flush=True)
        (out / "ten_thousand.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0 if all(r["lost"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
