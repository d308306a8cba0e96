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

import operator
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import orjson

from bulkbench.config import ConfigError, read_toml
from reports.data import read_drops, read_images

EXIT_OK = 0
EXIT_THRESHOLDS_FAILED = 99
EXIT_USAGE = 2

OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
             "!=": operator.ne}
SCALARS = ("failure_rate", "images_failed", "images_ok", "drop_seconds", "ws_messages_sent", "ws_messages_received",
           "http_requests", "bytes_uploaded", "bound_seconds", "drop_over_bound", "time_to_first_settled_s",
           "settled_p50_s")
TRENDS = ("op_ack_ms", "upload_ms", "settled_s")
RATES = ("image_failed",)
SUMMARY_AGGREGATES = {"p(50)": "p50", "p(95)": "p95", "p(99)": "p99", "max": "max"}
"""What a run without raw samples still answers, from its summary."""
EXPRESSION = re.compile(r"^\s*(?P<metric>[a-z_]+)\s*(?P<aggregate>p\(\d+(\.\d+)?\)|avg|med|min|max|count|rate)?"
                        r"\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<value>-?\d+(\.\d+)?([eE]-?\d+)?)\s*$")
REGRESSION_METRICS = ("failure_rate", "drop_seconds", "op_ack_ms p(95)", "ws_messages_sent")


@dataclass(frozen=True, slots=True)
class Threshold:
    text: str
    metric: str
    aggregate: str | None
    op: str
    value: float

    @classmethod
    def parse(cls, text: str) -> Threshold:
        match = EXPRESSION.match(text)
        if not match:
            raise ConfigError(f"threshold {text!r} is not 'METRIC [p(N)|avg|med|min|max|count|rate] OP NUMBER'")
        metric, aggregate = match["metric"], match["aggregate"]
        if metric in TRENDS:
            if aggregate is None or aggregate == "rate":
                raise ConfigError(f"threshold {text!r}: {metric} needs p(N), avg, med, min, max or count")
            if aggregate.startswith("p(") and not 0 <= float(aggregate[2:-1]) <= 100:
                raise ConfigError(f"threshold {text!r}: a percentile is between p(0) and p(100)")
        elif metric in RATES:
            if aggregate not in ("rate", "count"):
                raise ConfigError(f"threshold {text!r}: {metric} needs rate or count")
        elif metric in SCALARS:
            if aggregate:
                raise ConfigError(f"threshold {text!r}: {metric} takes no aggregate")
        else:
            raise ConfigError(f"threshold {text!r}: unknown metric {metric!r}; known: {[*SCALARS, *TRENDS, *RATES]}")
        return cls(text.strip(), metric, aggregate, match["op"], float(match["value"]))

    def measure(self, record: dict[str, Any]) -> float | None:
        if self.metric in SCALARS:
            return record.get(self.metric)  # None (an older run, nothing settled): the threshold fails
        samples = record.get("_samples", {}).get(self.metric)
        if samples is None:  # no raw samples: the summary's own figures, where it has them
            if self.metric in TRENDS and self.aggregate in SUMMARY_AGGREGATES and self.metric in record:
                return record[self.metric][SUMMARY_AGGREGATES[self.aggregate]]
            raise ConfigError(f"threshold {self.text!r}: {record['_name']} has no raw samples of {self.metric}")
        if self.aggregate == "count":
            return float(len(samples))
        if not samples:
            return None  # nothing measured: a threshold on it fails, it does not pass
        if self.aggregate == "rate":
            return sum(samples) / len(samples)
        if self.aggregate == "avg":
            return float(np.mean(samples))
        if self.aggregate == "min":
            return float(np.min(samples))
        if self.aggregate == "max":
            return float(np.max(samples))
        q = 50.0 if self.aggregate == "med" else float(self.aggregate[2:-1])
        return float(np.percentile(samples, q))  # linear between closest ranks, as k6


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    record: str
    ok: bool
    detail: str


def _label(record: dict[str, Any]) -> str:
    return (f"{record['_name']}: {record['engine']} {record['strategy']} {record['profile']} "
            f"{record['images']}x{record['users']}")


def _selected(record: dict[str, Any], select: dict[str, Any]) -> bool:
    return all(record.get(key) == value for key, value in select.items())


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


def evaluate(records: list[dict[str, Any]], gates: list[dict[str, Any]], baseline: list[dict[str, Any]] | None,
             max_regression_pct: float | None) -> list[Check]:
    checks = []
    for gate in gates:
        thresholds = [Threshold.parse(t) for t in gate.get("thresholds", [])]
        for record in (r for r in records if _selected(r, gate.get("select", {}))):
            for threshold in thresholds:
                measured = threshold.measure(record)
                ok = measured is not None and OPERATORS[threshold.op](measured, threshold.value)
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
    if not thresholds.exists():
        raise ConfigError(f"thresholds file {thresholds} does not exist")
    gates = read_toml(thresholds).get("gate", [])
    if not gates:
        raise ConfigError(f"{thresholds}: no [[gate]] tables")
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
