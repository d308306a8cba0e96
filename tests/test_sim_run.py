"""``bulkbench sim``: the schema, bit-for-bit determinism, confidence intervals, and its command line."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bulkbench.profile import load_profile
from sim.accuracy import DROP_SECONDS_TOLERANCE
from sim.run import SimOptions, run_sim
from tests.test_real_runs import SUMMARY_FIELDS


def test_same_seed_same_numbers_bit_for_bit(tmp_path) -> None:
    options = dict(strategy="individual", images=120, users=2, uplink_mbit=10.0, replications=3)
    a = run_sim(SimOptions(**options, out=tmp_path / "a"))
    b = run_sim(SimOptions(**options, out=tmp_path / "b"))
    assert (tmp_path / "a" / "summary.json").read_bytes() == (tmp_path / "b" / "summary.json").read_bytes()
    assert (tmp_path / "a" / "images.jsonl").read_bytes() == (tmp_path / "b" / "images.jsonl").read_bytes()
    assert a.to_json() == b.to_json()


def test_another_seed_other_images(tmp_path) -> None:
    a = run_sim(SimOptions(images=50, uplink_mbit=10.0, seed=1))
    b = run_sim(SimOptions(images=50, uplink_mbit=10.0, seed=2))
    assert a.bytes_uploaded != b.bytes_uploaded


def test_the_summary_has_the_schema_and_intervals(tmp_path) -> None:
    run_sim(SimOptions(strategy="individual", images=400, uplink_mbit=10.0, replications=4, out=tmp_path / "s"))
    record = json.loads((tmp_path / "s" / "summary.json").read_text())[0]
    assert set(record) >= SUMMARY_FIELDS and record["engine"] == "sim"
    low, high = record["extra"]["ci95"]["drop_seconds"]
    assert high - low > 0.0  # four replications (their own seeds: service times vary) do not end alike
    assert record["failures_by_cause"].get("orphaned", 0) > 0  # 400 images on 10 Mbit/s: the tail is swept
    header = (tmp_path / "s" / "server_metrics.csv").read_text().splitlines()[0]
    assert "queue_depth.ops" in header and "busy_workers.thumbnail" in header


def test_the_command_line_runs_the_model(tmp_path) -> None:
    result = subprocess.run([sys.executable, "-m", "bulkbench.cli", "sim", "--strategy", "batched", "--images", "50",
                             "--replications", "2", "--out", str(tmp_path / "cli")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "sim    batched" in result.stdout
    assert json.loads((tmp_path / "cli" / "summary.json").read_text())[0]["images_failed"] == 0


def test_an_unknown_profile_is_a_usage_error(tmp_path) -> None:
    result = subprocess.run([sys.executable, "-m", "bulkbench.cli", "sim", "--profile", "nope"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no profile named 'nope'" in result.stderr


def test_the_model_refuses_uploads_over_max_uploads_in_flight_as_the_server_does() -> None:
    """Three users with six uploads each against a limit of four: some are refused 503, batched waits and retries."""
    base = load_profile("optimized")
    tight = dataclasses.replace(base, limits=dataclasses.replace(base.limits, max_uploads_in_flight=4))
    options = SimOptions(strategy="batched", profile="optimized", images=30, users=3, uplink_mbit=0.0)
    loose_run, tight_run = run_sim(options), run_sim(options, profile_override=tight)
    assert tight_run.images_ok == loose_run.images_ok == 90  # nothing lost: Retry-After honoured
    assert tight_run.http_requests > loose_run.http_requests  # the refused uploads were sent again


def test_receive_cpu_lengthens_each_upload_by_its_cost(tmp_path) -> None:
    """``receive_cpu_ms`` (model.toml): the event loop's work on a body, added to the upload job."""
    model = tmp_path / "model.toml"
    text = (Path(__file__).resolve().parent.parent / "scenarios" / "model.toml").read_text()
    model.write_text(text.replace("receive_cpu_ms = 0.0", "receive_cpu_ms = 200.0"))
    profile = load_profile("optimized")  # every upload job its mean: the added cost shows in the median
    profile = dataclasses.replace(profile, stages={**profile.stages, "upload": dataclasses.replace(
        profile.stage("upload"), work_cv=0.0)})
    options = dict(strategy="batched", images=2, profile="optimized", uplink_mbit=0.0)  # a core each
    plain = run_sim(SimOptions(**options), profile_override=profile)
    slowed = run_sim(SimOptions(**options, model=str(model)), profile_override=profile)
    assert 200.0 <= slowed.upload_ms["p50"] - plain.upload_ms["p50"] < 250.0
    assert slowed.drop_seconds > plain.drop_seconds


def test_confidence_intervals_use_students_t_for_every_degree_of_freedom() -> None:
    """The old hand table answered df 11 with its df 15 row (2.131); Student's t at df 11 is 2.201."""
    from sim.run import t95
    assert t95(11) == pytest.approx(2.201, abs=1e-3) and t95(4) == pytest.approx(2.776, abs=1e-3)


def test_settlement_is_timed_from_the_first_byte() -> None:
    """One batch_upload_complete settles every image at the end; individual settles them one by one."""
    batched = run_sim(SimOptions(strategy="batched", images=60, uplink_mbit=20.0))
    individual = run_sim(SimOptions(strategy="individual", images=60, uplink_mbit=20.0))
    for summary in (batched, individual):
        assert 0 < summary.time_to_first_settled_s <= summary.settled_p50_s <= summary.drop_seconds
    assert batched.settled_p50_s == pytest.approx(batched.drop_seconds, rel=0.02)
    assert individual.settled_p50_s < 0.9 * individual.drop_seconds
    assert individual.time_to_first_settled_s < 0.5 * batched.time_to_first_settled_s


def test_a_horizon_stops_the_model_there_and_calls_the_open_images_unfinished() -> None:
    """``plan`` stops a cell once it has missed its drop-time target: what is open then is ``unfinished``,
    the drop time is the horizon (a lower bound), and the summary says how many replications stopped."""
    options = dict(strategy="batched", images=200, uplink_mbit=10.0, replications=2)
    whole = run_sim(SimOptions(**options))
    cut = run_sim(SimOptions(**options, horizon_s=whole.drop_seconds / 2))
    assert "censored" not in whole.extra and cut.extra["censored"] == 2
    assert cut.drop_seconds == pytest.approx(whole.drop_seconds / 2, rel=1e-6)
    assert cut.failures_by_cause.get("unfinished", 0) > 0 and cut.images_ok < whole.images_ok
    far = run_sim(SimOptions(**options, horizon_s=whole.drop_seconds * 2))  # a horizon never reached: no change
    far_json, whole_json = far.to_json(), whole.to_json()
    assert far_json["extra"].pop("events") > whole_json["extra"].pop("events")  # its own timeout, and no more
    assert far_json == whole_json


def test_a_replication_stops_once_its_client_has_given_up_on_the_limit() -> None:
    """``plan`` stops a replication whose give-ups alone put its cell over the failure-rate target: the
    give-ups are counted over every user, the open images are ``unfinished``, the run is censored."""
    options = dict(strategy="individual", images=50, users=2, uplink_mbit=10.0, replications=2,
                   strategy_overrides=(("upload_timeout_s", 1.0),))  # every upload times out: the client gives up
    whole = run_sim(SimOptions(**options))
    cut = run_sim(SimOptions(**options, give_up_limit=0.1))
    assert whole.failures_by_cause["http_timeout"] > 90 and "censored" not in whole.extra
    assert cut.failures_by_cause == {"http_timeout": 10.0, "unfinished": 90.0} and cut.extra["censored"] == 2
    assert cut.drop_seconds < whole.drop_seconds / 2 and cut.extra["events"] < whole.extra["events"] / 2


def test_a_cell_runs_no_more_replications_once_one_is_stopped() -> None:
    """``plan``'s cell has missed its targets once a replication is stopped: the others are not run."""
    options = dict(strategy="batched", images=100, uplink_mbit=10.0, replications=3)
    whole = run_sim(SimOptions(**options))
    cut = run_sim(SimOptions(**options, horizon_s=whole.drop_seconds / 2, stop_at_censored=True))
    assert cut.extra["replications"] == 1 and cut.extra["censored"] == 1
    assert run_sim(SimOptions(**options, horizon_s=whole.drop_seconds / 2)).extra["replications"] == 3
    kept = run_sim(SimOptions(**options, stop_at_censored=True))  # none stopped: every replication runs
    assert kept.extra["replications"] == 3 and kept.to_json() == whole.to_json()


def test_a_nodes_gets_as_one_burst_cost_fewer_events_and_answer_the_same_requests() -> None:
    """``plan``'s coarse form: the same GETs asked and answered, on far fewer events, and the drop's time
    as the full form's within a hundredth of the model's stated error. Where a limiter counts each GET on
    its own arrival the burst is not used: the run is the full form's bit for bit."""
    options = dict(strategy="batched", profile="optimized", images=200, users=2, uplink_mbit=20.0,
                   link_per_user=True, replications=2)
    full = run_sim(SimOptions(**options))
    coarse = run_sim(SimOptions(**options, gets_as_bursts=True))
    assert coarse.http_requests == full.http_requests > 19 * 400
    assert coarse.images_ok == full.images_ok and coarse.extra["upload_attempts"] == full.extra["upload_attempts"]
    assert coarse.extra["events"] < 0.5 * full.extra["events"]
    assert coarse.drop_seconds == pytest.approx(full.drop_seconds, rel=DROP_SECONDS_TOLERANCE / 100)
    limited = dict(options, profile="legacy-ratelimit", images=50)
    plain, bursts = run_sim(SimOptions(**limited)).to_json(), run_sim(SimOptions(**limited, gets_as_bursts=True))
    assert plain["extra"]["http_by_status"].get("429", 0) > 0
    assert bursts.to_json() == plain


def test_a_give_up_limit_never_reached_changes_nothing() -> None:
    options = dict(strategy="batched", images=100, uplink_mbit=10.0, replications=2)
    whole = run_sim(SimOptions(**options))
    assert whole.images_failed == 0
    limited, whole_json = run_sim(SimOptions(**options, give_up_limit=0.01)).to_json(), whole.to_json()
    assert limited["extra"].pop("events") == whole_json["extra"].pop("events") + 2  # its stop, once a replication
    assert limited == whole_json


def test_a_horizon_with_arrivals_is_refused() -> None:
    """A user who has not arrived by the horizon would have no drop to judge: refused, not guessed."""
    with pytest.raises(ValueError, match="arrivals"):
        run_sim(SimOptions(images=5, users=2, arrival_rate=0.1, horizon_s=1.0))
    with pytest.raises(ValueError, match="arrivals"):
        run_sim(SimOptions(images=5, users=2, arrival_rate=0.1, give_up_limit=0.5))
