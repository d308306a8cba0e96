"""The command line answers bad input with exit 2 and one clear line, never a traceback or a figure."""

from __future__ import annotations

import subprocess
import sys

import pytest

BAD_INPUT = [
    (["report", "/nonexistent"], "no summary.json"),
    (["sim", "--images", "0"], "must be 1 or more"),
    (["sim", "--users", "-1"], "must be 1 or more"),
    (["sim", "--server-uptime-s", "-5"], "must be 0 or more"),
    (["run", "--images", "0"], "must be 1 or more"),
    (["browser-run", "--images", "0"], "must be 1 or more"),
    (["sim", "--strategy", "nope"], "unknown strategy 'nope'"),
    (["sim", "--strategy", "individual:nope"], "no parameter set 'nope'"),
    (["sim", "--network", "nope"], "no network named 'nope'"),
    (["sim", "--profile", "nope"], "no profile named 'nope'"),
    (["run", "--target-profile", "nope", "--target", "http://127.0.0.1:9"], "no target named 'nope'"),
    (["calibrate", "/tmp", "--out", "/tmp/never.toml"], "not a real run's results directory"),
    (["gate", "/nonexistent"], "no summary.json"),
    (["validate", "/nonexistent"], "no matrix.jsonl"),
    (["validate", "x", "--profile", "legacy"], "NAME=PROFILE.toml"),
    (["compare", "--images", "200,200"], "names a size twice"),
]


@pytest.mark.parametrize(("args", "says"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_exit_2_with_one_clear_line(args, says, tmp_path) -> None:
    done = subprocess.run([sys.executable, "-m", "bulkbench.cli", *args, *(
        ["--out", str(tmp_path / "out")] if args[0] in ("sim", "run", "browser-run") else [])],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "summary.json").exists()
