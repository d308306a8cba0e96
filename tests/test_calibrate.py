"""Calibration fits what it is given: a line through (items, seconds), written as a usable profile."""

from __future__ import annotations

import random

import orjson
import pytest

from bulkbench.profile import load_profile
from sim.calibrate import calibrate, fit_stage, write_profile


def test_fit_line_recovers_a_known_cost() -> None:
    rng = random.Random(5)
    samples = [(n, 0.002 + 0.0001 * n + rng.gauss(0, 0.0001)) for n in rng.choices(range(1, 500), k=2000)]
    work, per_item, r2, cv = fit_stage(samples)
    assert work == pytest.approx(0.002, abs=0.0002)
    assert per_item == pytest.approx(0.0001, rel=0.02)
    assert 0 < cv < 0.1 and r2 > 0.99


def test_fit_line_with_one_item_count_is_a_mean() -> None:
    work, per_item, _, _ = fit_stage([(1, 0.010), (1, 0.020), (1, 0.030)])
    assert (work, per_item) == (pytest.approx(0.020), 0.0)


def test_calibrate_writes_a_profile_the_model_can_load(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_bytes(orjson.dumps([{"profile": "legacy", "engine": "real"}]))
    (run / "images.jsonl").write_text("")
    samples = {"ops": {"workers": 1, "samples": [[1, 0.0003]] * 10},
               "persist": {"workers": 1, "samples": [[n, 0.0001 + 0.000002 * n] for n in range(1, 300)]}}
    (run / "stage_samples.json").write_bytes(orjson.dumps(samples))
    profile_name, fitted = calibrate(run)
    out = tmp_path / "fitted.toml"
    write_profile(profile_name, fitted, out, str(run))
    profile = load_profile(out)
    assert profile.name == "legacy-calibrated" and profile.persistence == "full_rewrite"
    assert profile.stage("persist").work_per_item_ms == pytest.approx(0.002, rel=0.01)
    assert profile.stage("ops").work_ms == pytest.approx(0.3, rel=0.01)
    assert profile.stage("thumbnail").workers == 4  # everything else inherited


def test_a_cost_that_would_fit_negative_is_refit_at_zero_not_clipped() -> None:
    """Jobs that get cheaper with more items (noise, or a cache): the slope is held at 0 and the constant
    refit to the data (the mean), where clipping the slope afterwards would keep the old intercept."""
    work, per_item, _, _ = fit_stage([(1, 0.030), (2, 0.020), (3, 0.010)])
    assert per_item == 0.0 and work == pytest.approx(0.020)


def test_black_box_recovers_a_targets_costs_from_a_probe_runs_timings(tmp_path) -> None:
    """A probe run's client-side timings made from known costs: acks 2 ms + 0.01 ms per node rewritten,
    uploads 5 ms + 3 ms per MB + 20 ms per megapixel-size; the fit finds them, R² near 1."""
    run = tmp_path / "probe"
    run.mkdir()
    (run / "summary.json").write_bytes(orjson.dumps([{"profile": "imagecanvas", "engine": "real", "strategy": "probe",
                                                      "extra": {"model_profile": "legacy"}}]))
    legacy = load_profile("legacy")
    rng = random.Random(3)
    lines = []
    for n in range(1, 61):
        width, height = rng.choice([(1600, 1200), (1024, 768), (640, 480)])
        size = rng.randrange(100_000, 900_000)
        ack = 0.002 + 0.00001 * n
        upload = 0.005 + 0.003 * size / 2**20 + 0.020 * legacy.thumbnail_items(width, height)
        timings = {"node_sent_at": 0.0, "node_acked_at": ack, "upload_started_at": 1.0, "upload_done_at": 1.0 + upload,
                   "complete_sent_at": 2.0, "complete_acked_at": 2.0 + ack}
        lines.append(orjson.dumps({"id": f"i{n}", "outcome": "ok", "timings": timings, "size_bytes": size,
                                   "width": width, "height": height}).decode())
    (run / "images.jsonl").write_text("\n".join(lines))
    profile_name, fitted = calibrate(run)
    assert profile_name == "legacy"
    assert fitted["persist"]["work_ms"] == pytest.approx(2.0, rel=0.01)
    assert fitted["persist"]["work_per_item_ms"] == pytest.approx(0.01, rel=0.01)
    assert fitted["thumbnail"]["work_per_item_ms"] == pytest.approx(20.0, rel=0.01)
    assert fitted["upload"]["work_per_item_ms"] == pytest.approx(3.0, rel=0.05)
    assert fitted["persist"]["r2"] > 0.99 and fitted["upload"]["r2"] > 0.99


def test_a_run_that_is_not_a_probe_cannot_be_fitted_as_a_black_box(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_bytes(orjson.dumps([{"profile": "imagecanvas", "engine": "real",
                                                      "strategy": "individual"}]))
    (run / "images.jsonl").write_text("")
    with pytest.raises(ValueError, match="probe run"):
        calibrate(run)
