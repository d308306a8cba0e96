"""Thresholds a real run watches while it goes (k6's ``abortOnFail``), and ``run --thresholds``'s exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bulkbench.config import ConfigError
from bulkbench.thresholds import EXIT_THRESHOLDS_FAILED, Threshold, load_gates
from loadtests.run import RunOptions, run


def test_a_threshold_table_marks_it_watched_with_its_delay() -> None:
    t = Threshold.parse({"threshold": "op_ack_ms p(95) < 500", "abort_on_fail": True, "delay_abort_eval_s": 10})
    assert (t.metric, t.aggregate, t.value, t.abort_on_fail, t.delay_abort_eval_s) == ("op_ack_ms", "p(95)", 500.0,
                                                                                       True, 10.0)
    assert not Threshold.parse("op_ack_ms p(95) < 500").abort_on_fail


@pytest.mark.parametrize("item, why", [
    ({"threshold": "failure_rate < 0.01", "abort_on_fail": True}, "known only when the run is judged"),
    ({"threshold": "ws_messages_sent < 10", "abort": True}, "unknown"),
    ({"threshold": "ws_messages_sent < 10", "delay_abort_eval_s": -1}, "delay_abort_eval_s >= 0"),
    ({"abort_on_fail": True}, "'threshold'"),
    (3, "neither text nor a table"),
])
def test_a_bad_threshold_table_is_a_clear_error(item, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        Threshold.parse(item)


def thresholds_file(tmp_path: Path, *items: str) -> Path:
    path = tmp_path / "thresholds.toml"
    path.write_text('kind = "thresholds"\n[[gate]]\nselect = { strategy = "individual" }\nthresholds = [\n'
                    + "".join(f"    {item},\n" for item in items) + "]\n")
    load_gates(path)  # the file is well formed
    return path


def test_a_crossed_watched_threshold_stops_the_run_and_its_open_images_are_unfinished(
        start_server, tmp_path, small_workload) -> None:
    """individual sends four frames per image: 40 images would send 161; the watch stops it past 30."""
    server = start_server("legacy")
    thresholds = thresholds_file(tmp_path, '{ threshold = "ws_messages_sent <= 30", abort_on_fail = true }')
    summary = run(RunOptions(strategy="individual", images=40, profile="legacy", out=tmp_path / "out",
                             target=server.url, workload=small_workload, quiet=True, max_seconds=300,
                             thresholds=str(thresholds)))
    aborted = summary.extra["aborted"]
    assert aborted["threshold"] == "ws_messages_sent <= 30" and aborted["measured"] > 30
    assert summary.ws_messages_sent < 161
    assert summary.images_failed > 0 and set(summary.failures_by_cause) == {"unfinished"}
    assert summary.images_ok + summary.images_failed == 40  # every image judged by the server's state


def test_run_with_thresholds_exits_99_when_one_fails_and_0_when_all_hold(start_server, tmp_path,
                                                                         small_workload) -> None:
    server = start_server("legacy")
    command = [sys.executable, "-m", "bulkbench.cli", "run", "--strategy", "individual", "--images", "6",
               "--profile", "legacy", "--target", server.url, "--workload", small_workload]
    failing = thresholds_file(tmp_path, '"ws_messages_sent < 5"',
                              '{ threshold = "ws_messages_sent <= 1000", abort_on_fail = true }')
    done = subprocess.run([*command, "--out", str(tmp_path / "a"), "--thresholds", str(failing)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == EXIT_THRESHOLDS_FAILED, done.stderr[-2000:]
    record = json.loads((tmp_path / "a" / "summary.json").read_text())[0]
    assert record["extra"]["aborted"] is None and record["images_ok"] == 6  # not watched: ran to its end
    assert "FAILED" in (tmp_path / "a" / "gate.md").read_text()
    holding = thresholds_file(tmp_path, '"ws_messages_sent <= 1000"')
    done = subprocess.run([*command, "--out", str(tmp_path / "b"), "--thresholds", str(holding)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_watched_threshold_on_a_judged_metric_is_refused_before_the_run(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[gate]]\nthresholds = [{ threshold = "failure_rate < 0.01", abort_on_fail = true }]\n')
    done = subprocess.run([sys.executable, "-m", "bulkbench.cli", "run", "--images", "5", "--out",
                           str(tmp_path / "out"), "--thresholds", str(bad)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "cannot stop a run" in done.stderr
    assert not (tmp_path / "out").exists()  # refused before anything started
