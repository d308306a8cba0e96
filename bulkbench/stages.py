"""How far a drop had got, stage by stage, at given times: its images' nodes sent, uploads done and
completions sent and answered, counted from the per-image timings every engine records.

Why it exists: a model can meet a real run's loss at the cap by the wrong path. The real page and its model
stand-in can lose the same share of 200 images while one sends its completions from the first minute and the
other from the fourth; the end figures cannot tell, their course can. ``STAGES_FILE`` keeps a browser
recording's course (the raw drops stay on the machine that made them), and ``bulkbench validate --stages``
puts the model's beside it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence

STAGES = ("node_sent_at", "upload_done_at", "complete_sent_at", "complete_acked_at")
"""The timings counted: a node_create sent, a first upload done, a first completion sent, and answered (not
``settled_at``: a browser's page settles every image it judges, those still open at its cap too)."""

STAGE_TIMES_S = (60.0, 120.0, 200.0, 300.0, 450.0, 600.0, 750.0, 880.0)
"""Where ``validate --stages`` reads the counts: a 200-image page's first minutes, and up to a 900 s cap."""

STAGES_FILE = "stages.jsonl"
"""Beside a recording's ``matrix.jsonl``: its browser rows' drops' stage times, one line per drop (``key``,
``user``, ``stages``: each stage's times, sorted, seconds from the drop's start)."""


def stage_times(timings: Iterable[Mapping[str, float]]) -> dict[str, list[float]]:
    """Each stage's times over a drop's images (each image's ``timings``), sorted."""
    times: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for image in timings:
        for stage in STAGES:
            if image.get(stage) is not None:
                times[stage].append(round(float(image[stage]), 3))
    return {stage: sorted(values) for stage, values in times.items()}


def counts_at(times: Sequence[float], at_s: Sequence[float]) -> list[int]:
    """How many of ``times`` (sorted) are at or before each of ``at_s``."""
    return [bisect.bisect_right(times, at) for at in at_s]
