"""Two capacity plans of the same sweep side by side: does a faster way of running it give the same plan?

``python -m benchmarks.performance.plan_diff BEFORE AFTER`` (each a ``bulkbench plan --out`` directory):
the cells whose within-or-not differs, the plans (frontier, best knob, USL) that differ, and how many
cells run to their end are the same figure for figure. Exit 1 when any cell or plan differs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson

from sim.plan import PlanTargets, meets

CELL = ("strategy", "profile", "images", "users", "knob")


def load(directory: str) -> dict[str, Any]:
    return orjson.loads((Path(directory) / "plan.json").read_bytes())


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    targets = PlanTargets(**before["targets"])
    rows_before = {tuple(r[k] for k in CELL): r for r in before["rows"]}
    rows_after = {tuple(r[k] for k in CELL): r for r in after["rows"]}
    if rows_before.keys() != rows_after.keys():
        raise SystemExit("the two plans did not sweep the same cells")
    flipped = [cell for cell, row in rows_before.items() if meets(row, targets) != meets(rows_after[cell], targets)]
    ran_out = [cell for cell, row in rows_after.items() if not row["censored"]]
    same = [cell for cell in ran_out if not rows_before[cell]["censored"]
            and all(rows_before[cell][k] == rows_after[cell][k] for k in ("failure_rate", "drop_seconds", "images_ok"))]
    plans = [(b["strategy"], b["profile"]) for b, a in zip(before["plans"], after["plans"], strict=True) if b != a]
    return {"cells": len(rows_before), "within_or_not_changed": flipped, "plans_changed": plans,
            "censored_before": sum(1 for r in rows_before.values() if r["censored"]),
            "censored_after": sum(1 for r in rows_after.values() if r["censored"]),
            "run_to_the_end_after": len(ran_out), "of_them_identical": len(same)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before")
    parser.add_argument("after")
    args = parser.parse_args(argv)
    result = compare(load(args.before), load(args.after))
    print(f"{result['cells']} cells; within-or-not changed: {len(result['within_or_not_changed'])} "
          f"{result['within_or_not_changed'][:10]}")
    print(f"plans (frontier, knobs, USL) changed: {result['plans_changed'] or 'none'}")
    print(f"censored: {result['censored_before']} before, {result['censored_after']} after; of the "
          f"{result['run_to_the_end_after']} cells run to their end, {result['of_them_identical']} identical")
    return 1 if result["within_or_not_changed"] or result["plans_changed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
