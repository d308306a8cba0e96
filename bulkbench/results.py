"""The result schema both engines write (DESIGN.md, "Truth and results").

``summary.json`` holds a list of ``RunSummary`` records; ``images.jsonl`` one ``ImageRecord`` per
line. Percentiles are computed here from raw samples, never taken from Locust's rounded stats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal

from bulkbench import __version__


class Cause(StrEnum):
    """Why an image failed; each failed image gets exactly one."""

    ACK_TIMEOUT = "ack_timeout"
    ORPHANED = "orphaned"
    REJECTED = "rejected"
    HTTP_429 = "http_429"
    HTTP_503 = "http_503"
    HTTP_ERROR = "http_error"
    HTTP_TIMEOUT = "http_timeout"
    CONNECTION_LOST = "connection_lost"
    NEVER_SENT = "never_sent"
    NOT_ON_SERVER = "not_on_server"
    UNFINISHED = "unfinished"
    """The page was still working on it when the run's hard cap ended the drop (browser engine)."""


def percentiles(samples: Iterable[float]) -> dict[str, float | None]:
    """p50/p95/p99/max by linear interpolation between closest ranks (numpy's default)."""
    values = sorted(samples)
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}

    def at(q: float) -> float:
        pos = (len(values) - 1) * q
        lo, hi = math.floor(pos), math.ceil(pos)
        return values[lo] + (values[hi] - values[lo]) * (pos - lo)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": values[-1]}


@dataclass(slots=True)
class ImageRecord:
    id: str
    outcome: Literal["ok", "failed"]
    cause: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    size_bytes: int = 0
    width: int = 0
    height: int = 0
    """What the image is (what its upload and thumbnails cost grows with: ``calibrate`` fits by them)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class RunSummary:
    """One record per (engine, strategy, profile, images, users)."""

    engine: Literal["sim", "real", "browser"]
    strategy: str
    profile: str
    images: int
    users: int
    images_ok: int
    images_failed: int
    failures_by_cause: dict[str, int]
    ws_messages_sent: int
    ws_messages_received: int
    http_requests: int
    bytes_uploaded: int
    drop_seconds: float
    op_ack_ms: dict[str, float | None]
    upload_ms: dict[str, float | None]
    seed: int
    version: str = __version__
    time_to_first_settled_s: float | None = None
    """From the run's first byte to the first image settled ok (None: none did)."""
    settled_p50_s: float | None = None
    """From the run's first byte to the median image settled ok: what a user waits for half the drop."""
    bound_seconds: float | None = None
    """The scenario's physical bound (``bulkbench.bound``): no client can drop faster."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failure_rate(self) -> float:
        total = self.images_ok + self.images_failed
        return self.images_failed / total if total else 0.0

    @property
    def drop_over_bound(self) -> float | None:
        return round(self.drop_seconds / self.bound_seconds, 4) if self.bound_seconds else None

    DERIVED: ClassVar[tuple[str, ...]] = ("failure_rate", "drop_over_bound")
    """Computed from the fields: written by ``to_json``, not read back."""

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["failure_rate"] = self.failure_rate
        record["drop_over_bound"] = self.drop_over_bound
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> RunSummary:
        return cls(**{k: v for k, v in record.items() if k not in cls.DERIVED})


def table(summaries: list[RunSummary]) -> str:
    """The headline numbers, one row per record, as a terminal table."""
    head = (f"{'engine':<6} {'strategy':<10} {'profile':<17} {'images':>6} {'users':>5} {'lost':>6} {'rate':>6} "
            f"{'drop s':>7} {'/bound':>6} {'ws sent':>8} {'http':>6} {'ack p95 ms':>10}  causes")
    rows = [head, "-" * len(head)]
    for s in summaries:
        p95 = s.op_ack_ms.get("p95")
        causes = ", ".join(f"{k} {v}" for k, v in s.failures_by_cause.items()) or "-"
        over = f"{s.drop_over_bound:.2f}" if s.drop_over_bound is not None else "-"
        rows.append(f"{s.engine:<6} {s.strategy:<10} {s.profile:<17} {s.images:>6} {s.users:>5} "
                    f"{s.images_failed:>6} {s.failure_rate:>6.1%} {s.drop_seconds:>7.1f} {over:>6} "
                    f"{s.ws_messages_sent:>8} "
                    f"{s.http_requests:>6} {(f'{p95:.0f}' if p95 is not None else '-'):>10}  {causes}")
    return "\n".join(rows)
