"""``python -m benchmarks.hardening.fuzz_bench``: the long fuzz run against a real reference server.

The targets and checks of ``tests/test_fuzz.py`` (``tests/fuzzcases.py``, ``tests/fuzzdriver.py``),
run for thousands of cases each instead of about a hundred, with a seed instead of derandomized, and
without stopping at the first failure: every case is counted. Per target it prints the cases tried,
5xx answers, crashes (the server died or stopped answering; it is started again and the run goes on),
canvas-invariant violations and protocol violations, with the first few of each; it exits 1 if any
count is not zero. Results also go to ``bench-results/fuzz_bench.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings

from tests.fuzzcases import TARGETS
from tests.fuzzdriver import KINDS, Fuzzer, Violation

SHOWN_PER_KIND = 3


class OutOfTime(Exception):
    """The target's time budget is spent: hypothesis stops generating, the bench stops counting."""


@dataclass
class Tally:
    target: str
    cases: int = 0
    seconds: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)
    examples: list[Violation] = field(default_factory=list)

    def add(self, violations: list[Violation]) -> None:
        self.cases += 1
        for violation in violations:
            self.counts[violation.kind] += 1
            if sum(v.kind == violation.kind for v in self.examples) < SHOWN_PER_KIND:
                self.examples.append(violation)

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "cases": self.cases, "seconds": round(self.seconds, 1),
                **{kind: self.counts[kind] for kind in KINDS}, "examples": [str(v) for v in self.examples]}


def fuzz_target(fuzzer: Fuzzer, target: str, examples: int, max_seconds: float, seed_value: int) -> Tally:
    tally = Tally(target)
    started = time.monotonic()
    deadline = started + max_seconds

    @seed(seed_value)
    @settings(max_examples=examples, phases=[Phase.generate], database=None, deadline=None,
              verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck))
    @given(TARGETS[target](fuzzer.limits))
    def one(case: Any) -> None:
        if time.monotonic() > deadline:
            raise OutOfTime
        tally.add(fuzzer.run(case))
        if tally.cases % 500 == 0:
            print(f"   {target}: {tally.cases} cases, {time.monotonic() - started:.0f} s", flush=True)

    with contextlib.suppress(OutOfTime):
        one()
    tally.seconds = time.monotonic() - started
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=5000, help="cases per target (default 5000)")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="time budget per target (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", default="optimized", help="the profile the fuzz profile extends")
    parser.add_argument("--targets", nargs="+", choices=sorted(TARGETS), default=list(TARGETS))
    parser.add_argument("--out", default="bench-results/fuzz_bench.json")
    args = parser.parse_args(argv)

    tallies = []
    with tempfile.TemporaryDirectory(prefix="fuzz-bench-") as tmp, Fuzzer(Path(tmp), args.profile) as fuzzer:
        print(f"fuzzing a real server (profile {fuzzer.profile.name}): up to {args.examples} cases or "
              f"{args.max_seconds:.0f} s per target, seed {args.seed}", flush=True)
        for target in args.targets:
            tallies.append(fuzz_target(fuzzer, target, args.examples, args.max_seconds, args.seed))
        restart = Tally("restart")
        restart.add(fuzzer.check_restart())  # every canvas written to loads from disk as it was
        tallies.append(restart)
        healthy = fuzzer.healthy()
        starts = fuzzer.starts

    header = f"{'target':<14}{'cases':>7}{'5xx':>6}{'crashes':>9}{'canvas':>8}{'protocol':>10}{'seconds':>9}"
    print("\n" + header + "\n" + "-" * len(header))
    for t in tallies:
        print(f"{t.target:<14}{t.cases:>7}{t.counts['5xx']:>6}{t.counts['crash']:>9}{t.counts['canvas']:>8}"
              f"{t.counts['protocol']:>10}{t.seconds:>9.1f}")
    print(f"server healthy at the end: {healthy}; servers started: {starts}")
    for t in tallies:
        for violation in t.examples:
            print(f"  {t.target}: {violation}"[:600])

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"seed": args.seed, "profile": args.profile, "examples": args.examples,
                               "max_seconds": args.max_seconds, "healthy_at_end": healthy,
                               "servers_started": starts, "targets": [t.to_json() for t in tallies]}, indent=2))
    failed = not healthy or any(sum(t.counts.values()) for t in tallies)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
