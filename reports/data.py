"""Results directories (``bulkbench run`` or ``bulkbench sim``) as tables."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from bulkbench.config import ConfigError


@dataclass
class Run:
    path: Path
    summary: dict[str, Any]
    series: pd.DataFrame
    op_ack_s: list[float] = field(default_factory=list)
    settled_s: list[float] = field(default_factory=list)
    """When each image that ended ok settled (seconds since its drop began)."""
    images: list[dict[str, Any]] = field(default_factory=list)
    """Each image's record (outcome, cause, timings), as ``images.jsonl`` has it."""

    @property
    def label(self) -> str:
        """What the run was; a repeated real run (``real-batched-2``: ``compare --real-runs``) says which."""
        s = self.summary
        users = f" x{s['users']}" if s["users"] > 1 else ""
        again = re.search(r"-(\d+)$", self.path.name)
        return f"{s['engine']} {s['strategy']} {s['images']}{users}" + (f" #{again.group(1)}" if again else "")

    @property
    def key(self) -> tuple[str, str, int, int]:
        """What a real run and its model prediction share (a target's run: the profile that stands for it)."""
        s = self.summary
        return (s["strategy"], s.get("extra", {}).get("model_profile") or s["profile"], s["images"], s["users"])


class NotAResultsDirectory(ConfigError):
    """Given a folder that holds no results: the command line answers exit 2 and why."""


def read_drops(path: Path) -> list[dict[str, Any]]:
    """A run's drops (``drops/*.json``): each user's answers and uploads, as the engine recorded them."""
    folder = path / "drops"
    return [orjson.loads(p.read_bytes()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def read_images(path: Path) -> list[dict[str, Any]]:
    """A run's images (``images.jsonl``): each one's outcome, cause and timings."""
    images = path / "images.jsonl"
    return [orjson.loads(line) for line in images.read_bytes().splitlines() if line.strip()] if images.exists() else []


def load_run(path: Path) -> Run:
    summary_path = path / "summary.json"
    if not summary_path.exists():
        raise NotAResultsDirectory(f"{path}: no summary.json (not a results directory of run or sim)")
    summary = orjson.loads(summary_path.read_bytes())[0]
    series_path = path / "server_metrics.csv"
    series = pd.read_csv(series_path) if series_path.exists() and series_path.stat().st_size else pd.DataFrame()
    acks = [ack for drop in read_drops(path) for ack in drop.get("op_ack_s", [])]
    images = read_images(path)
    settled = [i["timings"]["settled_at"] for i in images if i["outcome"] == "ok" and "settled_at" in i["timings"]]
    return Run(path, summary, series, acks, settled, images)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _what_lost_them(extra: dict[str, Any]) -> list[str]:
    """What the run saw beside its causes that explains them: the server's file sweep (why acked images may
    be not_on_server); a page that closed its own socket (fc1316b's heartbeat, when the page handles its
    answers over 30 s late: it reconnects without joining its canvas again, and every later operation is
    refused) or lost it for good (what was open is connection_lost)."""
    why = []
    if swept := extra.get("uploads_swept"):
        why.append(f"the server's file sweep deleted {swept:g} uploads")
    if reopened := extra.get("sockets_reopened"):
        late = (extra.get("heartbeat") or {}).get("late_max_s")
        why.append(f"sockets opened again by the page: {reopened:g}"
                   + (f", its heartbeat's answers handled up to {late:.0f} s late" if late is not None else ""))
    if lost := extra.get("sockets_lost"):
        why.append(f"pages that lost their socket for good: {lost:g}")
    return why


def headline(runs: list[Run]) -> pd.DataFrame:
    """One row per run, with the model's error beside each real run it predicted."""
    rows = []
    predicted = {run.key: run.summary for run in runs if run.summary["engine"] == "sim"}
    for run in runs:
        s = run.summary
        causes = ", ".join(f"{k} {v:g}" for k, v in s["failures_by_cause"].items()) or "-"
        if why := _what_lost_them(s.get("extra", {})):
            causes += f" ({'; '.join(why)})"
        row = {
            "run": run.label, "engine": s["engine"], "strategy": s["strategy"], "profile": s["profile"],
            "images": s["images"], "users": s["users"], "images lost": round(s["images_failed"], 1),
            "failure rate": s["failure_rate"],
            "causes": causes, "drop s": round(s["drop_seconds"], 1),
            "bound s": _round(s.get("bound_seconds"), 1), "drop / bound": _round(s.get("drop_over_bound"), 2),
            "settled p50 s": _round(s.get("settled_p50_s"), 1), "ws messages": round(s["ws_messages_sent"]),
            "http requests": round(s["http_requests"]),
            "op-ack p95 ms": None if s["op_ack_ms"]["p95"] is None else round(s["op_ack_ms"]["p95"], 1),
            "model error (failure rate)": None, "model error (drop s)": None,
        }
        model = predicted.get(run.key)
        if s["engine"] == "real" and model is not None:
            row["model error (failure rate)"] = round(model["failure_rate"] - s["failure_rate"], 3)
            row["model error (drop s)"] = f"{(model['drop_seconds'] - s['drop_seconds']) / s['drop_seconds']:+.0%}"
        rows.append(row)
    return pd.DataFrame(rows)
