"""The page's hash pace against what it had uploaded (read by ``python -m benchmarks.validation.hash_pace``):
seconds per node sent, per ``STEP`` nodes, beside the images uploaded by the middle of each stretch."""

from __future__ import annotations

import bisect

STEP = 20
"""Nodes per stretch: enough to average out the page's two hashers and its coordinator's 2 s tick."""


def pace(images: list[dict], step: int = STEP) -> list[tuple[int, float, int]]:
    """(nodes sent by the stretch's end, seconds per node in it, images uploaded by its middle) per stretch."""
    sent = sorted(i["timings"]["node_sent_at"] for i in images if i["timings"].get("node_sent_at") is not None)
    done = sorted(i["timings"]["upload_done_at"] for i in images if i["timings"].get("upload_done_at") is not None)
    stretches = []
    for end in range(step, len(sent), step):
        start_s, end_s = sent[end - step], sent[end]
        stretches.append((end, (end_s - start_s) / step, bisect.bisect_right(done, (start_s + end_s) / 2)))
    return stretches
