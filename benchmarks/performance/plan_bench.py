"""The plan's coarse form against the fine one, side by side in one run: seconds and the same plan?

``python -m benchmarks.performance.plan_bench [--replications 5]`` runs ``bulkbench plan``'s default sweep
twice on every core, first with every GET on its own and every replication run (``coarse=False``; the
horizon and give-up stops of both), then as ``plan`` runs it (a node's GETs as bursts, no replication
after a censored one). It prints each one's seconds, their ratio, and ``sim.plan.compare_plans``: cells
whose within-or-not changed, plans that changed, cells run to their end with the same figures. Exit 1
when a cell changed sides. Results go to ``bench-results/plan_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from bulkbench.cli import build_parser
from sim.plan import REPLICATIONS, compare_plans, plan_from_args


def run(coarse: bool, replications: int) -> tuple[float, dict[str, Any]]:
    """``bulkbench plan --replications R``: the command line's own defaults, in one form or the other."""
    args = build_parser().parse_args(["plan", "--replications", str(replications)])
    started = time.perf_counter()
    result = plan_from_args(args, coarse=coarse)
    return time.perf_counter() - started, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replications", type=int, default=REPLICATIONS)
    args = parser.parse_args(argv)
    fine_s, fine = run(False, args.replications)
    coarse_s, coarse = run(True, args.replications)
    diff = compare_plans(fine, coarse)
    results = {"replications": args.replications, "cores": os.cpu_count(), "fine_seconds": fine_s,
               "coarse_seconds": coarse_s, "fine_over_coarse": fine_s / coarse_s, **diff}
    print(f"default sweep x {args.replications} replications on {os.cpu_count()} cores: "
          f"fine {fine_s:.1f} s, coarse {coarse_s:.1f} s ({fine_s / coarse_s:.2f}x; #15 asks <= 60 s)")
    print(f"{diff['cells']} cells; within-or-not changed: {len(diff['within_or_not_changed'])}; plans changed: "
          f"{diff['plans_changed'] or 'none'}; of the {diff['run_to_the_end_after']} cells run to their end, "
          f"{diff['of_them_identical']} identical")
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "plan_bench.json").write_text(json.dumps(results, indent=1, default=str))
    return 1 if diff["within_or_not_changed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
