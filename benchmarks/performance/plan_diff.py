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

from sim.plan import compare_plans


def load(directory: str) -> dict[str, Any]:
    return orjson.loads((Path(directory) / "plan.json").read_bytes())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before")
    parser.add_argument("after")
    args = parser.parse_args(argv)
    result = compare_plans(load(args.before), load(args.after))
    print(f"{result['cells']} cells; within-or-not changed: {len(result['within_or_not_changed'])} "
          f"{result['within_or_not_changed'][:10]}")
    print(f"plans (frontier, knobs, USL) changed: {result['plans_changed'] or 'none'}")
    print(f"censored: {result['censored_before']} before, {result['censored_after']} after; of the "
          f"{result['run_to_the_end_after']} cells run to their end, {result['of_them_identical']} identical")
    return 1 if result["within_or_not_changed"] or result["plans_changed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
