"""``bulkbench calibrate --page ... --thread-from DIR``: the page's main thread as its busy series measured it.

Why: the frame feedback (``--feedback-from``) is fitted to what capped pages lost, and on a slow boot it met
their loss by the wrong path: it completed nothing by 200 s where the pages had completed 14-25 (session 21's
note). The browser engine records, per 10 s of the drop, how long the page's thread was blocked and by how many
long tasks (``extra.busy_series``); their ratio, the mean long task, is the pace of a thread busy all the time.
On that boot it stayed at 0.2 s for about 200 s and then grew with time, alike for both versions of the page,
though their uploads did not grow alike, and a 500-image page went on growing at the same rate to 1450 s.

How: a segmented (hinge) line through every bucket of every page given, ``frame_s`` up to a knee and
``frame_s_per_s`` more per second after it, fitted by least squares at each knee on a grid and the best kept
(the knee makes the fit non-linear; at a fixed knee it is a linear one). The result is the thread's form in
``individual``'s terms: one task at a time (``page_thread_serial``), nothing per upload.

Where it stands (``examples/validation/browser-harness/thread-measured.toml``): the model's thread then runs the
pages' count of long tasks per 100 s, within 16 %, but its drop loses 0.40 of 200 where they lost 0.51-0.74:
every task of the model is a step of the drop, while the page's long tasks are its renderer's (its thumbnail
images loaded, their IndexedDB encodes, two animation-frame callbacks: ``extra.frame_work``), and the drop's
steps are short tasks between them."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np

from bulkbench.config import ConfigError

KNEE_STEP_S = 5.0
"""The knees tried, this far apart (half the recorder's bucket)."""
KNEE_LAST_S = 600.0
"""The latest knee tried: a page whose tasks have not grown by then has no growth this fit can see."""
MIN_BUCKETS = 20
"""Fewer buckets with a long task than this (200 s of a page) fit no knee."""


@dataclass(frozen=True)
class ThreadFit:
    """The page's mean long task against the drop's clock."""

    pages: int
    buckets: int
    frame_s: float
    """The mean long task up to the knee."""
    growth_from_s: float
    """The knee."""
    frame_s_per_s: float
    """How much longer the mean task grows per second after it."""
    residual_s: float
    """The fit's root-mean-square error per bucket (the pages' own scatter about it)."""
    left_out: int = 0
    """Pages given without a busy series (recorded before the harness kept one)."""

    def params(self) -> dict[str, Any]:
        """``individual``'s parameters for this thread (the upload feedback off: the tasks grew with time)."""
        return {"page_thread_serial": True, "page_frame_s": self.frame_s, "page_frame_s_per_s": self.frame_s_per_s,
                "page_frame_growth_from_s": self.growth_from_s, "page_s_per_uploaded_image": 0.0}

    def said(self) -> str:
        return (f"{self.pages} pages' mean long task ({self.buckets} buckets) {self.frame_s:.3g} s to "
                f"{self.growth_from_s:g} s, then {self.frame_s_per_s:.3g} s longer per s (rms {self.residual_s:.3f} s)")


def mean_task_points(summary: dict[str, Any]) -> list[tuple[float, float]]:
    """(the bucket's middle in seconds of the drop, its mean long task in s) for each bucket of the drop with a
    long task in it."""
    series = summary.get("extra", {}).get("busy_series") or []
    starts = [row[0] for row in series]
    width = statistics.median(b - a for a, b in zip(starts, starts[1:], strict=False)) if len(starts) > 1 else 0.0
    return [(start + width / 2, busy_ms / tasks / 1000.0) for start, busy_ms, tasks, *_ in series
            if start >= 0 and tasks]


def fit_thread(summaries: list[dict[str, Any]]) -> ThreadFit:
    """The hinge line through every page's buckets (each bucket one point, whatever its count of tasks: a
    bucket of two 2 s tasks says as much of the thread's pace as one of forty 0.2 s tasks)."""
    by_page = [mean_task_points(s) for s in summaries]
    points = [p for page in by_page for p in page]
    if len(points) < MIN_BUCKETS:
        raise ConfigError(f"{len(points)} buckets with a long task in {len(summaries)} browser runs: the thread's "
                          f"fit needs at least {MIN_BUCKETS} (browser runs record extra.busy_series)")
    t = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    best: tuple[float, float, np.ndarray] | None = None
    for knee in np.arange(0.0, min(KNEE_LAST_S, float(t.max())) + KNEE_STEP_S / 2, KNEE_STEP_S):
        x = np.column_stack([np.ones_like(t), np.maximum(0.0, t - knee)])
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
        sse = float(((x @ coef - y) ** 2).sum())
        if best is None or sse < best[0]:
            best = (sse, float(knee), coef)
    assert best is not None  # the grid holds 0 at least
    sse, knee, (level, slope) = best
    if slope <= 0:  # no growth: one level for the whole drop
        knee, level, slope, sse = 0.0, float(y.mean()), 0.0, float(((y - y.mean()) ** 2).sum())
    return ThreadFit(pages=sum(bool(page) for page in by_page), buckets=len(points),
                     frame_s=float(f"{level:.4g}"), growth_from_s=knee, frame_s_per_s=float(f"{slope:.4g}"),
                     residual_s=(sse / len(points)) ** 0.5, left_out=sum(not page for page in by_page))
