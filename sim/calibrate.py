"""``bulkbench calibrate RUN_DIR --out PROFILE.toml``: fit the model's stage costs to a measured server.

White box (our server): a real run saves every stage's recent jobs as (items, seconds of real work)
in ``stage_samples.json`` (from the server's ``/metrics/samples``). Per stage, least squares fits
``seconds = work + work_per_item x items`` (both kept >= 0) and the spread around it (``work_cv``).

Black box (a target, which gives no samples): a ``probe`` run (one thing at a time, so each answer's
latency is one job's cost) is fitted from what the client saw: an ack's latency against the nodes the
operation rewrites (``persist``), an upload's against its megabytes (``upload``) and, where thumbnails
are made before the answer, its megapixels times thumbnail sizes (``thumbnail``), by non-negative
least squares (``scipy.optimize.nnls``). Each fit says how good it is (R², and the residual spread
that becomes ``work_cv``). A loopback round trip and the transport's own costs land in the constant
terms: that is what a black box can tell.

Either way the output profile extends the run's profile with ``work_ms``, ``work_per_item_ms`` and
``work_cv`` per stage, so the model predicts the server it measured. Emulated time is not in the
samples: the profile keeps it.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from scipy.optimize import nnls

from bulkbench.limits import MIB
from bulkbench.profile import STAGE_NAMES, ProfileError, load_profile

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
    if not summary_path.exists() or not (run_dir / "images.jsonl").exists():
        raise ProfileError(f"{run_dir} is not a real run's results directory (no summary.json/images.jsonl)")
    summary = orjson.loads(summary_path.read_bytes())[0]
    if summary.get("engine") != "real":
        raise ProfileError(f"{run_dir}: a {summary.get('engine')} run; calibrate fits a real run's server")
    if not samples_path.exists():
        return black_box(run_dir, summary)
    profile = summary["profile"]
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


def fit(columns: list[list[float]], ys: list[float]) -> tuple[list[float], float, float]:
    """Non-negative least squares ``y = sum(coef_i x col_i)``: (coefficients, R², residual CV)."""
    a, b = np.array(columns, dtype=float).T, np.array(ys, dtype=float)
    coefficients, _ = nnls(a, b)
    residual = b - a @ coefficients
    total = float(((b - b.mean()) ** 2).sum())
    r2 = 1.0 - float((residual ** 2).sum()) / total if total > 0 else 1.0
    cv = float(np.sqrt((residual ** 2).mean()) / b.mean()) if b.mean() > 0 else 0.0
    return [float(c) for c in coefficients], r2, cv


def black_box(run_dir: Path, summary: dict[str, Any]) -> tuple[str, dict[str, dict[str, Any]]]:
    """Stage costs of a target from a ``probe`` run's client-side timings (see the module's docstring)."""
    if summary.get("strategy") != "probe":
        raise ProfileError(f"{run_dir}: a {summary.get('strategy')!r} run of a server without stage samples; "
                           "calibrate a target from a probe run (`bulkbench run --strategy probe ...`), where "
                           "nothing overlaps and each answer's latency is one job's cost")
    profile_name = summary.get("extra", {}).get("model_profile") or summary["profile"]
    profile = load_profile(profile_name)
    records = [orjson.loads(line) for line in (run_dir / "images.jsonl").read_text().splitlines()]
    acks_x, acks_y, uploads_x, uploads_y = [], [], [], []
    for nodes, record in enumerate((r for r in records if r["outcome"] == "ok"), start=1):
        t = record["timings"]
        rewritten = nodes if profile.persistence == "full_rewrite" else 1
        acks_x += [[1.0, rewritten], [1.0, rewritten]]
        acks_y += [t["node_acked_at"] - t["node_sent_at"], t["complete_acked_at"] - t["complete_sent_at"]]
        thumbnails = profile.thumbnail_items(record["width"], record["height"])
        uploads_x.append([1.0, record["size_bytes"] / MIB]
                         + ([thumbnails] if profile.thumbnails == "sync" else []))
        uploads_y.append(t["upload_done_at"] - t["upload_started_at"])
    if len(uploads_y) < MIN_SAMPLES:
        raise ProfileError(f"{run_dir}: {len(uploads_y)} images went through; a fit needs {MIN_SAMPLES}")
    (work, per_node), ack_r2, ack_cv = fit(acks_x, acks_y)
    upload_fit, upload_r2, upload_cv = fit(uploads_x, uploads_y)
    fitted = {
        "ops": {"work_ms": 0.0, "work_per_item_ms": 0.0, "work_cv": 0.0, "jobs": 0, "r2": None},
        "persist": {"work_ms": round(work * 1000, 4), "work_per_item_ms": round(per_node * 1000, 5),
                    "work_cv": round(ack_cv, 3), "jobs": len(acks_y), "r2": round(ack_r2, 3)},
        "upload": {"work_ms": round(upload_fit[0] * 1000, 4), "work_per_item_ms": round(upload_fit[1] * 1000, 5),
                   "work_cv": round(upload_cv, 3), "jobs": len(uploads_y), "r2": round(upload_r2, 3)},
    }
    if profile.thumbnails == "sync":  # the upload stage's spread is the whole answer's
        fitted["thumbnail"] = {"work_ms": 0.0, "work_per_item_ms": round(upload_fit[2] * 1000, 5),
                               "work_cv": 0.0, "jobs": len(uploads_y), "r2": round(upload_r2, 3)}
    return profile.name, fitted


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
    print(f"{'stage':<10} {'jobs':>6} {'work ms':>9} {'per item ms':>12} {'cv':>6} {'R²':>6}")
    for stage, values in fitted.items():
        r2 = values.get("r2")
        print(f"{stage:<10} {values['jobs']:>6} {values['work_ms']:>9.3f} {values['work_per_item_ms']:>12.5f} "
              f"{values['work_cv']:>6.2f} {(f'{r2:.3f}' if r2 is not None else '-'):>6}")
    if any("r2" in values for values in fitted.values()):
        print("black box: fitted from the client's view of a probe run (acks against nodes rewritten, uploads "
              "against MB and megapixels x sizes); R² says how much of their spread the fit explains")
    print(f"written {args.out} (extends {profile})")
    return 0
