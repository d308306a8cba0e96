"""How far a drop had got, step by step, at given times: its images' nodes sent, uploads done and
completions sent and answered, counted from the per-image timings every engine records.

Why it exists: a model can meet a real run's loss at the cap by the wrong path. The real page and its model
stand-in can lose the same share of 200 images while one sends its completions from the first minute and the
other from the fourth; the end figures cannot tell, their course can. ``COURSE_FILE`` keeps a browser
recording's course (the raw drops stay on the machine that made them), and ``bulkbench validate --course``
puts the model's beside it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence

STEPS = ("node_sent_at", "upload_done_at", "complete_sent_at", "complete_acked_at")
"""The timings counted: a node_create sent, a first upload done, a first completion sent, and answered (not
``settled_at``: a browser's page settles every image it judges, those still open at its cap too)."""

COURSE_TIMES_S = (60.0, 120.0, 200.0, 300.0, 450.0, 600.0, 750.0, 880.0, 1200.0, 1450.0)
"""Where ``validate --course`` reads the counts (those before a scenario's cap): a page's first minutes, up to a
200-image drop's 900 s cap and a 500-image drop's 1500 s."""

COURSE_FILE = "course.jsonl"
"""Beside a recording's ``matrix.jsonl``: its browser rows' drops' step times, one line per drop (``key``,
``user``, ``steps``: each step's times, sorted, seconds from the drop's start)."""


def step_times(timings: Iterable[Mapping[str, float]]) -> dict[str, list[float]]:
    """Each step's times over a drop's images (each image's ``timings``), sorted."""
    times: dict[str, list[float]] = {step: [] for step in STEPS}
    for image in timings:
        for step in STEPS:
            if image.get(step) is not None:
                times[step].append(round(float(image[step]), 3))
    return {step: sorted(values) for step, values in times.items()}


def counts_at(times: Sequence[float], at_s: Sequence[float]) -> list[int]:
    """How many of ``times`` (sorted) are at or before each of ``at_s``."""
    return [bisect.bisect_right(times, at) for at in at_s]
