"""The capacity plan's pieces: the frontier, the knobs, the USL fit."""

from __future__ import annotations

import pytest

from bulkbench.profile import load_profile
from sim.plan import (
    IMAGES,
    USERS,
    PlanTargets,
    apply_knob,
    compare_plans,
    frontier,
    judge_knob,
    meets,
    sweep,
    sweep_jobs,
    usl_fit,
)


def test_usl_fit_recovers_known_coefficients() -> None:
    sigma, kappa, x1 = 0.05, 0.002, 10.0
    users = [1, 2, 4, 8, 16, 32]
    throughput = [x1 * n / (1 + sigma * (n - 1) + kappa * n * (n - 1)) for n in users]
    fit = usl_fit(users, throughput)
    assert fit is not None
    assert fit["sigma"] == pytest.approx(sigma, abs=1e-6) and fit["kappa"] == pytest.approx(kappa, abs=1e-7)
    assert fit["peak_users"] == pytest.approx(((1 - sigma) / kappa) ** 0.5)


def test_frontier_is_the_largest_passing_point() -> None:
    rows = [{"images": n, "users": 1, "failure_rate": 0.0 if n <= 300 else 0.2, "drop_seconds": n / 10}
            for n in (100, 200, 300, 500)]
    rows += [{"images": 200, "users": u, "failure_rate": 0.0, "drop_seconds": 50.0 * u} for u in (2, 5, 10)]
    result = frontier(rows, PlanTargets(failure_rate=0.01, drop_seconds=300), images_at=200)
    assert result == {"largest_drop_1_user": 300, "most_users_at_200": 5}


def test_only_cells_read_for_within_or_not_stop_at_the_give_up_limit() -> None:
    """The USL reads the throughputs at ``images_at`` and a knob's rank the failure rate one size up: those
    cells run on; every other plain cell stops once its give-ups alone miss the failure target."""
    jobs = sweep_jobs(["batched"], ["legacy"], {"seed": 1}, images_at=200, give_up_limit=0.05)
    limits = {(s["images"], s["users"], s.get("knob", "")): s.get("give_up_limit", 0.0) for s, _ in jobs}
    assert len(limits) == len(IMAGES) * len(USERS) + 5 * len(IMAGES)
    for (images, _users, knob), limit in limits.items():
        assert limit == (0.05 if images != 200 and not knob else 0.0)


def test_a_sweep_hands_its_rows_back_in_the_order_of_its_jobs() -> None:
    """Cells run largest first on the pool; each row still comes back in its job's place."""
    jobs = [({"strategy": "batched", "images": n, "users": u, "uplink_mbit": 10.0}, None)
            for n, u in ((5, 1), (20, 2), (10, 1), (15, 3))]
    done: list[int] = []
    rows = sweep(jobs, 2, lambda finished, total: done.append(finished))
    assert [(r["images"], r["users"]) for r in rows] == [(5, 1), (20, 2), (10, 1), (15, 3)]
    assert all(r["images_ok"] == r["images"] * r["users"] for r in rows) and done == [1, 2, 3, 4]


def test_a_cell_stopped_at_the_horizon_never_meets_the_targets() -> None:
    """Four runs at 280 s and one stopped at 360 s average 296 s: under a 300 s target, yet one run
    missed it. A cell with any replication stopped is a miss."""
    targets = PlanTargets(failure_rate=0.5, drop_seconds=300.0)
    row = {"failure_rate": 0.1, "drop_seconds": 296.0, "censored": 0}
    assert meets(row, targets)
    assert not meets({**row, "censored": 1}, targets)


def test_a_knob_changes_one_thing() -> None:
    legacy = load_profile("legacy")
    changed = apply_knob(legacy, {"stages.thumbnail.workers": 2.0})
    assert changed.stage("thumbnail").workers == 8 and changed.stage("ops") == legacy.stage("ops")
    assert apply_knob(legacy, {"thumbnails": "async"}).thumbnails == "async"


def test_the_plan_page_writes_what_the_plan_holds(tmp_path) -> None:
    """The page (``reports.plan_page``) from a plan's result: its table, a heatmap per plan, the checks."""
    from reports.plan_page import write
    rows = [{"strategy": "batched", "profile": "legacy", "images": n, "users": u, "knob": "",
             "failure_rate": 0.5 if n * u > 500 else 0.0, "drop_seconds": 10.0, "images_ok": n * u}
            for n in (50, 1000) for u in (1, 5)]
    result = {"targets": {"failure_rate": 0.01, "drop_seconds": 300.0}, "uplink_mbit": 10.0,
              "grid": {"images": [50, 1000], "users": [1, 5]},
              "tolerance": {"failure_rate": 0.05, "drop_seconds": 0.15},
              "plans": [{"strategy": "batched", "profile": "legacy", "largest_drop_1_user": 50, "most_users_at_200": 5,
                         "largest_drop_by_knob": {"delta persistence": 1000}, "best_knob": "delta persistence",
                         "usl": None}],
              "verified": [{"strategy": "batched", "profile": "legacy", "images": 50, "users": 1,
                            "predicted_failure_rate": 0.0, "measured_failure_rate": 0.2, "predicted_drop_seconds": 10.0,
                            "measured_drop_seconds": 11.0, "within_model_error": False}],
              "rows": rows}
    pages = write(tmp_path, result)
    markdown = pages["markdown"].read_text()
    assert "| batched | legacy | 50 | 5 | delta persistence (1000) |" in markdown
    assert "| batched | legacy | 50 | 1 | 0.000 | 0.200 | 10.0 | 11.0 | NO |" in markdown
    assert "failure rate +-0.05, drop time +-15%" in markdown
    assert (tmp_path / "heatmap-batched-legacy.png").stat().st_size > 1000 and pages["html"].exists()


def test_the_progress_bar_knows_when_it_is_not_on_a_terminal() -> None:
    """In a log, no carriage returns and no line per scenario: a line per tenth, and the last."""
    import io

    from sim.plan import progress_bar
    log = io.StringIO()
    for done in range(1, 281):
        progress_bar(done, 280, log)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 10 and lines[-1] == "280/280 scenarios"


def test_usl_fit_holds_a_coefficient_at_zero_and_fits_the_rest_again() -> None:
    """Throughput made with sigma = -0.02 (slightly better than linear, then contention): sigma is held at
    0, and X1 and kappa are fitted again under that bound, not taken from the unbounded fit and clipped."""
    users = [1, 2, 4, 8, 16, 32]
    throughput = [10 * n / (1 - 0.02 * (n - 1) + 0.004 * n * (n - 1)) for n in users]
    fit = usl_fit(users, throughput)
    assert fit is not None and fit["sigma"] == pytest.approx(0.0, abs=1e-9) and fit["kappa"] > 0.001

    def residual(x1: float, kappa: float) -> float:
        return sum((x1 * n / (1 + kappa * n * (n - 1)) - x) ** 2 for n, x in zip(users, throughput, strict=True))

    best = residual(fit["x1_images_per_s"], fit["kappa"])
    for x1, kappa in ((1.02, 1.0), (0.98, 1.0), (1.0, 1.1), (1.0, 0.9)):  # a minimum under the bound
        assert residual(fit["x1_images_per_s"] * x1, fit["kappa"] * kappa) > best


def test_tune_ranks_a_strategys_knobs_by_bound_then_settlement(tmp_path) -> None:
    from sim.plan import sweep
    from sim.tune import parse_grid, tune
    grid = parse_grid(["flush_items=25,1000", "flush_s=1.0,1000"], "pipelined")
    assert grid == {"flush_items": [25, 1000], "flush_s": [1.0, 1000.0]}
    result = tune("pipelined", grid, ["optimized"], 60, 1, sweep, 1, lambda done, total: None, uplinks=(20.0,))
    best, worst = result["ranked"][0], result["ranked"][-1]
    assert best["knobs"]["flush_s"] == 1.0 or best["knobs"]["flush_items"] == 25  # flushed as it goes
    assert worst["knobs"] == {"flush_items": 1000, "flush_s": 1000.0}
    assert worst["worst_settled_p50_share"] > 0.95 > 0.7 > best["worst_settled_p50_share"]


@pytest.mark.parametrize("item", ["window_size=2", "flush_items", "flush_items=a,b", "flush_items="])
def test_a_bad_grid_is_a_clear_error(item: str) -> None:
    from bulkbench.config import ConfigError
    from sim.tune import parse_grid
    with pytest.raises(ConfigError, match="--grid"):
        parse_grid([item], "pipelined")


def test_knobs_that_reach_the_same_drop_are_told_apart_by_how_they_reach_it() -> None:
    """Two knobs both pass 500 images and fail 1000: the one nearer the targets at 1000 is the better;
    where that ties too, the faster at 500. Judged on the grid the plan already has: no more runs."""
    targets = PlanTargets(failure_rate=0.01, drop_seconds=300.0)

    def rows(fail_1000: float, drop_500: float) -> list[dict]:
        return [{"images": 200, "users": 1, "failure_rate": 0.0, "drop_seconds": 40.0},
                {"images": 500, "users": 1, "failure_rate": 0.0, "drop_seconds": drop_500},
                {"images": 1000, "users": 1, "failure_rate": fail_1000, "drop_seconds": 250.0}]

    near, far = judge_knob(rows(0.02, 120.0), targets), judge_knob(rows(0.30, 100.0), targets)
    assert near["largest_drop"] == far["largest_drop"] == 500
    assert near["score"] > far["score"], "nearer the targets one size up"
    fast, slow = judge_knob(rows(0.30, 90.0), targets), judge_knob(rows(0.30, 150.0), targets)
    assert fast["score"] > slow["score"] and fast["drop_s_at_largest"] == 90.0
    none = judge_knob([{"images": 200, "users": 1, "failure_rate": 0.5, "drop_seconds": 40.0}], targets)
    assert none["largest_drop"] == 0 and none["drop_s_at_largest"] is None
    assert frontier(rows(0.02, 120.0), targets, 200)["largest_drop_1_user"] == 500


def test_a_pass_beyond_a_miss_is_not_capacity() -> None:
    """A non-monotone sweep (a lucky draw at 1000 after a miss at 500; 10 users passing after 5 failed):
    the frontier stops at the first miss, for drops and for users, and so does a knob's judgement."""
    targets = PlanTargets(failure_rate=0.01, drop_seconds=300)
    rows = [{"images": n, "users": 1, "failure_rate": 0.2 if n == 500 else 0.0, "drop_seconds": n / 10}
            for n in (100, 200, 300, 500, 1000)]
    rows += [{"images": 200, "users": u, "failure_rate": 0.3 if u == 5 else 0.0, "drop_seconds": 20.0 * u}
             for u in (2, 5, 10)]
    assert frontier(rows, targets, images_at=200) == {"largest_drop_1_user": 300, "most_users_at_200": 2}
    assert judge_knob(rows, targets)["largest_drop"] == 300


def test_bulkbench_plan_itself_writes_a_plan_its_rows_support(tmp_path) -> None:
    """The command end to end (one strategy, one profile, the light workload): every grid point and knob
    simulated, the frontier and the best knob as its own rows say, the page and its heatmap written."""
    import subprocess
    import sys

    import orjson
    out = tmp_path / "plan"
    result = subprocess.run([sys.executable, "-m", "bulkbench.cli", "plan", "--strategies", "batched", "--profiles",
                             "optimized", "--workload", "scenarios/workload-light.toml", "--replications", "2",
                             "--target-drop-seconds", "60", "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    plan = orjson.loads((out / "plan.json").read_bytes())
    grid = plan["grid"]
    assert len(plan["rows"]) == len(grid["images"]) * len(grid["users"]) + 5 * len(grid["images"])
    assert plan["replications"] == 2 and plan["horizon_s"] == pytest.approx(72.0)
    for row in plan["rows"]:  # every cell its interval; a cell stopped at the horizon or by give-ups says so,
        assert len(row["failure_rate_ci95"]) == len(row["drop_seconds_ci95"]) == 2  # and runs no further
        assert row["censored"] in (0, 1) and (row["replications_run"] == 2 or row["censored"])
        if row["censored"] and row["replications_run"] == 1:
            assert row["drop_seconds"] <= 72.0 + 1e-9 and row["failure_rate"] > 0
    assert any(row["censored"] for row in plan["rows"]) and not all(row["censored"] for row in plan["rows"])
    assert "marked +" in (out / "plan.md").read_text()
    (entry,) = plan["plans"]
    targets = PlanTargets(**plan["targets"])
    plain = [r for r in plan["rows"] if not r["knob"]]
    assert {k: v for k, v in entry.items() if k in ("largest_drop_1_user", "most_users_at_200")} == \
        frontier(plain, targets, 200)
    scores = {knob: judge_knob([r for r in plan["rows"] if r["knob"] == knob], targets)["score"]
              for knob in entry["knobs"]}
    assert entry["best_knob"] == max(scores, key=scores.get)
    assert (out / "plan.html").is_file() and (out / "heatmap-batched-optimized.png").is_file()


def test_plan_diff_finds_a_cell_that_changed_sides_and_ignores_a_censored_one() -> None:
    """``compare_plans`` (``benchmarks.performance.plan_diff``): the check that a faster sweep gives the same plan."""
    cell = {"strategy": "batched", "profile": "legacy", "users": 1, "knob": "", "images_ok": 100}
    before = {"targets": {"failure_rate": 0.01, "drop_seconds": 300.0}, "plans": [{"strategy": "batched"}],
              "rows": [{**cell, "images": 100, "failure_rate": 0.0, "drop_seconds": 80.0, "censored": 0},
                       {**cell, "images": 500, "failure_rate": 0.3, "drop_seconds": 200.0, "censored": 0}]}
    after = {**before, "rows": [dict(before["rows"][0]),
                                {**before["rows"][1], "failure_rate": 0.9, "drop_seconds": 20.0, "censored": 5}]}
    assert compare_plans(before, after) == {"cells": 2, "within_or_not_changed": [], "plans_changed": [],
                                      "censored_before": 0, "censored_after": 1, "run_to_the_end_after": 1,
                                      "of_them_identical": 1}
    after["rows"][0]["failure_rate"] = 0.02
    result = compare_plans(before, after)
    assert result["within_or_not_changed"] == [("batched", "legacy", 100, 1, "")]
    assert result["of_them_identical"] == 0
