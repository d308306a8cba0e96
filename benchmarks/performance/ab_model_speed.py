"""The model's speed before and after a change, side by side in one run.

``python -m benchmarks.performance.ab_model_speed --before REV [--rounds 9]`` checks REV out into a
temporary git worktree and starts one interpreter in it and one in this tree. They take turns on each
fingerprint scenario (``sim/fingerprints.py``): before, after, after, before, ... so that both sides
see the same machine within a second of each other. A side's time is the sum over the scenarios of
each one's best of ``rounds`` runs. These machines slow down in bursts (one scenario measured 0.25 s
and 0.44 s in the same process): a whole pass carries every burst that fell in it, a scenario's best
of nine taken in turns does not. ``--before HEAD`` with a clean tree measures the method's own noise.
Only scenarios whose summaries are equal on both sides are timed: one that changed did other work, and
the tool names it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_SCENARIOS_ON_REQUEST = r"""
import hashlib, json, sys, time
from sim.fingerprints import SCENARIOS
from sim.run import SimOptions, run_sim
print(json.dumps(sorted(SCENARIOS)), flush=True)
for line in sys.stdin:
    started = time.perf_counter()
    summary = run_sim(SimOptions(**SCENARIOS[line.strip()]))
    seconds = time.perf_counter() - started
    outcome = summary.to_json()
    outcome.pop("version", None)
    digest = hashlib.sha256(json.dumps(outcome, sort_keys=True, default=str).encode()).hexdigest()
    print(json.dumps([seconds, digest]), flush=True)
"""


class Side:
    """An interpreter in one tree that runs a named scenario when asked and answers its seconds."""

    def __init__(self, tree: Path) -> None:
        # the tree first on the path: the editable install would otherwise put this tree's packages first
        self.process = subprocess.Popen([sys.executable, "-c", RUN_SCENARIOS_ON_REQUEST], cwd=tree,
                                        env={**os.environ, "PYTHONPATH": str(tree)}, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.scenarios: list[str] = json.loads(self._answer())

    def _answer(self) -> str:
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"the interpreter in {self.process.args} ended (exit {self.process.wait()})")
        return line

    def time(self, scenario: str) -> tuple[float, str]:
        """Seconds for one run of ``scenario``, and a digest of its summary."""
        self.process.stdin.write(scenario + "\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]
        seconds, digest = json.loads(self._answer())
        return float(seconds), digest

    def close(self) -> None:
        self.process.stdin.close()  # type: ignore[union-attr]
        self.process.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", required=True, help="the git revision to compare this tree with")
    parser.add_argument("--rounds", type=int, default=9, help="runs of every scenario on each side")
    args = parser.parse_args()
    best: dict[str, dict[str, float]] = {"before": {}, "after": {}}
    outcome: dict[str, dict[str, str]] = {"before": {}, "after": {}}
    with tempfile.TemporaryDirectory() as tmp:
        before_tree = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(before_tree), args.before], cwd=ROOT,
                       check=True)
        sides = {"before": Side(before_tree), "after": Side(ROOT)}
        try:
            common = sorted(set(sides["before"].scenarios) & set(sides["after"].scenarios))
            for round_ in range(args.rounds):
                order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
                for name in common:
                    for side in order:
                        seconds, outcome[side][name] = sides[side].time(name)
                        best[side][name] = min(best[side].get(name, float("inf")), seconds)
        finally:
            for side in sides.values():
                side.close()
            subprocess.run(["git", "worktree", "remove", "--force", str(before_tree)], cwd=ROOT, check=True)
    # a scenario whose summary changed did different work: its time says nothing of the same work's speed
    changed = [name for name in common if outcome["before"][name] != outcome["after"][name]]
    common = [name for name in common if name not in changed]
    total = {side: sum(best[side][name] for name in common) for side in best}
    ratio = {name: best["after"][name] / best["before"][name] for name in common}
    print(json.dumps({"before": args.before, "scenarios": len(common), "runs_per_scenario": args.rounds,
                      "left_out_outcome_changed": changed,
                      "seconds": {side: round(value, 3) for side, value in total.items()},
                      "most_slowed": {name: round(ratio[name], 3) for name in sorted(common, key=ratio.get)[-5:]},
                      "most_sped_up": {name: round(ratio[name], 3) for name in sorted(common, key=ratio.get)[:5]},
                      "after/before": round(total["after"] / total["before"], 3)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
