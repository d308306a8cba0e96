"""The model's speed before and after a change, side by side in one run.

``python -m benchmarks.performance.ab_model_speed --before REV [--rounds 3]`` checks REV out into a temporary git
worktree and times the 40 fingerprint scenarios (``sim/fingerprints.py``) in it and in this tree,
alternating, each in a fresh interpreter; it prints every time, the best of each, and after/before.
Alternating puts both under the same load on a shared machine; the best of several is the least
disturbed. The fingerprints themselves say whether the numbers moved.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIME_THE_SCENARIOS = r"""
import json, time
from sim.fingerprints import SCENARIOS
from sim.run import SimOptions, run_sim
started = time.perf_counter()
for name in sorted(SCENARIOS):
    run_sim(SimOptions(**SCENARIOS[name]))
print(json.dumps(time.perf_counter() - started))
"""


def time_tree(tree: Path) -> float:
    """Seconds for the scenarios in ``tree`` (run from it: its own packages come first on the path)."""
    done = subprocess.run([sys.executable, "-c", TIME_THE_SCENARIOS], cwd=tree, capture_output=True, text=True,
                          check=True, timeout=600)
    return float(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", required=True, help="the git revision to compare this tree with")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(before), args.before], cwd=ROOT, check=True)
        try:
            times: dict[str, list[float]] = {"before": [], "after": []}
            for _ in range(args.rounds):
                times["before"].append(time_tree(before))
                times["after"].append(time_tree(ROOT))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=True)
    best = {side: min(values) for side, values in times.items()}
    print(json.dumps({"before": args.before, "seconds": times, "best": best,
                      "after/before": round(best["after"] / best["before"], 3)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
