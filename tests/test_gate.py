"""The gate: thresholds that hold pass, ones that do not fail with 99, regressions fail, bad input is 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from reports.gate import EXIT_OK, EXIT_THRESHOLDS_FAILED, EXIT_USAGE

RECORD = {
    "engine": "real", "strategy": "batched", "profile": "legacy", "images": 200, "users": 1, "images_ok": 200,
    "images_failed": 0, "failure_rate": 0.0, "failures_by_cause": {}, "ws_messages_sent": 4,
    "ws_messages_received": 10, "http_requests": 4000, "bytes_uploaded": 1, "drop_seconds": 30.0,
    "op_ack_ms": {"p50": 5.0, "p95": 40.0, "p99": 60.0, "max": 70.0},
    "upload_ms": {"p50": 5.0, "p95": 40.0, "p99": 60.0, "max": 70.0}, "seed": 1, "version": "0.1.0",
}


def results(tmp_path: Path, name: str, **changes) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "summary.json").write_bytes(orjson.dumps([{**RECORD, **changes}]))
    return folder


def thresholds(tmp_path: Path, *lines: str, select: str = "") -> Path:
    path = tmp_path / "t.toml"
    body = ", ".join(f'"{line}"' for line in lines)
    path.write_text(f"[[gate]]\n{select}\nthresholds = [{body}]\n")
    return path


def gate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bulkbench.cli", "gate", *args], capture_output=True, text=True,
                          timeout=60)


def test_thresholds_that_hold_pass_and_write_junit_and_markdown(tmp_path) -> None:
    run = results(tmp_path, "run")
    result = gate(str(run), "--thresholds", str(thresholds(
        tmp_path, "failure_rate < 0.001", "op_ack_ms p(95) < 500", "ws_messages_sent <= 10")))
    assert result.returncode == EXIT_OK, result.stderr
    xml = (run / "gate.xml").read_text()
    assert 'tests="3" failures="0"' in xml
    assert "passed (3/3)" in (run / "gate.md").read_text()


def test_a_threshold_that_does_not_hold_fails_with_99(tmp_path) -> None:
    run = results(tmp_path, "run", ws_messages_sent=801)
    result = gate(str(run), "--thresholds", str(thresholds(tmp_path, "ws_messages_sent <= 10")))
    assert result.returncode == EXIT_THRESHOLDS_FAILED
    assert 'failures="1"' in (run / "gate.xml").read_text() and "measured 801" in result.stdout


def test_select_limits_a_gate_to_matching_records(tmp_path) -> None:
    run = results(tmp_path, "run", strategy="individual", ws_messages_sent=801)
    path = thresholds(tmp_path, "ws_messages_sent <= 10", select='select = { strategy = "individual" }')
    assert gate(str(run), "--thresholds", str(path)).returncode == EXIT_THRESHOLDS_FAILED
    path = thresholds(tmp_path, "ws_messages_sent <= 10", select='select = { strategy = "batched" }')
    assert gate(str(run), "--thresholds", str(path)).returncode == EXIT_USAGE  # selects nothing: unusable


def test_a_regression_against_the_baseline_fails(tmp_path) -> None:
    baseline = results(tmp_path, "base", drop_seconds=30.0)
    slower = results(tmp_path, "slower", drop_seconds=40.0)
    path = thresholds(tmp_path, "failure_rate < 0.5")
    result = gate(str(slower), "--thresholds", str(path), "--baseline", str(baseline), "--max-regression", "20")
    assert result.returncode == EXIT_THRESHOLDS_FAILED
    assert "drop_seconds regression" in result.stdout
    same = gate(str(baseline), "--thresholds", str(path), "--baseline", str(baseline), "--max-regression", "20")
    assert same.returncode == EXIT_OK


@pytest.mark.parametrize("line", ["latency_ms < 5", "op_ack_ms < 5", "failure_rate p(95) < 1", "failure_rate ~ 1"])
def test_unusable_thresholds_are_usage_errors_with_a_clear_message(tmp_path, line) -> None:
    result = gate(str(results(tmp_path, "run")), "--thresholds", str(thresholds(tmp_path, line)))
    assert result.returncode == EXIT_USAGE
    assert "threshold" in result.stderr


def test_a_missing_results_directory_is_a_usage_error(tmp_path) -> None:
    result = gate(str(tmp_path / "nope"), "--thresholds", "scenarios/thresholds.toml")
    assert result.returncode == EXIT_USAGE and "summary.json" in result.stderr


def test_the_projects_own_thresholds_parse_and_pass_a_good_batched_run(tmp_path) -> None:
    assert gate(str(results(tmp_path, "run")), "--thresholds", "scenarios/thresholds.toml").returncode == EXIT_OK


def with_samples(tmp_path: Path, name: str) -> Path:
    """A run with raw samples: answers of 1, 2, ..., 100 ms over two drops; 4 images, one lost."""
    run = results(tmp_path, name)
    (run / "drops").mkdir()
    for user, acks in enumerate((range(1, 51), range(51, 101))):
        (run / "drops" / f"user-{user}.json").write_bytes(orjson.dumps({"op_ack_s": [a / 1000 for a in acks],
                                                                         "upload_s": []}))
    images = [("ok", 2.0), ("ok", 4.0), ("failed", None), ("ok", 9.0)]
    (run / "images.jsonl").write_bytes(b"\n".join(orjson.dumps({"outcome": o, "timings": {"settled_at": t}})
                                                  for o, t in images))
    return run


@pytest.mark.parametrize(("line", "measured"), [
    ("op_ack_ms p(90) < 91", 90.1),  # numpy's linear percentile over the raw samples, as k6 computes it
    ("op_ack_ms p(99.5) < 101", 99.505),
    ("op_ack_ms avg < 51", 50.5), ("op_ack_ms med < 51", 50.5), ("op_ack_ms min < 2", 1.0),
    ("op_ack_ms max < 101", 100.0), ("op_ack_ms count == 100", 100.0),
    ("settled_s p(50) < 5", 4.0), ("image_failed rate < 0.3", 0.25), ("image_failed count == 4", 4.0),
])
def test_k6_aggregates_over_the_raw_samples(tmp_path, line, measured) -> None:
    run = with_samples(tmp_path, "run")
    passed = gate(str(run), "--thresholds", str(thresholds(tmp_path, line)))
    assert passed.returncode == EXIT_OK and f"measured {measured}" in passed.stdout, passed.stdout + passed.stderr
    metric, op, _value = line.rsplit(" ", 2)
    flipped = {"<": ">=", "==": "!="}[op]
    failed = gate(str(run), "--thresholds", str(thresholds(tmp_path, f"{metric} {flipped} {_value}")))
    assert failed.returncode == EXIT_THRESHOLDS_FAILED


def test_no_samples_of_a_kind_fail_a_threshold_on_them(tmp_path) -> None:
    run = with_samples(tmp_path, "run")
    result = gate(str(run), "--thresholds", str(thresholds(tmp_path, "upload_ms max < 1000")))
    assert result.returncode == EXIT_THRESHOLDS_FAILED and "measured None" in result.stdout


def test_an_aggregate_a_summary_cannot_answer_needs_raw_samples(tmp_path) -> None:
    result = gate(str(results(tmp_path, "run")), "--thresholds", str(thresholds(tmp_path, "op_ack_ms avg < 5")))
    assert result.returncode == EXIT_USAGE and "no raw samples of op_ack_ms" in result.stderr


def test_a_folder_of_runs_gates_every_run_in_it_by_name(tmp_path) -> None:
    """``compare``'s output: a folder per run (and one for the report, which has no summary)."""
    out = tmp_path / "compare"
    out.mkdir()
    results(out, "real-batched")
    results(out, "sim-batched", engine="sim", ws_messages_sent=40)
    (out / "report").mkdir()
    result = gate(str(out), "--thresholds", str(thresholds(tmp_path, "ws_messages_sent <= 10")))
    assert result.returncode == EXIT_THRESHOLDS_FAILED
    assert "real-batched: real batched" in result.stdout and "sim-batched: sim batched" in result.stdout
    assert 'tests="2" failures="1"' in (out / "gate.xml").read_text()


def test_a_model_run_of_several_replications_is_gated_on_its_summary(tmp_path) -> None:
    """Its samples are the first replication's only: a percentile comes from the summary (all of them),
    an aggregate the summary does not hold is unusable rather than measured on a fifth of the runs."""
    run = with_samples(tmp_path, "sim")
    (run / "summary.json").write_bytes(orjson.dumps([{**RECORD, "engine": "sim", "extra": {"replications": 5}}]))
    p95 = gate(str(run), "--thresholds", str(thresholds(tmp_path, "op_ack_ms p(95) < 41")))
    assert p95.returncode == EXIT_OK and "measured 40.0" in p95.stdout  # the summary's, not the samples' 95.05
    avg = gate(str(run), "--thresholds", str(thresholds(tmp_path, "op_ack_ms avg < 51")))
    assert avg.returncode == EXIT_USAGE and "no raw samples" in avg.stderr
