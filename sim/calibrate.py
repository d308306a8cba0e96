"""``bulkbench calibrate RUN_DIR --out PROFILE.toml``: fit the model's stage costs to a measured server.

A real run saves every stage's recent jobs as (items, seconds of real work) in
``stage_samples.json`` (from the server's ``/metrics/samples``). Per stage, least squares fits
``seconds = work + work_per_item x items`` (both kept >= 0) and the spread around it (``work_cv``);
the output profile extends the run's profile with those three keys per stage, so the model
predicts the server it measured. Emulated time is not in the samples: the profile keeps it.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import orjson

from bulkbench.profile import STAGE_NAMES, ProfileError

MIN_SAMPLES = 5


def fit_line(samples: list[tuple[float, float]]) -> tuple[float, float, float]:
    """(intercept s, slope s/item, coefficient of variation of the residual spread) with both >= 0."""
    xs = [float(x) for x, _ in samples]
    ys = [float(y) for _, y in samples]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    var_x = statistics.fmean((x - mean_x) ** 2 for x in xs)
    slope = statistics.fmean((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var_x \
        if var_x > 1e-12 else 0.0
    slope = max(0.0, slope)
    intercept = max(0.0, mean_y - slope * mean_x)
    predicted = [intercept + slope * x for x in xs]
    residual = math.sqrt(statistics.fmean((y - p) ** 2 for y, p in zip(ys, predicted, strict=True)))
    cv = residual / mean_y if mean_y > 0 else 0.0
    return intercept, slope, cv


def calibrate(run_dir: Path) -> tuple[str, dict[str, dict[str, Any]]]:
    samples_path = run_dir / "stage_samples.json"
    summary_path = run_dir / "summary.json"
    if not samples_path.exists() or not summary_path.exists():
        raise ProfileError(f"{run_dir} is not a real run's results directory (no stage_samples.json/summary.json)")
    profile = orjson.loads(summary_path.read_bytes())[0]["profile"]
    fitted: dict[str, dict[str, Any]] = {}
    for stage, data in orjson.loads(samples_path.read_bytes()).items():
        if stage not in STAGE_NAMES:
            continue
        samples = data["samples"]
        if len(samples) < MIN_SAMPLES:
            continue
        work, per_item, cv = fit_line(samples)
        fitted[stage] = {"work_ms": round(work * 1000, 4), "work_per_item_ms": round(per_item * 1000, 5),
                         "work_cv": round(cv, 3), "jobs": len(samples)}
    return profile, fitted


def write_profile(profile: str, fitted: dict[str, dict[str, Any]], out: Path, source: Path) -> None:
    lines = [f"# Calibrated by `bulkbench calibrate {source}`: the model's stage costs fitted to that run.",
             'kind = "profile"', f'extends = "{profile}"',
             f'name = "{profile}-calibrated"', ""]
    for stage, values in fitted.items():
        lines += [f"[stages.{stage}]  # fitted on {values['jobs']} jobs",
                  f"work_ms = {values['work_ms']}", f"work_per_item_ms = {values['work_per_item_ms']}",
                  f"work_cv = {values['work_cv']}", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))


def main(args: Any) -> int:
    run_dir = Path(args.run_dir)
    profile, fitted = calibrate(run_dir)
    if not fitted:
        raise ProfileError(f"{run_dir}: no stage has {MIN_SAMPLES} samples to fit")
    write_profile(profile, fitted, Path(args.out), run_dir)
    print(f"{'stage':<10} {'jobs':>6} {'work ms':>9} {'per item ms':>12} {'cv':>6}")
    for stage, values in fitted.items():
        print(f"{stage:<10} {values['jobs']:>6} {values['work_ms']:>9.3f} {values['work_per_item_ms']:>12.5f} "
              f"{values['work_cv']:>6.2f}")
    print(f"written {args.out} (extends {profile})")
    return 0
