"""The page's frame feedback, fitted per machine with the model (``bulkbench calibrate --page --feedback-from``).

Why: fc1316b's page draws a frame before each of its steps, and while it is still hashing files that frame
grows with every image it has uploaded (``individual``'s ``page_s_per_uploaded_image``). A 50-image drop
ends its hashing before that matters (the model's 50-image drops do not move with it at all), so the
speed ``calibrate --page`` reads off 50-image runs says nothing of it; a 200-image drop lives by it. It is
not a CPU cost that scales with the machine either: on the first machine today's 200-image page took
719-752 s, on a machine whose page was 0.83 as busy per node at 50 images, 342-435 s (0.47 as busy per
node), so scaling it by 0.83 left the stand-in at 604 s.

How: with every other page cost as the speed calibration says, the model's drop time rises with the
feedback's coefficient (monotonically on the runs measured), so the coefficient is found by bisection
where the model's drop (seeded as the first run was) meets the median of the browser runs' drop times.
Pages that never settle (cut at their cap, as every 200-image page on a slow boot is) say how much they had
lost by the cap instead, and the model's loss there rises with the coefficient too, though one seed's jumps
(its heartbeat may drop the socket or not): their median loss is met by the model's mean over
``CAPPED_SEEDS`` seeds, run on every core.
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

from bulkbench.config import ConfigError
from bulkbench.page_calibration import FEEDBACK_PARAM, FeedbackFit, PageCalibration
from sim.pool import run_each
from sim.run import SimOptions, run_sim

FIT_STEPS = 12
"""Bisection steps: the coefficient to 1/4096 of its search range."""
SEARCH_UP_TO = 4.0
"""The search runs from 0 to this many times the speed-scaled coefficient."""
CAPPED_SEEDS = 10
"""Runs cut at their cap are met by the mean loss of this many model seeds: one seed's loss jumps with its
layout race and its heartbeat's draws, their mean rises with the coefficient."""


def _options(calibration: PageCalibration, run: dict[str, Any], coefficient: float, seed: int,
             horizon_s: float = 0.0) -> SimOptions:
    network = run.get("extra", {}).get("network", {})
    overrides = {**calibration.scaled, FEEDBACK_PARAM: coefficient}
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return SimOptions(
        strategy=calibration.strategy, strategy_overrides=tuple(sorted(overrides.items())), images=run["images"],
        users=run.get("users", 1), profile=run["extra"]["model_profile"], seed=seed,
        uplink_mbit=float(network.get("uplink_mbit", 0.0)), queue_ms=float(network.get("queue_ms", 200.0)),
        horizon_s=horizon_s)


def model_drop_s(calibration: PageCalibration, run: dict[str, Any], coefficient: float) -> float:
    """The model's drop time for browser run ``run``'s scenario, under the calibrated page with this coefficient."""
    return run_sim(_options(calibration, run, coefficient, run.get("seed", 1))).drop_seconds


def model_failure_rate(options: SimOptions) -> float:
    """One model run's failure rate (a module's function: the pool's workers find it by name)."""
    return run_sim(options).failure_rate


def model_lost_at_cap(calibration: PageCalibration, run: dict[str, Any], coefficient: float,
                      seeds: int = CAPPED_SEEDS) -> float:
    """The model's mean loss over ``seeds`` seeds for browser run ``run``'s scenario, cut where it was cut."""
    return statistics.fmean(run_each(model_failure_rate, [
        _options(calibration, run, coefficient, seed, horizon_s=run["drop_seconds"]) for seed in range(1, seeds + 1)]))


def fit_feedback(calibration: PageCalibration, runs: list[dict[str, Any]]) -> PageCalibration:
    """``calibration`` with the feedback's coefficient where the model meets the browser runs (runs of one
    scenario: one drop size, uplink and server): their median drop time where they settled; where every one was
    cut at its cap, their median loss by then (a capped run's drop time is the cap's: what it says is how much
    it had not done)."""
    if FEEDBACK_PARAM not in calibration.scaled:
        raise ConfigError(f"{calibration.strategy} has no {FEEDBACK_PARAM} to fit")
    if not runs:
        raise ConfigError("no browser run to fit the page's frame feedback to")
    scenarios = {(r["images"], r.get("users", 1), r["extra"].get("model_profile"),
                  r["extra"].get("network", {}).get("uplink_mbit")) for r in runs}
    if len(scenarios) > 1:
        raise ConfigError(f"--feedback-from: runs of one scenario (drop size, users, server, uplink), "
                          f"got {sorted(scenarios)}")
    capped = [bool(r["extra"].get("capped")) for r in runs]
    if any(capped) and not all(capped):
        raise ConfigError(f"--feedback-from: {sum(capped)} of {len(runs)} runs were cut at their cap: give runs that "
                          "all settled (fitted on their drop time) or all cut (fitted on their loss by the cap)")
    probe, cut = runs[0], all(capped)
    if cut:
        target, what = statistics.median(r["failure_rate"] for r in runs), "loss by the cap"

        def model(coefficient: float) -> float:
            return model_lost_at_cap(calibration, probe, coefficient)
    else:
        target, what = statistics.median(r["drop_seconds"] for r in runs), "drop time"

        def model(coefficient: float) -> float:
            return model_drop_s(calibration, probe, coefficient)
    low, high = 0.0, SEARCH_UP_TO * calibration.scaled[FEEDBACK_PARAM]
    if model(high) < target:
        raise ConfigError(f"the browser runs' {what} {target:g} is beyond the model's at {FEEDBACK_PARAM} = "
                          f"{high:g}: not the frame feedback's doing")
    for _ in range(FIT_STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if model(middle) < target else (low, middle)
    coefficient = float(f"{(low + high) / 2:.4g}")
    met = model(coefficient)
    fit = FeedbackFit(drop_s=sorted(r["drop_seconds"] for r in runs), images=probe["images"],
                      uplink_mbit=float(probe["extra"].get("network", {}).get("uplink_mbit", 0.0)),
                      profile=probe["extra"]["model_profile"], scaled=calibration.scaled[FEEDBACK_PARAM],
                      coefficient=coefficient, model_drop_s=None if cut else met,
                      lost=sorted(r["failure_rate"] for r in runs) if cut else [],
                      model_lost=round(met, 4) if cut else None)
    return dataclasses.replace(calibration, scaled={**calibration.scaled, FEEDBACK_PARAM: coefficient}, feedback=fit)
