"""Calibration fits what it is given: a line through (items, seconds), written as a usable profile."""

from __future__ import annotations

import random

import orjson
import pytest

from bulkbench.profile import load_profile
from sim.calibrate import calibrate, fit_line, write_profile


def test_fit_line_recovers_a_known_cost() -> None:
    rng = random.Random(5)
    samples = [(n, 0.002 + 0.0001 * n + rng.gauss(0, 0.0001)) for n in rng.choices(range(1, 500), k=2000)]
    work, per_item, cv = fit_line(samples)
    assert work == pytest.approx(0.002, abs=0.0002)
    assert per_item == pytest.approx(0.0001, rel=0.02)
    assert 0 < cv < 0.1


def test_fit_line_with_one_item_count_is_a_mean() -> None:
    work, per_item, _ = fit_line([(1, 0.010), (1, 0.020), (1, 0.030)])
    assert (work, per_item) == (pytest.approx(0.020), 0.0)


def test_calibrate_writes_a_profile_the_model_can_load(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_bytes(orjson.dumps([{"profile": "legacy"}]))
    samples = {"ops": {"workers": 1, "samples": [[1, 0.0003]] * 10},
               "persist": {"workers": 1, "samples": [[n, 0.0001 + 0.000002 * n] for n in range(1, 300)]}}
    (run / "stage_samples.json").write_bytes(orjson.dumps(samples))
    profile_name, fitted = calibrate(run)
    out = tmp_path / "fitted.toml"
    write_profile(profile_name, fitted, out, run)
    profile = load_profile(out)
    assert profile.name == "legacy-calibrated" and profile.persistence == "full_rewrite"
    assert profile.stage("persist").work_per_item_ms == pytest.approx(0.002, rel=0.01)
    assert profile.stage("ops").work_ms == pytest.approx(0.3, rel=0.01)
    assert profile.stage("thumbnail").workers == 4  # everything else inherited
