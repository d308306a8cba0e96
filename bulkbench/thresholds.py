"""The thresholds a run is held to, in k6's grammar: written once, used by ``bulkbench gate`` after a run
(``reports.gate``) and by a real run that watches its own (``abort_on_fail``, ``loadtests.watch``).

A threshold is ``METRIC [AGGREGATE] OP NUMBER`` (``reports/gate.py`` documents the metrics), or a table
as k6 writes one, to stop a real run early once it is crossed::

    thresholds = [
        "failure_rate < 0.001",
        { threshold = "op_ack_ms p(95) < 500", abort_on_fail = true, delay_abort_eval_s = 10 },
    ]

Only what a run measures as it goes can be watched (``LIVE_METRICS``): the answers and uploads so far,
and the counters. Whether an image is lost is known at its judgement, at the end.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bulkbench.config import ConfigError, read_toml

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


LIVE_METRICS = ("op_ack_ms", "upload_ms", "ws_messages_sent", "ws_messages_received", "http_requests",
                "bytes_uploaded")
"""What a real run can watch while it goes (``abort_on_fail``): raw samples so far and counters."""


@dataclass(frozen=True, slots=True)
class Threshold:
    text: str
    metric: str
    aggregate: str | None
    op: str
    value: float
    abort_on_fail: bool = False
    """Stop a real run the moment it is crossed (k6's ``abortOnFail``)."""
    delay_abort_eval_s: float = 0.0
    """Not watched before this long into the run (k6's ``delayAbortEval``): a p(95) of three samples says little."""

    @classmethod
    def parse(cls, item: str | dict[str, Any]) -> Threshold:
        """A threshold as a string, or as k6's table ``{threshold, abort_on_fail, delay_abort_eval_s}``."""
        if isinstance(item, dict):
            unknown = sorted(set(item) - {"threshold", "abort_on_fail", "delay_abort_eval_s"})
            if unknown or not isinstance(item.get("threshold"), str):
                raise ConfigError(f"threshold {item!r}: a table has 'threshold' (text), 'abort_on_fail' and "
                                  f"'delay_abort_eval_s'{f'; unknown {unknown}' if unknown else ''}")
            parsed = cls.parse(item["threshold"])
            abort, delay = item.get("abort_on_fail", False), item.get("delay_abort_eval_s", 0.0)
            if not isinstance(abort, bool) or not isinstance(delay, int | float) or delay < 0:
                raise ConfigError(f"threshold {item!r}: abort_on_fail is true or false, delay_abort_eval_s >= 0")
            if abort and parsed.metric not in LIVE_METRICS:
                raise ConfigError(f"threshold {parsed.text!r}: {parsed.metric} is known only when the run is judged, "
                                  f"so it cannot stop a run; watchable: {list(LIVE_METRICS)}")
            return cls(parsed.text, parsed.metric, parsed.aggregate, parsed.op, parsed.value, abort, float(delay))
        if not isinstance(item, str):
            raise ConfigError(f"threshold {item!r} is neither text nor a table")
        text = item
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



    def holds(self, record: dict[str, Any]) -> tuple[bool, float | None]:
        """Whether ``record`` meets it, and what was measured (nothing measured: it does not hold)."""
        measured = self.measure(record)
        return measured is not None and OPERATORS[self.op](measured, self.value), measured


@dataclass(frozen=True, slots=True)
class Gate:
    """One ``[[gate]]`` table: the records it selects, the thresholds they are held to."""

    select: dict[str, Any]
    thresholds: tuple[Threshold, ...]

    def selects(self, record: dict[str, Any]) -> bool:
        return all(record.get(key) == value for key, value in self.select.items())


def load_gates(path: Path) -> list[Gate]:
    if not path.exists():
        raise ConfigError(f"thresholds file {path} does not exist")
    tables = read_toml(path).get("gate", [])
    if not tables:
        raise ConfigError(f"{path}: no [[gate]] tables")
    return [Gate(dict(table.get("select", {})), tuple(Threshold.parse(t) for t in table.get("thresholds", [])))
            for table in tables]
