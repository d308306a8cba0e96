"""``bulkbench plan``: capacity planning with the model, verified by a few real runs.

For each strategy and profile, the model sweeps images per drop x users (in parallel on every
core). The plan answers "how many images per drop, how many users at once" as a frontier: the
largest drop (1 user) and the most users (at ``--images``) with failure rate and drop time under
the targets; which server knob buys the most headroom (each knob changed alone), and a Universal
Scalability Law fit of throughput (images/s) against users. ``--verify K`` re-runs K frontier points
for real and puts measured beside predicted. The page (heatmaps, tables) is ``reports.plan_page``'s.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import scipy.optimize

from bulkbench.profile import Profile, load_profile
from sim.accuracy import DROP_SECONDS_TOLERANCE, FAILURE_RATE_TOLERANCE, within
from sim.pool import run_each
from sim.run import SimOptions, run_sim

IMAGES = (50, 100, 200, 300, 500, 750, 1000)
USERS = (1, 2, 5, 10, 20)
KNOBS: dict[str, dict[str, Any]] = {
    "thumbnails after the answer": {"thumbnails": "async"},
    "delta persistence": {"persistence": "delta"},
    "2x thumbnail workers": {"stages.thumbnail.workers": 2.0},
    "2x ops workers": {"stages.ops.workers": 2.0},
    "hash de-duplication": {"dedup_by_hash": True},
}
"""Server knobs, each tried alone on top of the profile (``stages.X.workers`` values multiply)."""


@dataclasses.dataclass(frozen=True, slots=True)
class PlanTargets:
    failure_rate: float = 0.01
    drop_seconds: float = 300.0


def apply_knob(profile: Profile, knob: dict[str, Any]) -> Profile:
    changes: dict[str, Any] = {}
    stages = dict(profile.stages)
    for key, value in knob.items():
        if key.startswith("stages."):
            _, stage, field = key.split(".")
            spec = profile.stage(stage)
            stages[stage] = dataclasses.replace(spec, **{field: max(1, int(getattr(spec, field) * value))})
        else:
            changes[key] = value
    return dataclasses.replace(profile, stages=stages, **changes)


REPLICATIONS = 5
"""Replications per cell (``--replications``): every cell gets a 95 % interval."""
HORIZON_FACTOR = 1.2
"""A cell is simulated up to this times the drop-time target (``--full``: to its end). Past it the cell has
missed its target whatever comes next (``meets``): its drop time is then a lower bound and its failure
rate an upper one (open images count as lost), marked ``censored``, and none of its replications is run
after that one (``stop_at_censored``)."""
GIVE_UP_FACTOR = 1.0
"""A replication whose client has given up on this times replications x the failure-rate target of its
images stops there too (``--full``: never), censored as at the horizon: its failures alone put the
cell's mean over the target. The model's truth is the server's, so an image the client gave up on
could still count as delivered; on the default sweep no cell's within-or-not changed (the note of #15)."""


def _simulate(job: tuple[dict[str, Any], Profile | None]) -> dict[str, Any]:
    spec, profile = job
    summary = run_sim(SimOptions(**spec), profile_override=profile)
    ci = summary.extra["ci95"]
    return {**spec, "failure_rate": summary.failure_rate, "drop_seconds": summary.drop_seconds,
            "failure_rate_ci95": ci["failure_rate"], "drop_seconds_ci95": ci["drop_seconds"],
            "censored": summary.extra.get("censored", 0), "replications_run": summary.extra["replications"],
            "images_ok": summary.images_ok, "ws_messages_sent": summary.ws_messages_sent,
            "drop_over_bound": summary.drop_over_bound, "settled_p50_s": summary.settled_p50_s}


def _size(spec: dict[str, Any]) -> int:
    return spec.get("images", 0) * spec.get("users", 1)


def sweep(jobs: list[tuple[dict[str, Any], Profile | None]], processes: int,
          progress: Callable[[int, int], None]) -> list[dict[str, Any]]:
    """The jobs' rows in their order, the largest cells (images x users) first (``sim.pool``)."""
    return run_each(_simulate, jobs, processes, size=lambda job: _size(job[0]), progress=progress)


def progress_bar(done: int, total: int, stream: Any = None) -> None:
    """A bar redrawn in place on a terminal; elsewhere (a CI log, a pipe) one line per tenth, and the end."""
    stream = stream or sys.stdout
    if stream.isatty():
        width = 40
        filled = int(width * done / total)
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} scenarios")
        if done == total:
            stream.write("\n")
    elif done == total or done * 10 // total != (done - 1) * 10 // total:
        stream.write(f"{done}/{total} scenarios\n")
    stream.flush()


def meets(row: dict[str, Any], targets: PlanTargets) -> bool:
    """A cell within the targets. One whose replications were stopped at the horizon never is: its mean
    drop time would average a lower bound in."""
    return (row["failure_rate"] < targets.failure_rate and row["drop_seconds"] < targets.drop_seconds
            and not row.get("censored"))


def frontier(rows: Iterable[dict[str, Any]], targets: PlanTargets, images_at: int) -> dict[str, Any]:
    rows = list(rows)
    largest = _last_before_a_miss(sorted((r["images"], meets(r, targets)) for r in rows if r["users"] == 1))
    most = _last_before_a_miss(sorted((r["users"], meets(r, targets)) for r in rows if r["images"] == images_at))
    return {"largest_drop_1_user": largest, f"most_users_at_{images_at}": most}


def _last_before_a_miss(points: list[tuple[int, bool]]) -> int:
    """The largest point whose every smaller point passes too: a pass beyond a miss (a lucky draw) is not
    capacity a plan may promise."""
    last = 0
    for value, passed in points:
        if not passed:
            break
        last = value
    return last


def judge_knob(rows: Iterable[dict[str, Any]], targets: PlanTargets) -> dict[str, Any]:
    """A knob judged at the largest drop it allows (one user), so knobs that reach the same grid point
    are still told apart: first the largest drop within the targets, then the failure rate at the next
    size up (the one that broke it: lower is nearer the targets), then the drop time at the largest
    (faster is better). ``score`` orders them in that sense."""
    ones = sorted((r for r in rows if r["users"] == 1), key=lambda r: r["images"])

    largest = None
    for row in ones:  # up to the first miss: a pass beyond it is not capacity
        if not meets(row, targets):
            break
        largest = row
    beyond = next((r for r in ones if largest is None or r["images"] > largest["images"]), None)
    failure_beyond = beyond["failure_rate"] if beyond is not None else 0.0
    drop_at_largest = largest["drop_seconds"] if largest is not None else math.inf
    return {"largest_drop": largest["images"] if largest else 0,
            "drop_s_at_largest": largest["drop_seconds"] if largest is not None else None,
            "failure_rate_beyond": failure_beyond,
            "score": (largest["images"] if largest else 0, -failure_beyond, -drop_at_largest)}


def usl_fit(users: list[int], throughput: list[float]) -> dict[str, float] | None:
    """Universal Scalability Law, X(N) = X1 N / (1 + sigma (N-1) + kappa N (N-1)), fitted to the
    throughputs themselves by bounded non-linear least squares (sigma, kappa >= 0): a coefficient the
    data would push below zero is held at zero and the others are fitted again, not clipped after."""
    pairs = [(n, x) for n, x in zip(users, throughput, strict=True) if x > 0]
    if len(pairs) < 3 or pairs[0][0] != 1:
        return None
    n = np.array([p[0] for p in pairs], float)
    x = np.array([p[1] for p in pairs], float)

    def model(n: np.ndarray, x1: float, sigma: float, kappa: float) -> np.ndarray:
        return x1 * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))

    (x1, sigma, kappa), _ = scipy.optimize.curve_fit(model, n, x, p0=(x[0], 0.01, 0.0001),
                                                    bounds=([0.0, 0.0, 0.0], [np.inf, np.inf, np.inf]))
    sigma, kappa = float(sigma), float(kappa)
    peak = float(np.sqrt((1 - sigma) / kappa)) if kappa > 0 and sigma < 1 else float("inf")
    return {"x1_images_per_s": float(x1), "sigma": sigma, "kappa": kappa, "peak_users": peak}


def sweep_jobs(strategies: list[str], profiles: list[str], base: dict[str, Any], images_at: int,
               give_up_limit: float) -> list[tuple[dict[str, Any], Profile | None]]:
    """The plan's cells: images x users for each strategy and profile, then each knob alone at 1 user.
    Only the cells the plan reads for nothing but within-or-not stop at ``give_up_limit`` (``GIVE_UP_FACTOR``):
    the USL reads the throughputs at ``images_at`` and a knob's rank the failure rate one size up."""
    jobs: list[tuple[dict[str, Any], Profile | None]] = []
    for strategy, profile, images, users in itertools.product(strategies, profiles, IMAGES, USERS):
        jobs.append(({**base, "strategy": strategy, "profile": profile, "images": images, "users": users,
                      "give_up_limit": 0.0 if images == images_at else give_up_limit}, None))
    for strategy, profile, (knob, change) in itertools.product(strategies, profiles, KNOBS.items()):
        changed = apply_knob(load_profile(profile), change)
        for images in IMAGES:
            jobs.append(({**base, "strategy": strategy, "profile": profile, "images": images, "users": 1,
                          "knob": knob}, changed))
    return jobs


def plan(strategies: list[str], profiles: list[str], targets: PlanTargets, images_at: int, uplink_mbit: float,
         seed: int, processes: int, workload: str = "",
         verify: Callable[[dict[str, Any]], dict[str, Any]] | None = None, verify_points: int = 0,
         replications: int = REPLICATIONS, full: bool = False, coarse: bool = True) -> dict[str, Any]:
    """``coarse``: a node's GETs as bursts (``gets_as_bursts``) and no replication after a censored one;
    against the fine form on the default sweep, 0 of 280 cells changed within-or-not and 229 of the 230 run
    to their end gave the same figures (the other, losing 80 %, ended 2.5 % later; note of #15,
    ``benchmarks.performance.plan_bench``). ``full``: every cell and replication to its end, every GET on
    its own (neither stop, nor the coarse form)."""
    coarse = coarse and not full
    base = {"seed": seed, "uplink_mbit": uplink_mbit, "workload": workload, "link_per_user": True,
            "replications": replications, "gets_as_bursts": coarse, "stop_at_censored": coarse,
            "horizon_s": 0.0 if full else HORIZON_FACTOR * targets.drop_seconds}
    jobs = sweep_jobs(strategies, profiles, base, images_at,
                      0.0 if full else GIVE_UP_FACTOR * replications * targets.failure_rate)
    rows = sweep([(({k: v for k, v in spec.items() if k != "knob"}), prof) for spec, prof in jobs], processes,
                 progress_bar)
    for (spec, _prof), row in zip(jobs, rows, strict=True):
        row["knob"] = spec.get("knob", "")
    result: dict[str, Any] = {"targets": dataclasses.asdict(targets), "uplink_mbit": uplink_mbit, "plans": [],
                              "replications": replications, "horizon_s": base["horizon_s"],
                              "grid": {"images": list(IMAGES), "users": list(USERS)},
                              "tolerance": {"failure_rate": FAILURE_RATE_TOLERANCE,
                                            "drop_seconds": DROP_SECONDS_TOLERANCE}}
    for strategy, profile in itertools.product(strategies, profiles):
        mine = [r for r in rows if r["strategy"] == strategy and r["profile"] == profile]
        plain = [r for r in mine if not r["knob"]]
        entry = {"strategy": strategy, "profile": profile, **frontier(plain, targets, images_at)}
        judged = {knob: judge_knob([r for r in mine if r["knob"] == knob], targets) for knob in KNOBS}
        entry["largest_drop_by_knob"] = {knob: j["largest_drop"] for knob, j in judged.items()}
        entry["knobs"] = judged
        entry["best_knob"] = max(judged, key=lambda knob: judged[knob]["score"]) if judged else ""
        at = sorted((r for r in plain if r["images"] == images_at), key=lambda r: r["users"])
        entry["usl"] = usl_fit([r["users"] for r in at],
                               [r["images_ok"] / r["drop_seconds"] if r["drop_seconds"] else 0.0 for r in at])
        result["plans"].append(entry)
    if verify is not None and verify_points:
        result["verified"] = _verify(rows, result["plans"], verify, verify_points, base, images_at)
    result["rows"] = rows
    return result


def _verify(rows: list[dict[str, Any]], plans: list[dict[str, Any]], verify: Callable[[dict[str, Any]], dict],
            count: int, base: dict[str, Any], images_at: int) -> list[dict[str, Any]]:
    """Re-run frontier points for real: each plan's largest drop first, then its most users."""
    points = []
    for entry in plans:
        if entry["largest_drop_1_user"]:
            points.append({"strategy": entry["strategy"], "profile": entry["profile"],
                           "images": entry["largest_drop_1_user"], "users": 1})
    for entry in plans:
        if entry[f"most_users_at_{images_at}"]:
            points.append({"strategy": entry["strategy"], "profile": entry["profile"], "images": images_at,
                           "users": entry[f"most_users_at_{images_at}"]})
    checked = []
    for point in points[:count]:
        predicted = next(r for r in rows if not r["knob"] and all(r[k] == v for k, v in point.items()))
        # a real run's users share one shaped loopback: give it the sum of their uplinks
        real = {k: base[k] for k in ("seed", "uplink_mbit", "workload")}
        measured = verify({**real, **point, "uplink_mbit": base["uplink_mbit"] * point["users"]})
        checked.append({**point, "predicted_failure_rate": predicted["failure_rate"],
                        "measured_failure_rate": measured["failure_rate"],
                        "predicted_drop_seconds": predicted["drop_seconds"],
                        "measured_drop_seconds": measured["drop_seconds"],
                        "within_model_error": within(predicted["failure_rate"], measured["failure_rate"],
                                                     predicted["drop_seconds"], measured["drop_seconds"])})
    return checked


PLAN_CELL = ("strategy", "profile", "images", "users", "knob")


def compare_plans(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Two plans of the same sweep (``benchmarks.performance.plan_diff``): does a faster way of running it
    give the same plan?"""
    targets = PlanTargets(**before["targets"])
    rows_before = {tuple(r[k] for k in PLAN_CELL): r for r in before["rows"]}
    rows_after = {tuple(r[k] for k in PLAN_CELL): r for r in after["rows"]}
    if rows_before.keys() != rows_after.keys():
        raise ValueError("the two plans did not sweep the same cells")
    flipped = [cell for cell, row in rows_before.items() if meets(row, targets) != meets(rows_after[cell], targets)]
    ran_out = [cell for cell, row in rows_after.items() if not row["censored"]]
    same = [cell for cell in ran_out if not rows_before[cell]["censored"]
            and all(rows_before[cell][k] == rows_after[cell][k] for k in ("failure_rate", "drop_seconds", "images_ok"))]
    plans = [(b["strategy"], b["profile"]) for b, a in zip(before["plans"], after["plans"], strict=True) if b != a]
    return {"cells": len(rows_before), "within_or_not_changed": flipped, "plans_changed": plans,
            "censored_before": sum(1 for r in rows_before.values() if r["censored"]),
            "censored_after": sum(1 for r in rows_after.values() if r["censored"]),
            "run_to_the_end_after": len(ran_out), "of_them_identical": len(same)}


def plan_from_args(args: Any, verify: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                   coarse: bool = True) -> dict[str, Any]:
    """The plan the command line asks for (``reports.plan_page`` writes it)."""
    return plan(args.strategies.split(","), args.profiles.split(","),
                PlanTargets(args.target_failure_rate, args.target_drop_seconds), args.images_at, args.uplink_mbit,
                args.seed, args.processes, args.workload, verify=verify,
                verify_points=args.verify, replications=args.replications, full=args.full, coarse=coarse)
