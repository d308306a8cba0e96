"""The model's stated error: how far its predictions may be from real runs (issue #4's validation).

``benchmarks.validate`` checks the model against real runs with these; ``bulkbench plan --verify``
marks each verified point within or outside them.
"""

from __future__ import annotations

FAILURE_RATE_TOLERANCE = 0.05
"""Absolute difference in failure rate (0.05 = five images in a hundred)."""
DROP_SECONDS_TOLERANCE = 0.15
"""Relative difference in drop time."""


def within(predicted_failure_rate: float, measured_failure_rate: float, predicted_drop_s: float,
           measured_drop_s: float) -> bool:
    """Whether a prediction is within the stated error of what was measured."""
    return (abs(predicted_failure_rate - measured_failure_rate) <= FAILURE_RATE_TOLERANCE
            and abs(predicted_drop_s - measured_drop_s) <= DROP_SECONDS_TOLERANCE * measured_drop_s)
