"""``bulkbench gate RUN_DIR --thresholds FILE``: performance thresholds a CI pipeline obeys.

Thresholds are written as k6 users write them, in TOML (``scenarios/thresholds.toml``)::

    [[gate]]
    select = { strategy = "batched", profile = "legacy" }      # which summary records (all if absent)
    thresholds = ["failure_rate < 0.001", "op_ack_ms p(95) < 500", "ws_messages_sent <= 10"]

A threshold is ``METRIC [AGGREGATE] OP NUMBER``, OP one of ``< <= > >= == !=``:

- a summary field (``failure_rate``, ``drop_seconds``, ``drop_over_bound``, ``settled_p50_s``, ...), with no
  aggregate;
- a trend over raw samples, with k6's ``p(N)`` (any N from 0 to 100), ``avg``, ``med``, ``min``,
  ``max``, and ``count`` (ours): ``op_ack_ms`` and ``upload_ms`` (every answer and upload of every drop,
  from ``drops/*.json``) and ``settled_s`` (each settled image's time, from ``images.jsonl``). A run
  without raw samples (a model run of several replications keeps only the first's) falls back to its
  summary's ``p(50)``, ``p(95)``, ``p(99)`` and ``max``;
- a rate over images, with k6's ``rate`` (or ``count``): ``image_failed`` (1 for each image lost).

RUN_DIR is one run's results, or a folder of them (``compare``'s output): every run in it is gated,
each named by its folder. ``--baseline RUN_DIR --max-regression PCT`` also fails any of failure_rate,
drop_seconds, op_ack_ms p(95) and ws_messages_sent that grew more than PCT % over the baseline's.

Exit codes: 0 every threshold held; 99 one failed (k6's code); 2 unusable input (no results,
unknown metric, bad expression). Writes ``gate.xml`` (JUnit) and ``gate.md`` beside the results.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import orjson

from bulkbench.config import ConfigError
from bulkbench.thresholds import EXIT_OK, EXIT_THRESHOLDS_FAILED, EXIT_USAGE, Gate, Threshold, load_gates
from reports.data import read_drops, read_images

REGRESSION_METRICS = ("failure_rate", "drop_seconds", "op_ack_ms p(95)", "ws_messages_sent")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    record: str
    ok: bool
    detail: str


def _label(record: dict[str, Any]) -> str:
    return (f"{record['_name']}: {record['engine']} {record['strategy']} {record['profile']} "
            f"{record['images']}x{record['users']}")


def load_records(run_dir: Path) -> list[dict[str, Any]]:
    """The records of one run's results, or of every run in a folder of them (``compare``'s), each
    named by its folder and carrying its raw samples."""
    if (run_dir / "summary.json").exists():
        runs = [run_dir]
    else:
        runs = sorted(p.parent for p in run_dir.glob("*/summary.json"))
    if not runs:
        raise ConfigError(f"{run_dir}: no summary.json in it or in any folder in it (not a results directory)")
    records = []
    for run in runs:
        samples = raw_samples(run)
        for record in orjson.loads((run / "summary.json").read_bytes()):
            if record.get("extra", {}).get("replications", 1) > 1:
                samples = {}  # a model run keeps the first replication's samples; its summary is all of them
            records.append({**record, "_name": run.name or str(run), "_samples": samples,
                            "_run": "" if run == run_dir else run.name})  # the baseline is matched by it
    return records


def raw_samples(run: Path) -> dict[str, list[float]]:
    """Every sample the run kept: answers and uploads from its drops, settled times and outcomes from its
    images. A run that kept none of a kind has no entry (the summary's figures stand in)."""
    samples: dict[str, list[float]] = {}
    if drops := read_drops(run):
        samples["op_ack_ms"] = [s * 1000 for drop in drops for s in drop.get("op_ack_s", [])]
        samples["upload_ms"] = [s * 1000 for drop in drops for s in drop.get("upload_s", [])]
    if images := read_images(run):
        samples["settled_s"] = [i["timings"]["settled_at"] for i in images
                                if i["outcome"] == "ok" and i["timings"].get("settled_at") is not None]
        samples["image_failed"] = [0.0 if i["outcome"] == "ok" else 1.0 for i in images]
    return samples


def evaluate(records: list[dict[str, Any]], gates: list[Gate], baseline: list[dict[str, Any]] | None,
             max_regression_pct: float | None) -> list[Check]:
    checks = []
    for gate in gates:
        for record in (r for r in records if gate.selects(r)):
            for threshold in gate.thresholds:
                ok, measured = threshold.holds(record)
                checks.append(Check(threshold.text, _label(record), ok, f"measured {measured}"))
    if baseline is not None and max_regression_pct is not None:
        by_key = {(r["_run"], r["engine"], r["strategy"], r["profile"], r["images"], r["users"]): r
                  for r in baseline}
        for record in records:
            base = by_key.get((record["_run"], record["engine"], record["strategy"], record["profile"],
                               record["images"], record["users"]))
            if base is None:
                continue
            for text in REGRESSION_METRICS:
                threshold = Threshold.parse(f"{text} >= 0")
                now, before = threshold.measure(record), threshold.measure(base)
                if now is None or before is None:
                    continue
                limit = before * (1 + max_regression_pct / 100) if before else 0.0
                ok = now <= limit or now <= before
                checks.append(Check(f"{text} regression <= {max_regression_pct:g}%", _label(record), ok,
                                    f"baseline {before:g}, now {now:g}"))
    return checks


def junit(checks: list[Check]) -> str:
    failures = sum(1 for c in checks if not c.ok)
    cases = []
    for check in checks:
        body = "" if check.ok else f"<failure message={quoteattr(check.detail)}>{escape(check.detail)}</failure>"
        cases.append(f"  <testcase classname={quoteattr(check.record)} name={quoteattr(check.name)}>{body}</testcase>")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="bulkbench gate" tests="{len(checks)}" '
            f'failures="{failures}">\n' + "\n".join(cases) + "\n</testsuite>\n")


def markdown(checks: list[Check]) -> str:
    failed = [c for c in checks if not c.ok]
    lines = [f"### bulkbench gate: {'FAILED' if failed else 'passed'} ({len(checks) - len(failed)}/{len(checks)})",
             "", "| | run | threshold | |", "|---|---|---|---|"]
    lines += [f"| {'✅' if c.ok else '❌'} | {c.record} | `{c.name}` | {c.detail} |" for c in checks]
    return "\n".join(lines) + "\n"


def gate(run_dir: Path, thresholds: Path, baseline_dir: Path | None = None,
         max_regression_pct: float | None = None) -> tuple[int, list[Check]]:
    records = load_records(run_dir)
    gates = load_gates(thresholds)
    baseline = load_records(baseline_dir) if baseline_dir else None
    checks = evaluate(records, gates, baseline, max_regression_pct)
    if not checks:
        raise ConfigError(f"{thresholds}: no threshold selects any record of {run_dir}")
    (run_dir / "gate.xml").write_text(junit(checks))  # for a folder of runs: beside them
    (run_dir / "gate.md").write_text(markdown(checks))
    return (EXIT_OK if all(c.ok for c in checks) else EXIT_THRESHOLDS_FAILED), checks


def main(args: Any) -> int:
    try:
        code, checks = gate(Path(args.run_dir), Path(args.thresholds), Path(args.baseline) if args.baseline else None,
                            args.max_regression)
    except (ConfigError, KeyError, ValueError) as exc:
        print(f"bulkbench gate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(markdown(checks))
    print(f"JUnit: {Path(args.run_dir) / 'gate.xml'}  Markdown: {Path(args.run_dir) / 'gate.md'}")
    return code
