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

from pathlib import Path
from typing import Any

import numpy as np
import orjson
from scipy.optimize import nnls

from bulkbench.limits import MIB
from bulkbench.profile import STAGE_NAMES, ProfileError, load_profile

MIN_SAMPLES = 5


def fit(rows: list[list[float]], ys: list[float]) -> tuple[list[float], float, float]:
    """Non-negative least squares ``y = sum(coef_i x row_i)``: (coefficients, R², residual CV). Each
    coefficient is kept >= 0 by the fit itself (``scipy.optimize.nnls``), not clipped after it."""
    a, b = np.array(rows, dtype=float), np.array(ys, dtype=float)
    coefficients, _ = nnls(a, b)
    residual = b - a @ coefficients
    total = float(((b - b.mean()) ** 2).sum())
    r2 = 1.0 - float((residual ** 2).sum()) / total if total > 0 else 1.0
    cv = float(np.sqrt((residual ** 2).mean()) / b.mean()) if b.mean() > 0 else 0.0
    return [float(c) for c in coefficients], r2, cv


def fit_stage(samples: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    """A stage's (work s, work per item s, R², residual CV) from its (items, seconds) jobs; with one item
    count only, a job's cost is their mean and nothing is per item."""
    xs = {x for x, _ in samples}
    if len(xs) == 1:
        (work,), r2, cv = fit([[1.0] for _ in samples], [y for _, y in samples])
        return work, 0.0, r2, cv
    (work, per_item), r2, cv = fit([[1.0, x] for x, _ in samples], [y for _, y in samples])
    return work, per_item, r2, cv


def _summary(run_dir: Path) -> dict[str, Any]:
    summary_path = run_dir / "summary.json"
    if not summary_path.exists() or not (run_dir / "images.jsonl").exists():
        raise ProfileError(f"{run_dir} is not a real run's results directory (no summary.json/images.jsonl)")
    summary = orjson.loads(summary_path.read_bytes())[0]
    if summary.get("engine") != "real":
        raise ProfileError(f"{run_dir}: a {summary.get('engine')} run; calibrate fits a real run's server")
    return summary


def calibrate(*run_dirs: Path, black: bool = False) -> tuple[str, dict[str, dict[str, Any]]]:
    """Stage costs fitted to one run's server, or to several runs of one profile pooled (runs of
    different workloads pooled pin both a job's constant cost and its cost per item). ``black``: fit a
    probe run from the client's side even where the server's samples exist (to see how close a black
    box gets to them)."""
    summaries = [_summary(run_dir) for run_dir in run_dirs]
    if black or not (run_dirs[0] / "stage_samples.json").exists():
        if len(run_dirs) > 1:
            raise ProfileError("a black-box fit takes one probe run")
        return black_box(run_dirs[0], summaries[0])
    profiles = {s["profile"] for s in summaries}
    if len(profiles) > 1:
        raise ProfileError(f"runs of different profiles cannot be pooled: {sorted(profiles)}")
    pooled: dict[str, list[tuple[float, float]]] = {}
    for run_dir in run_dirs:
        samples_path = run_dir / "stage_samples.json"
        if not samples_path.exists():
            raise ProfileError(f"{run_dir}: no stage_samples.json (a target's run: fit it alone, from a probe run)")
        for stage, data in orjson.loads(samples_path.read_bytes()).items():
            if stage in STAGE_NAMES:
                pooled.setdefault(stage, []).extend((float(x), float(y)) for x, y in data["samples"])
    fitted: dict[str, dict[str, Any]] = {}
    for stage, samples in pooled.items():
        if len(samples) < MIN_SAMPLES:
            continue
        work, per_item, r2, cv = fit_stage(samples)
        fitted[stage] = {"work_ms": round(work * 1000, 4), "work_per_item_ms": round(per_item * 1000, 5),
                         "work_cv": round(cv, 3), "jobs": len(samples), "r2": round(r2, 3)}
    return profiles.pop(), fitted


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
    fitted: dict[str, dict[str, Any]] = {
        "ops": {"work_ms": 0.0, "work_per_item_ms": 0.0, "work_cv": 0.0, "jobs": 0, "r2": None},
        "persist": {"work_ms": round(work * 1000, 4), "work_per_item_ms": round(per_node * 1000, 5),
                    "work_cv": round(ack_cv, 3), "jobs": len(acks_y), "r2": round(ack_r2, 3)},
        "upload": {"work_ms": round(upload_fit[0] * 1000, 4), "work_per_item_ms": round(upload_fit[1] * 1000, 5),
                   "work_cv": round(upload_cv, 3), "jobs": len(uploads_y), "r2": round(upload_r2, 3)},
    }
    if profile.thumbnails == "sync":  # the upload stage's spread is the whole answer's
        fitted["thumbnail"] = {"work_ms": 0.0, "work_per_item_ms": round(upload_fit[2] * 1000, 5),
                               "work_cv": 0.0, "jobs": len(uploads_y), "r2": round(upload_r2, 3)}
    for values in fitted.values():
        values["black_box"] = True
    return profile.name, fitted


def write_profile(profile: str, fitted: dict[str, dict[str, Any]], out: Path, source: str) -> None:
    lines = [f"# Calibrated by `bulkbench calibrate {source}`: the model's stage costs fitted to that run.",
             'kind = "profile"', f'extends = "{profile}"',
             f'name = "{profile}-calibrated"', ""]
    for stage, values in fitted.items():
        r2 = f", R² {values['r2']}" if values.get("r2") is not None else ""
        lines += [f"[stages.{stage}]  # fitted on {values['jobs']} jobs{r2}",
                  f"work_ms = {values['work_ms']}", f"work_per_item_ms = {values['work_per_item_ms']}",
                  f"work_cv = {values['work_cv']}", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))


def main(args: Any) -> int:
    run_dirs = [Path(d) for d in args.run_dirs]
    profile, fitted = calibrate(*run_dirs, black=args.black_box)
    if not fitted:
        raise ProfileError(f"{' '.join(args.run_dirs)}: no stage has {MIN_SAMPLES} samples to fit")
    write_profile(profile, fitted, Path(args.out), " ".join(args.run_dirs))
    print(f"{'stage':<10} {'jobs':>6} {'work ms':>9} {'per item ms':>12} {'cv':>6} {'R²':>6}")
    for stage, values in fitted.items():
        r2 = values.get("r2")
        print(f"{stage:<10} {values['jobs']:>6} {values['work_ms']:>9.3f} {values['work_per_item_ms']:>12.5f} "
              f"{values['work_cv']:>6.2f} {(f'{r2:.3f}' if r2 is not None else '-'):>6}")
    if any(values.get("black_box") for values in fitted.values()):
        print("black box: fitted from the client's view of a probe run (acks against nodes rewritten, uploads "
              "against MB and megapixels x sizes); R² says how much of their spread the fit explains")
    print(f"written {args.out} (extends {profile})")
    return 0
