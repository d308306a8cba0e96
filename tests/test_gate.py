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
