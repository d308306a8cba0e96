"""The model against recorded real runs (``examples/validation``): a change to the model that moves a
prediction outside its stated error, or changes a message count, fails here."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bulkbench.course import COURSE_FILE
from bulkbench.page_calibration import calibrate_page
from bulkbench.strategies import strategy_params
from sim.accuracy import DROP_SECONDS_BIAS_TOLERANCE, count_within, within, within_runs
from sim.run import SimOptions, course_of, run_sim
from sim.validate import compare_course, compare_engines, compare_matrix, compare_servers, compare_spread, read_matrix

ROOT = Path(__file__).resolve().parent.parent


def test_the_model_predicts_the_recorded_issue4_runs_within_its_stated_error(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # the matrix names its workload files relative to the repository
    rows = compare_matrix(ROOT / "examples" / "validation" / "issue4", replications=3)
    assert len(rows) == 20
    assert [r for r in rows if not r["within"]] == []
    for strategy in ("individual", "batched"):  # and no bias the per-row tolerance hides
        errors = [r["drop_error"] for r in rows if r["strategy"] == strategy]
        assert abs(sum(errors) / len(errors)) <= DROP_SECONDS_BIAS_TOLERANCE, (strategy, errors)
    for r in rows:  # where nothing is lost, the model sends exactly the real messages and requests
        if r["real_failure_rate"] == 0 and r["sim_failure_rate"] == 0:
            assert (r["sim_ws_sent"], r["sim_http"]) == (r["real_ws_sent"], r["real_http"])


ISSUE3_LIMITER_CHANGED = "legacy-ratelimit"
"""issue3's legacy-ratelimit rows were recorded when that limiter counted thumbnail GETs only (0 answers of
429); since issue 11 it counts uploads too, as the real app's does. Their failure rate and drop time still
hold; their 429s are of a profile that no longer exists."""

ISSUE3_MISSES = {("batched", 200, 1, 0)}
"""Unshaped loopback, where the load generator hashes and sends on the server's 2 cores: the server used
49.0 CPU-s over the 32.9 s drop (1.49 of its 2 cores), and the model, which gives it both, says 27.5 s
(-16 %). Recorded again against today's server (2026-11-30) with the other batched rows, which hold."""


def test_the_model_predicts_the_held_out_issue3_runs_within_its_stated_error(monkeypatch) -> None:
    """Out of sample: the model's costs were fitted on issue4's runs (the light workload); issue3's were
    recorded before, with the default workload, and never tuned on. Its cliff row (10 Mbit/s, one run
    losing 0.245) is one draw of a spread: ``test_the_models_spread_covers_the_real_runs_at_the_cliff``
    holds the model to five."""
    from sim.accuracy import within
    monkeypatch.chdir(ROOT)
    rows = compare_matrix(ROOT / "examples" / "validation" / "issue3", replications=3)
    assert len(rows) == 20
    missed = set()
    for r in rows:
        key = (r["strategy"], r["images"], r["users"], r["uplink_mbit"])
        held = (within(r["sim_failure_rate"], r["real_failure_rate"], r["sim_drop_s"], r["real_drop_s"])
                if r["target"] == ISSUE3_LIMITER_CHANGED else r["within"])
        if not held:
            missed.add(key)
    assert missed == ISSUE3_MISSES, missed
    for strategy in ("individual", "batched"):
        errors = [r["drop_error"] for r in rows if r["strategy"] == strategy]
        assert abs(sum(errors) / len(errors)) <= DROP_SECONDS_BIAS_TOLERANCE, (strategy, errors)


def _imagecanvas_rows() -> Path:
    return ROOT / "examples" / "validation" / "imagecanvas"


MODEL_MISSES = {("legacy-ratelimit", 200, 5), ("imagecanvas-as-reported", 200, 5)}
"""Five users at once on unshaped loopback, where the load generator shares the server's 2 cores (see
ISSUE3_MISSES) and where this machine's noise is largest: the same 5-user drop against the app as
reported took 71.3-76.2 s in three runs on 2026-11-30 and 102.2 s on 2026-11-29. The model says 60.7 s
(-20 % of this recording; -9 % of our legacy's), and a failure rate of 0.24 where legacy-ratelimit lost
0.22-0.31 in three runs (0.305 here) and the app 0.24-0.31."""


def test_our_profiles_agree_with_the_real_app_under_the_same_client() -> None:
    """The recorded matrix: each real-app run beside our server's run of the same scenario under the
    profile that stands for it (legacy-ratelimit for today's app, legacy as reported)."""
    rows = compare_servers(_imagecanvas_rows())
    assert len(rows) == 8
    assert [(r["app"], r["images"], r["users"]) for r in rows if not r["within"]] == []


def test_the_model_predicts_the_real_app_and_our_server_within_its_stated_error(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    rows = compare_matrix(_imagecanvas_rows(), replications=3)
    assert len(rows) == 16
    assert {(r["target"], r["images"], r["users"]) for r in rows if not r["within"]} <= MODEL_MISSES
    one_user = [r for r in rows if r["users"] == 1]
    assert len(one_user) == 12 and all(r["within"] for r in one_user)


def test_our_server_today_agrees_with_the_recorded_real_app(tmp_path, monkeypatch) -> None:
    """Live: the smallest recorded scenario against our server as it is now, held to the real app's run."""
    from loadtests.run import RunOptions, run
    monkeypatch.chdir(ROOT)
    recorded = next(e["summary"] for e in map(orjson.loads, (_imagecanvas_rows() / "matrix.jsonl").read_bytes()
                                               .splitlines()) if e["spec"] == {"strategy": "individual", "images": 50,
                                                                               "users": 1, "app": "today"})
    ours = run(RunOptions(strategy="individual", images=50, profile="legacy-ratelimit", out=tmp_path / "out",
                          quiet=True, max_seconds=300))
    assert within(ours.failure_rate, recorded["failure_rate"], ours.drop_seconds, recorded["drop_seconds"])
    assert count_within(ours.extra["http_by_status"].get("429", 0), recorded["extra"]["http_by_status"]["429"])
    assert ours.extra["frames_sent"]["execute_operation"] == recorded["extra"]["frames_sent"]["execute_operation"]


ENGINES_AGREE = {("as-reported", 50, 20.0)}
ENGINE_ROWS = 10
"""Scenarios (app, images, Mbit/s) where ``individual:fc1316b`` agrees with the real client in Chromium on
every count. With the page's main thread (``bulkbench.strategies.page``) 7 of the 10 drop times are within
15 %; what still misses: the 200-image drops as reported, where the page stays under the cliff its hash
stage makes and ours gets over it (0.47-0.52 lost against 0), the 500-image drops (0.87-0.88 lost against
0.77-0.79), today's limiter refusing our denser thumbnail requests (429s), and the second uploads the
page shares with the first on 50 images (63-100 uploads against 100-110; see examples/validation/README.md)."""


def test_the_protocol_client_against_the_recorded_real_client() -> None:
    """The recorded browser matrix: each browser row beside the protocol-level row of the same scenario."""
    rows = compare_engines(ROOT / "examples" / "validation" / "browser")
    assert len(rows) == ENGINE_ROWS
    assert {(r["app"], r["images"], r["uplink_mbit"]) for r in rows if r["within"]} == ENGINES_AGREE
    for r in rows:  # one run each; where nothing is lost on either side, the operations by type are the page's
        assert r["runs"] == {"browser": 1, "protocol": 1}
        if r["within"] and r["figures"]["failure_rate"]["browser"] == [0.0]:
            assert r["ops_equal"] and r["ops"]["browser"] == r["ops"]["protocol"]


def test_a_scenario_run_several_times_is_held_to_the_real_clients_spread(tmp_path) -> None:
    """The recorded 50-image row (drop 95.2 s in Chromium, 78.7 s protocol-level: a miss) with a second
    browser run of the same input at 72.2 s (as measured on 2026-11-30): the protocol-level drop time is
    inside the real spread, the real client misses its own first run, and the 429s still miss."""
    recorded = (ROOT / "examples/validation/browser/matrix.jsonl").read_bytes().splitlines()
    scenario = [e for e in map(orjson.loads, recorded)
                if (e["spec"]["app"], e["spec"]["images"], e["spec"]["uplink_mbit"]) == ("today", 50, 0.0)]
    browser = next(e for e in scenario if e["spec"].get("engine") == "browser")
    again = {"key": "again", "spec": {**browser["spec"], "repeat": 2},
             "summary": {**browser["summary"], "drop_seconds": 72.2}}
    (tmp_path / "matrix.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in [*scenario, again]))
    [row] = compare_engines(tmp_path)
    assert row["runs"] == {"browser": 2, "protocol": 1}
    drop = row["figures"]["drop_s"]
    assert drop["browser"] == [95.1804, 72.2] and drop["within"] and not drop["browser_self"]
    assert not row["figures"]["http_429"]["within"] and not row["within"]
    assert not row["browser_agrees_with_itself"]
    # one run: the plain tolerances
    assert within_runs("drop_s", 78.7, [95.2]) is within(0.0, 0.0, 78.7, 95.2) is False
    assert within_runs("http_429", 23, [0]) is count_within(23, 0) is False
    assert within_runs("failure_rate", 0.049, [0.0, 0.0]) and not within_runs("failure_rate", 0.051, [0.0])


ALL_FIGURES = {"failure_rate", "drop_s", "http_429", "upload_attempts"}
ENGINES_SPREAD_WITHIN = {
    ("today", 0.0): ALL_FIGURES - {"http_429"},
    ("as-reported", 0.0): ALL_FIGURES,
    ("today", 20.0): ALL_FIGURES,
    ("as-reported", 20.0): ALL_FIGURES}
"""``examples/validation/browser-spread``: the figures where ``individual:fc1316b``'s mean is inside the real
client's three runs (widened by the stated error). Its protocol-level runs ran with the folder's
``strategies.toml`` (``bulkbench calibrate --page`` of its browser runs): the page's costs at this machine's
speed (x 0.83) and its layout race (the median 5.5 of 50 files without a node: 5). With the shipped set
(costs of the first machine, no race) no scenario agreed; with the costs alone, one (today, 20 Mbit/s).
Today's 429s on loopback still miss: the page was refused 153-370 times, ours 26-131."""


def test_the_protocol_client_against_the_real_clients_spread() -> None:
    """Three browser runs and three protocol-level runs of each 50-image scenario, same input."""
    rows = compare_engines(ROOT / "examples" / "validation" / "browser-spread")
    assert all(r["runs"] == {"browser": 3, "protocol": 3} and r["images"] == 50 for r in rows)
    assert {(r["app"], r["uplink_mbit"]): {name for name, f in r["figures"].items() if f["within"]}
            for r in rows} == ENGINES_SPREAD_WITHIN
    assert not any(r["browser_agrees_with_itself"] for r in rows)  # the real client misses its own runs
    for r in rows:  # every image the page lost is one its layout made no node for
        for rate, ops in zip(r["figures"]["failure_rate"]["browser"], r["ops"]["browser"], strict=True):
            assert round(rate * r["images"]) == r["images"] - ops["node_create"]
        assert r["figures"]["failure_rate"]["protocol"] == [0.1, 0.1, 0.1]  # 5 of 50 laid out without a node
        for ops in r["ops"]["protocol"]:  # as the page's: a node per file laid out, a completion per node and file
            assert ops == {"node_create": 45, "image_upload_complete": 45 + 50}


MODEL_BROWSER_FOLDER_WITHIN = {
    ("browser", "imagecanvas", 200, 20.0), ("browser", "imagecanvas-as-reported", 50, 20.0),
    *(("locust", app, 50, mbit) for app in ("imagecanvas", "imagecanvas-as-reported") for mbit in (0.0, 20.0)),
    ("locust", "imagecanvas-as-reported", 200, 20.0), ("locust", "imagecanvas-as-reported", 500, 0.0)}
"""Rows of ``examples/validation/browser`` the model (``individual:fc1316b``, the target's
``app.client_strategy``, cut where the real run was cut) predicts on every count: 2 of the 10 browser rows
(4 on failure rate and drop time alone), 6 of the 10 protocol-level rows (9 on failure rate and drop time).
The browser rows miss for the reasons ``ENGINES_AGREE`` names: the model runs the same strategy as the
protocol-level client, so what #12 fits moves both."""


def test_the_model_against_the_real_client_and_its_protocol_level_twin() -> None:
    rows = compare_matrix(ROOT / "examples" / "validation" / "browser", replications=3)
    assert len(rows) == 2 * ENGINE_ROWS and {r["strategy"] for r in rows} == {"individual:fc1316b"}
    assert {(r["engine"], r["target"], r["images"], r["uplink_mbit"]) for r in rows
            if r["within"]} == MODEL_BROWSER_FOLDER_WITHIN
    # a row cut at 15 minutes is cut there in the model too (uncut, its 500 images as reported take 6,605 s)
    assert max(r["sim_drop_s"] for r in rows) <= max(900.0, *(r["real_drop_s"] for r in rows)) + 1e-6


PIPELINED_MISSES = {("legacy", 200, 1, 100.0), ("legacy-ratelimit", 1200, 1, 100.0)}
"""Where the cores bind, the machine's noise: the same 200-image legacy drop took 16.5-22.6 s over six
real runs (its server CPU 36-47 CPU-s); the model's 17.4 s is inside that spread, 23 % under the row
recorded here (see the note of issue 14). The rate-limited 1200-image drop took 113.5 s and 135.4 s in
two real runs on 2026-11-30 whose uploads ran alike (the second is recorded): where the limiter's 10 s
block falls among uploads the cores slow down moves it. The model's 112.2 s is at the first; its
requests (3750 against 3746) and 429s (150 against 146) are the second's."""


def test_the_model_predicts_the_recorded_pipelined_runs_within_its_stated_error() -> None:
    rows = compare_matrix(ROOT / "examples" / "validation" / "pipelined", replications=1)
    assert len(rows) == 16 and {r["strategy"] for r in rows} == {"pipelined"}
    missed = {(r["profile"], r["images"], r["users"], r["uplink_mbit"]) for r in rows if not r["within"]}
    assert missed <= PIPELINED_MISSES, missed
    for r in rows:  # nothing lost, and no more than the bound's few percent of messages apart
        assert r["real_failure_rate"] == 0 and r["sim_failure_rate"] == 0
        assert abs(r["sim_ws_sent"] - r["real_ws_sent"]) <= 0.15 * r["real_ws_sent"] + 2


def test_the_models_spread_covers_the_real_runs_at_the_cliff() -> None:
    """Five real runs of each scenario (``examples/validation/cliff``, seeds 1-5). At 10 Mbit/s
    ``individual`` loses 11.5-32 %, and its op-ack p50 (130-200 ms) rises with the loss: the standing
    queue the uploads keep in the shaped link differs from run to run. The model draws it per run
    (``standing_spread``), so one real run anywhere in that spread is inside its interval; at 20 Mbit/s
    nothing is lost, real or modelled."""
    rows = compare_spread(ROOT / "examples" / "validation" / "cliff", replications=10)
    assert {(r["uplink_mbit"], len(r["real_failure_rates"])) for r in rows} == {(10.0, 5), (20.0, 5)}
    for r in rows:
        assert r["inside"] == 5 and r["mean_within"], r
    cliff = next(r for r in rows if r["uplink_mbit"] == 10.0)
    low, high = cliff["sim_pi95"]
    assert high - low >= 0.15, "a spread as wide as the real runs', not a narrow interval around one value"


def test_the_models_spread_against_the_real_clients_repeats() -> None:
    """Rows that differ only in ``repeat`` (same seed, same images) are one scenario's runs; a browser row
    is modelled with its target's client stand-in, under the folder's layer. Its layout race is one value
    (5 of 50 files without a node), so the model's interval is a point: it holds every protocol-level run
    and the one browser run that lost 5. Under ``strategies-drawn.toml`` each drop draws one of the
    page's own race times: the interval holds every run, browser and protocol-level."""
    folder = ROOT / "examples" / "validation" / "browser-spread"
    rows = compare_spread(folder, replications=3)
    assert len(rows) == 8 and all(len(r["real_failure_rates"]) == 3 for r in rows)
    assert {r["strategy"] for r in rows} == {"individual:fc1316b"}
    for r in rows:
        assert r["sim_pi95"] == pytest.approx([0.1, 0.1])
        assert r["inside"] == (3 if r["engine"] == "locust" else sum(rate == 0.1 for rate in r["real_failure_rates"]))
    drawn = compare_spread(folder, replications=10, layer=str(folder / "strategies-drawn.toml"))
    assert sum(r["inside"] for r in drawn) == 24 > sum(r["inside"] for r in rows)
    for r in drawn:
        low, high = r["sim_pi95"]
        assert low == 0.0 and 0.25 <= high <= 0.4 and len(set(r["sim_failure_rates"])) >= 4  # drawn, not one value
    assert sum(r["mean_within"] for r in drawn) == 6


def test_the_page_speed_of_50_images_does_not_carry_to_200_and_the_fitted_feedback_does() -> None:
    """Held out from the 50-image calibration (``examples/validation/browser-200``): today's page, 200
    images at 20 Mbit/s, three times on the machine of ``browser-spread``: all 200 laid out, none lost,
    342-435 s (the first machine's: 719-752 s, caught in the frame feedback its hashing feeds). Under
    the 50-image layer the model's drop is about 1.5x theirs (the protocol-level client's was 604 s);
    under the folder's layer, whose feedback was fitted to these runs, it meets their median."""
    folder = ROOT / "examples" / "validation" / "browser-200"
    browser = [e["summary"] for e in read_matrix(folder) if e["spec"].get("engine") == "browser"]
    assert len(browser) == 3 and all(r["failure_rate"] == 0.0 and r["drop_seconds"] < 450 for r in browser)
    median = statistics.median(r["drop_seconds"] for r in browser)
    spec = dict(strategy="individual:fc1316b", images=200, profile="legacy-ratelimit", uplink_mbit=20.0)
    speed_only = run_sim(SimOptions(**spec, strategy_layer=str(folder.parent / "browser-spread" / "strategies.toml")))
    fitted = run_sim(SimOptions(**spec, strategy_layer=str(folder / "strategies.toml")))
    assert speed_only.drop_seconds > 1.3 * median
    assert fitted.drop_seconds == pytest.approx(median, rel=0.05)
    # the protocol-level client under the fitted layer, against the same app: every figure but the 429s
    [row] = compare_engines(folder)
    assert row["runs"] == {"browser": 3, "protocol": 1} and row["ops_equal"]
    assert {name: f["within"] for name, f in row["figures"].items()} == {
        "failure_rate": True, "drop_s": True, "http_429": False, "upload_attempts": True}
    assert row["figures"]["http_429"]["protocol_mean"] > max(row["figures"]["http_429"]["browser"])


def test_the_fitted_feedback_does_not_carry_to_another_server_or_uplink() -> None:
    """Held out from ``browser-200``'s feedback fit (``examples/validation/browser-200-heldout``, same machine,
    same layer): the page without today's limiter at 20 Mbit/s took 788.7 s and lost nothing (the first
    machine's 0.47-0.52 "lost" were images unfinished at the 15-minute cap); today's page on loopback took
    315.9 s. The protocol-level client, and the model with it, meet neither: -44 % and +35 %. The feedback
    is the server's and the uplink's as well as the machine's (the page asks for 717 thumbnails under
    today's limiter on loopback, 1200 without it; ours asks for 1200 either way)."""
    folder = ROOT / "examples" / "validation" / "browser-200-heldout"
    rows = {(r["app"], r["uplink_mbit"]): r for r in compare_engines(folder)}
    assert set(rows) == {("as-reported", 20.0), ("today", 0.0)}
    assert not any(r["within"] for r in rows.values())
    assert rows[("as-reported", 20.0)]["drop_error"] < -0.35 and rows[("today", 0.0)]["drop_error"] > 0.25
    assert rows[("as-reported", 20.0)]["figures"]["failure_rate"]["browser"] == [0.0]
    model = compare_matrix(folder, replications=1)
    ours = [r for r in model if r["engine"] == "locust"]
    assert len(ours) == 2 and all(abs(r["drop_error"]) <= 0.15 for r in ours)  # the model follows our client


def test_at_500_images_the_model_knows_the_apps_file_sweep_and_the_page_dies_too_late() -> None:
    """``examples/validation/browser-500`` (held out at 2.5x the feedback fit's size): today's page, 500 images at
    20 Mbit/s, cut at 3600 s, lost 414 (its heartbeat closed its socket at 796 s: 217 nodes ever sent). Our
    client under the same layer ran 2652.8 s and lost 319, every frame acked: the app's file sweep, 30 min
    after its start, deleted the uploads whose ``image_upload_complete`` came later (``legacy``'s
    ``[file_sweep]`` and ``[linking]``). The model, with them, meets our client's row. Its page has the
    heartbeat now, but its canvas load grows slower than the real page's at 500: where it drops its socket
    (18 % of seeds) it does so after 1700 s, not at 796 s, and so it misses the page's row."""
    folder = ROOT / "examples" / "validation" / "browser-500"
    rows = {r["engine"]: r for r in compare_matrix(folder, replications=1)}
    assert set(rows) == {"browser", "locust"}
    assert rows["browser"]["real_failure_rate"] > 0.8 and rows["locust"]["real_failure_rate"] > 0.6
    assert rows["locust"]["within"] and abs(rows["locust"]["sim_failure_rate"] - 0.638) < 0.05
    assert abs(rows["locust"]["drop_error"]) < 0.05
    assert not rows["browser"]["within"] and rows["browser"]["sim_failure_rate"] < 0.75
    browser = next(e["summary"] for e in read_matrix(folder) if e["spec"].get("engine") == "browser")
    assert browser["extra"]["capped"] and browser["extra"]["ops_by_type"]["node_create"] == 217
    (again,) = (orjson.loads(line) for line in (folder / "rerun-sweep.jsonl").read_text().splitlines())
    summary = again["summary"]  # our client once more, the run now counting what the app's sweep deleted
    assert summary["failures_by_cause"] == {"not_on_server": summary["extra"]["uploads_swept"]}
    assert abs(summary["failure_rate"] - rows["locust"]["sim_failure_rate"]) < 0.05


def test_the_page_without_the_limiter_reconnects_at_200_images_and_never_joins_its_canvas_again() -> None:
    """``examples/validation/browser-heartbeat``: the page as reported, 200 images at 20 Mbit/s, main thread busy
    94-100 % from the fifth minute. Its heartbeat found a pong over 30 s late at 582 s and reconnected (three
    ``session_init``) but never sent ``join_canvas`` again, so the app refused every later operation ("Not
    authenticated"): the images not complete by then can never be, whatever the cap (recorded before the
    engine called them ``rejected``)."""
    folder = ROOT / "examples" / "validation" / "browser-heartbeat"
    (entry,) = (e for e in read_matrix(folder) if e["spec"]["app"] == "as-reported")
    extra = entry["summary"]["extra"]
    assert extra["frames_sent"]["session_init"] == 3 and extra["frames_sent"]["join_canvas"] == 1
    assert extra["frames_received"]["operation_rejected"] >= 30
    late = [ms for at, ms, _tasks, _uploaded in extra["busy_series"] if at >= 300]  # 10 s buckets
    assert entry["summary"]["images_failed"] > 100 and sum(late) > 0.9 * 10_000 * len(late)


def test_on_a_slower_day_the_speed_of_50_images_predicts_that_half_of_200_are_lost_at_the_cap() -> None:
    """``examples/validation/browser-slower``: browser-200's scenario (today's page, 200 images at 20 Mbit/s) on a
    day the page ran 1.418x as long per node as where ``individual:fc1316b`` was fitted (browser-200's day: 0.830).
    The layer beside it is ``calibrate --page`` of the three 50-image drops alone; the 200-image drops are held
    out. They settled in 342-435 s on browser-200's day; here all three were cut at 900 s with about half lost
    (one page's heartbeat handled an answer 39 s late and reconnected without joining its canvas again, its later
    operations refused; the others' images were still on their way), and so was the protocol-level client
    under the layer. The model under the layer, cut at the cap, meets the protocol-level row on every count
    and loses as much as the pages within 0.11; one seed in ten at a time, it falls into the feedback in 6. The
    page as reported, run after the model's prediction was written down (0.698 at the cap), lost 0.635: a miss
    by 0.013 beyond the stated error, inside the spread of its seeds."""
    folder = ROOT / "examples" / "validation" / "browser-slower"
    entries = read_matrix(folder)
    browser = [e["summary"] for e in entries if e["spec"].get("engine") == "browser" and e["spec"]["app"] == "today"]
    calibration = calibrate_page([folder], [ROOT / "examples" / "validation" / "browser"])
    assert calibration.speed == pytest.approx(1.418, abs=0.001)  # only the uncapped 50-image drops count
    assert len(calibration.here_s_per_node) == 3 and calibration.left_out == {"cut at their cap": 4}
    layer = strategy_params("individual:fc1316b", layer=folder / "strategies.toml")
    assert layer.page_s_per_uploaded_image == calibration.scaled["page_s_per_uploaded_image"]
    held_out = [r for r in browser if r["images"] == 200]
    assert len(held_out) == 3 and all(r["extra"]["capped"] and 0.45 <= r["failure_rate"] <= 0.6 for r in held_out)
    reconnected, *stayed = sorted(held_out, key=lambda r: -r["extra"]["sockets_reopened"])
    assert reconnected["extra"]["sockets_reopened"] >= 1 and reconnected["failures_by_cause"]["rejected"] > 0
    assert reconnected["extra"]["heartbeat"]["late_max_s"] > 30
    for run in stayed:  # its answers never over 30 s late at a check: the socket stayed, the images were on their way
        assert run["extra"]["sockets_reopened"] == 0 and run["extra"]["heartbeat"]["late_max_s"] < 30
        assert run["failures_by_cause"]["unfinished"] > 0.85 * run["images_failed"]
    rows = [r for r in compare_matrix(folder, replications=5) if r["images"] == 200]
    (ours,) = (r for r in rows if r["engine"] == "locust")
    assert ours["real_failure_rate"] > 0.6 and ours["within"]
    assert all(r["sim_failure_rate"] > 0.55 and abs(r["sim_failure_rate"] - r["real_failure_rate"]) <= 0.11
               for r in rows)
    # predicted before it ran: the page as reported, the same day and layer, loses 0.698 at the cap; it lost 0.635
    (reported,) = (r for r in rows if r["target"] == "imagecanvas-as-reported")
    assert reported["real_failure_rate"] == 0.635 and 0.05 < reported["sim_failure_rate"] - 0.635 <= 0.08
    # a seed at a time (the page's layout race drawn), cut where the real runs were: some fall into the feedback
    spread = {(r["profile"], r["engine"], r["images"]): r for r in compare_spread(folder, replications=3)}
    today = spread[("legacy-ratelimit", "browser", 200)]
    assert max(today["sim_failure_rates"]) > 0.45 and today["inside"] == 3


def test_the_pages_heartbeat_is_fitted_on_its_pings_and_drops_the_socket_where_the_real_pages_did() -> None:
    """``bulkbench calibrate --heartbeat examples/validation/browser-slower``: each recorded ping's lateness over
    the model's canvas load at that moment (296 pings of four 200-image pages), a gamma; the set holds what it
    fits. With it, the stand-in page drops its socket where real pages did and not where they did not:
    - browser-200's day (three pages settled in 342-435 s, nothing refused): in no seed;
    - browser-slower's day (one page of three reconnected, at 777 s): in some seeds, between 400 and 900 s.
    40 seeds a scenario (``first_reconnections``): 0/40 on browser-200's day; 16/40 today's page and 20/40
    the page as reported on browser-slower's day; 7/40 browser-heartbeat's page as reported (real: at 582 s,
    model 446-714 s); at 500 images 7/40, all after 1700 s (real: 796 s)."""
    from sim.heartbeat_fit import Recorded, first_reconnections, fit_waits, recorded

    slower = ROOT / "examples" / "validation" / "browser-slower"
    fit = fit_waits(recorded([slower]))
    params = strategy_params("individual:fc1316b")
    assert (fit.scale, fit.shape) == (params.heartbeat_wait_scale, params.heartbeat_wait_shape)
    assert fit.pings > 250 and fit.ratio_p95 > 4 * fit.ratio_p50  # a long tail: a stall now and then

    def first_row(folder: Path, key: str) -> Recorded:
        (summary,) = (e["summary"] for e in read_matrix(folder) if e["key"] == key)
        return Recorded(folder, summary, [], None)

    today = "app=today-engine=browser-images=200-repeat=1-uplink_mbit=20.0"
    settled = first_row(ROOT / "examples" / "validation" / "browser-200", today)
    assert settled.summary["failure_rate"] == 0.0
    assert first_reconnections(settled, fit.scale, fit.shape, seeds=10) == [None] * 10
    dying = [at for at in first_reconnections(first_row(slower, today), fit.scale, fit.shape, seeds=10) if at]
    assert 1 <= len(dying) <= 6 and all(400 < at < 900 for at in dying)


def test_on_a_third_day_the_50_image_speed_misses_the_cliff_and_the_heartbeat_waits_hold() -> None:
    """``examples/validation/browser-day3``: browser-slower's matrix on a third day, the 50-image drops first and
    the model's prediction for the 200-image drops committed before they ran (d2e4061). The page ran 1.254x as
    long per node as where the set was fitted; the model under that layer said 0.055 lost at the median for
    today's page, and every page lost over 0.6, each dropping its socket (at 669-864 s). Which side of the cliff
    a day's page falls is not what its 50-image speed says (0.830x: none lost; 1.418x: 0.505-0.540; 1.254x:
    0.625-0.695). The heartbeat's waits fitted on this day's pings alone are browser-slower's within 10 %."""
    from sim.heartbeat_fit import fit_waits, recorded

    folder = ROOT / "examples" / "validation" / "browser-day3"
    calibration = calibrate_page([folder], [ROOT / "examples" / "validation" / "browser"])
    assert calibration.speed == pytest.approx(1.254, abs=0.001) and calibration.left_out == {"cut at their cap": 4}
    pages = [e["summary"] for e in read_matrix(folder) if e["spec"].get("engine") == "browser"
             and e["spec"]["images"] == 200 and e["spec"]["app"] == "today"]
    assert len(pages) == 3 and all(p["failure_rate"] > 0.6 and p["extra"]["sockets_reopened"] >= 1
                                   and p["failures_by_cause"]["rejected"] > 0 for p in pages)
    rows = [r for r in compare_matrix(folder, replications=3) if r["images"] == 200]
    today = [r for r in rows if r["target"] == "imagecanvas"]
    assert all(r["sim_failure_rate"] < 0.3 and not r["within"] for r in today)  # the miss, as predicted
    (reported,) = (r for r in rows if r["target"] == "imagecanvas-as-reported")
    assert reported["within"] and reported["real_reopened"] == 0
    here, slower = fit_waits(recorded([folder])), strategy_params("individual:fc1316b")
    assert here.scale == pytest.approx(slower.heartbeat_wait_scale, rel=0.1)
    assert here.shape == pytest.approx(slower.heartbeat_wait_shape, rel=0.1)


def _lost_by_the_cap(layer: Path, profile: str, seeds: int = 40) -> list[float]:
    """The model's losses for a 200-image page at 20 Mbit/s cut at 900 s, seeds 1..``seeds``, under ``layer``."""
    from sim.page_feedback import model_failure_rate
    from sim.pool import run_each
    return run_each(model_failure_rate, [
        SimOptions(strategy="individual:fc1316b", strategy_layer=str(layer), images=200, profile=profile, seed=seed,
                   uplink_mbit=20.0, horizon_s=900.0) for seed in range(1, seeds + 1)])


def test_on_one_boot_the_feedback_fitted_on_four_capped_pages_meets_the_boots_other_pages() -> None:
    """``examples/validation/browser-harness``: four 200-image drops of today's page on the boot of browser-slower
    and browser-day3, one of them with the harness browser-200 was recorded with (de90050, where that page lost
    nothing): every page on this boot lost 0.505-0.735, whichever harness, so the harness is not what put
    browser-200's page on the other side. Fitted on these four by their loss at the cap (``calibrate --page
    --feedback-from``, the layer beside them), the model's mean over 40 seeds is inside the 95 % interval of the
    mean of the boot's six held-out pages (browser-day3's, browser-slower's); the speed alone (browser-day3's
    layer) put it far below. One run is not predicted: the model's seeds split between settling and dying."""
    from sim.run import t95

    validation = ROOT / "examples" / "validation"
    fitted = read_matrix(validation / "browser-harness")
    assert sorted(e["summary"]["extra"]["harness"] for e in fitted) == ["3d4782a", "54e165e", "54e165e", "de90050"]
    held_out = [e["summary"]["failure_rate"] for folder in ("browser-day3", "browser-slower")
                for e in read_matrix(validation / folder) if e["spec"].get("engine") == "browser"
                and e["spec"]["images"] == 200 and e["spec"]["app"] == "today"]
    pages = held_out + [e["summary"]["failure_rate"] for e in fitted]
    assert len(pages) == 10 and all(0.5 <= lost <= 0.74 for lost in pages)
    mean, half = statistics.fmean(held_out), t95(len(held_out) - 1) * statistics.stdev(held_out) / len(held_out) ** 0.5
    boot = statistics.fmean(_lost_by_the_cap(validation / "browser-harness" / "strategies.toml", "legacy-ratelimit"))
    speed_only = statistics.fmean(_lost_by_the_cap(validation / "browser-day3" / "strategies.toml", "legacy-ratelimit"))
    assert abs(boot - mean) <= half < 0.1
    assert speed_only < mean - half


def test_a_recordings_course_is_kept_beside_its_rows_and_set_beside_the_models(monkeypatch, capsys, tmp_path) -> None:
    """The loss at the cap can agree while the course does not: the browser rows' step times (``course.jsonl``,
    kept from their drops) agree with their own summaries, and ``validate --course`` counts the model's runs the
    same way, beside them."""
    monkeypatch.chdir(ROOT)
    folder = ROOT / "examples" / "validation" / "browser-harness"
    summaries = {entry["key"]: entry["summary"] for entry in read_matrix(folder)}
    pages = [orjson.loads(line) for line in (folder / COURSE_FILE).read_text().splitlines()]
    assert sorted(page["key"] for page in pages) == sorted(summaries)  # each page of the recording, once
    for page in pages:
        summary, steps = summaries[page["key"]], page["steps"]
        assert len(steps["node_sent_at"]) == summary["extra"]["ops_by_type"]["node_create"]
        assert len(steps["complete_acked_at"]) <= len(steps["complete_sent_at"]) <= len(steps["upload_done_at"])
        assert summary["images_ok"] <= len(steps["complete_sent_at"])  # (an ack a dropped socket lost: still ok)
        assert all(times == sorted(times) for times in steps.values())
    [row] = compare_course(folder, replications=2, processes=1)
    assert row["real_pages"] == 4 and row["sim_runs"] == 2 and row["cut_s"] == pytest.approx(894, abs=3)
    for step, counts in row["steps"].items():
        for page in counts["real"] + counts["sim"]:
            assert page == sorted(page) and page[-1] <= 200, step
    options = SimOptions(strategy="individual:fc1316b", strategy_layer=str(folder / "strategies.toml"), images=50,
                         profile="legacy-ratelimit", uplink_mbit=20.0, queue_ms=200.0, seed=3, replications=1)
    model, ran = course_of(options), run_sim(options)  # the same run: each image acked is one the truth holds
    assert len(model["complete_acked_at"]) == ran.images_ok < len(model["complete_sent_at"]) == 50
    from bulkbench.cli import main
    written = tmp_path / "course.json"
    assert main(["validate", str(folder), "--course", "--replications", "2", "--processes", "1",
                 "--out", str(written)]) == 0
    shown = capsys.readouterr().out
    assert "complete sent real" in shown and "complete sent model" in shown and "880 s" in shown
    assert orjson.loads(written.read_bytes()) == [row]  # --out: the rows shown, whichever mode
    assert main(["validate", str(ROOT / "examples" / "validation" / "issue4"), "--course"]) == 2  # nothing kept
    assert "no course.jsonl" in capsys.readouterr().err


COURSE_SLACK = 10
"""Images a model's count may lie outside the real pages' lowest-highest at one time (a page's own spread at
120-600 s is 3-26 images)."""


def test_the_pages_thread_as_measured_gives_its_course_where_the_fitted_feedback_gives_only_its_end(
        monkeypatch) -> None:
    """``browser-harness/thread.toml``: the page's thread as its busy series measured it (every task one at a
    time, 0.2 s each and longer with time, nothing per upload) puts the model's uploads and completions inside the
    four pages' course from 120 to 600 s, and its loss at the cap within 0.05 of the boot's six held-out pages and
    alike for both versions, as the real pages were; the feedback fitted to the loss alone (``strategies.toml``)
    completes nothing in the first 200 s. Its node_creates do not follow the pages' yet (14-90 by the cap's
    times against 39-190): the next step."""
    monkeypatch.chdir(ROOT)
    folder = ROOT / "examples" / "validation" / "browser-harness"
    at = (120.0, 200.0, 300.0, 450.0, 600.0)

    def outside(layer: Path, step: str) -> list[int]:
        [row] = compare_course(folder, replications=2, layer=str(layer), processes=1, at_s=at)
        real = list(zip(*row["steps"][step]["real"], strict=True))
        return [max(low - n, n - high, 0) for run in row["steps"][step]["sim"]
                for n, low, high in zip(run, map(min, real), map(max, real), strict=True)]

    thread = folder / "thread.toml"
    assert max(outside(thread, "upload_done_at")) <= COURSE_SLACK
    assert max(outside(thread, "complete_sent_at")) <= COURSE_SLACK
    [fitted] = compare_course(folder, replications=2, processes=1, at_s=at)
    real_120 = min(page[0] for page in fitted["steps"]["complete_sent_at"]["real"])
    assert all(run[1] < real_120 for run in fitted["steps"]["complete_sent_at"]["sim"])  # at 200 s: < any page at 120
    held_out = [e["summary"]["failure_rate"] for name in ("browser-day3", "browser-slower")
                for e in read_matrix(folder.parent / name) if e["spec"].get("engine") == "browser"
                and e["spec"]["images"] == 200 and e["spec"]["app"] == "today"]
    today = _lost_by_the_cap(thread, "legacy-ratelimit", seeds=3)
    assert abs(statistics.fmean(today) - statistics.fmean(held_out)) <= 0.05
    assert _lost_by_the_cap(thread, "legacy", seeds=3) == pytest.approx(today, abs=0.02)  # as reported: alike


def test_the_pages_thread_fitted_at_200_images_gives_the_course_of_a_500_image_page_on_its_boot(monkeypatch) -> None:
    """Held out: ``browser-500-boot``, a 500-image page on the boot of ``browser-harness`` (0.802 lost at its
    1482 s cap). Under ``thread.toml`` (its one fitted value from the 200-image pages' loss) the model's uploads
    and completions from 880 s to the cap are within ``COURSE_SLACK`` of the page's (at 450-600 s its completions
    are 11-13 ahead); under the loss-fitted feedback (the folder's own layer) the model has completed 35 or more
    fewer images by the cap (39-48 fewer)."""
    monkeypatch.chdir(ROOT)
    folder = ROOT / "examples" / "validation" / "browser-500-boot"
    at = (880.0, 1200.0, 1450.0)
    [thread] = compare_course(folder, replications=2, layer=str(folder.parent / "browser-harness" / "thread.toml"),
                              processes=1, at_s=at)
    assert thread["real_pages"] == 1 and thread["cut_s"] == pytest.approx(1482, abs=1)
    for step in ("upload_done_at", "complete_sent_at"):
        [real] = thread["steps"][step]["real"]
        assert all(abs(n - r) <= COURSE_SLACK for run in thread["steps"][step]["sim"]
                   for n, r in zip(run, real, strict=True)), step
    [fitted] = compare_course(folder, replications=2, processes=1, at_s=at)
    [real] = fitted["steps"]["complete_sent_at"]["real"]
    assert all(run[-1] <= real[-1] - 35 for run in fitted["steps"]["complete_sent_at"]["sim"])


def test_one_boots_pages_beside_our_client_under_the_measured_thread(monkeypatch) -> None:
    """``examples/validation/browser-boot``: every browser row of boot e7a76c59 (21 pages at 20 Mbit/s: 6 at 50
    images, 11 of today's and 3 as reported at 200, 1 at 500; 1 of today's at 200 on loopback) gathered, and the
    protocol-level client under ``browser-harness/thread.toml`` against the same app (#12's table on one boot).
    At 200 images today's page and ours agree on every figure (ours lost 0.560 against 0.505-0.735, no 429 against
    0-127, 178 uploads against 161-219), and at 500 cut at 1500 s (0.822 against the one page's 0.802); the page as
    reported lost more (0.615-0.810) than ours, which loses alike under both versions, as the model says it would
    (within 2 images of our client's course at every time to 880 s); at 50 images the serial thread fitted at 200
    is too slow (245 s against 58-93 s): it is a form for a page busy all the time, which a 50-image page is not;
    on loopback the page met today's limiter (156 429s, 0.620 lost) and ours, at the thread's pace, did not (0,
    0.560)."""
    monkeypatch.chdir(ROOT)
    folder = ROOT / "examples" / "validation" / "browser-boot"
    rows = {(r["app"], r["images"], r["uplink_mbit"]): r for r in compare_engines(folder)}
    assert {key: r["runs"]["browser"] for key, r in rows.items()} == {
        ("today", 50, 20.0): 6, ("today", 200, 20.0): 11, ("as-reported", 200, 20.0): 3, ("today", 500, 20.0): 1,
        ("today", 200, 0.0): 1}
    assert rows[("today", 200, 20.0)]["within"] and rows[("today", 500, 20.0)]["within"]
    assert [name for name, f in rows[("as-reported", 200, 20.0)]["figures"].items() if not f["within"]] == \
        ["failure_rate"]
    loopback = rows[("today", 200, 0.0)]["figures"]  # the page met today's limiter on loopback, ours did not
    assert [name for name, f in loopback.items() if not f["within"]] == ["failure_rate", "http_429", "upload_attempts"]
    assert loopback["http_429"]["protocol_mean"] == 0 < min(loopback["http_429"]["browser"])
    fifty = rows[("today", 50, 20.0)]["figures"]["drop_s"]
    assert fifty["protocol_mean"] > 2 * max(fifty["browser"])
    ours = {r["app"]: r for r in compare_course(folder, replications=2, processes=1, at_s=(60.0, 200.0, 450.0, 880.0))
            if r["engine"] == "protocol-level" and r["images"] == 200 and r["uplink_mbit"] == 20.0}
    assert set(ours) == {"today", "as-reported"}
    for row in ours.values():
        for step, counts in row["steps"].items():
            [real] = counts["real"]
            assert all(abs(n - r) <= 2 for run in counts["sim"] for n, r in zip(run, real, strict=True)), step


def test_the_boots_recording_holds_its_sources_browser_rows_as_they_were(tmp_path) -> None:
    """``browser-boot``'s gathered rows are its five sources' browser rows, unchanged but for their repeat number
    and where they came from, with their course (``python -m benchmarks.validation.gather``, run as a user would)."""
    validation = ROOT / "examples" / "validation"
    sources = ["browser-day3", "browser-slower", "browser-harness", "browser-heartbeat", "browser-500-boot"]
    subprocess.run([sys.executable, "-m", "benchmarks.validation.gather", str(tmp_path), "--recordings",
                    *(str(validation / name) for name in sources)], check=True, cwd=ROOT, capture_output=True)
    gathered, recorded = read_matrix(tmp_path), read_matrix(validation / "browser-boot")
    assert len(gathered) == 20 and gathered == recorded[:20]
    originals = {(name, e["key"]): e for name in sources for e in read_matrix(validation / name)}
    for entry in gathered:
        source, was = entry["summary"]["extra"].pop("gathered_from").split()
        original = originals[(source, was)]
        assert entry["summary"] == original["summary"] and entry["spec"]["repeat"] >= original["spec"].get("repeat", 1)
    lines = (tmp_path / COURSE_FILE).read_text().splitlines()
    assert lines and lines == (validation / "browser-boot" / COURSE_FILE).read_text().splitlines()[:len(lines)]
