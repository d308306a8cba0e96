"""``bulkbench compare`` end to end at small scale: real runs (repeated), the model, one report."""

from __future__ import annotations

import subprocess
import sys


def test_compare_repeats_the_real_run_and_reports_each(tmp_path) -> None:
    out = tmp_path / "compare"
    result = subprocess.run(
        [sys.executable, "-m", "bulkbench.cli", "compare", "--strategies", "batched", "--images", "8",
         "--network", "loopback", "--workload", "scenarios/workload-light.toml", "--real-runs", "2",
         "--replications", "2", "--out", str(out), "--max-seconds", "120"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "real-batched" / "summary.json").exists() and (out / "real-batched-2" / "summary.json").exists()
    report = (out / "report" / "report.md").read_text()
    assert "real batched 8 #2" in report  # the second real run is told apart from the first
    rows = [line for line in report.splitlines() if line.startswith("| real batched 8") or
            line.startswith("| sim batched 8")]
    assert len(rows) == 3  # two real runs and the model, each a row of the headline


def test_compare_refuses_zero_real_runs(tmp_path) -> None:
    result = subprocess.run([sys.executable, "-m", "bulkbench.cli", "compare", "--real-runs", "0",
                             "--out", str(tmp_path / "c")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "must be 1 or more" in result.stderr
    assert not (tmp_path / "c").exists()


def test_compare_over_several_drop_sizes_draws_the_scaling_and_gates_every_run(tmp_path) -> None:
    out = tmp_path / "compare"
    result = subprocess.run(
        [sys.executable, "-m", "bulkbench.cli", "compare", "--strategies", "batched", "--images", "4,8",
         "--network", "loopback", "--workload", "scenarios/workload-light.toml", "--replications", "1",
         "--out", str(out), "--max-seconds", "120"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.parent.name for p in out.glob("*/summary.json")) == [
        "real-batched-n4", "real-batched-n8", "sim-batched-n4", "sim-batched-n8"]
    assert (out / "report" / "scaling.png").exists()  # two drop sizes: an axis to scale on
    gated = subprocess.run([sys.executable, "-m", "bulkbench.cli", "gate", str(out), "--thresholds",
                            "scenarios/thresholds.toml"], capture_output=True, text=True, timeout=60)
    assert gated.returncode == 0, gated.stdout + gated.stderr
    assert all(name in gated.stdout for name in ("real-batched-n4:", "real-batched-n8:", "sim-batched-n4:"))
    report = (out / "report" / "report.md").read_text()
    labels = [line.split("|")[1].strip() for line in report.splitlines() if line.startswith(("| real ", "| sim "))]
    assert sorted(labels) == ["real batched 4", "real batched 8", "sim batched 4", "sim batched 8"]  # no "#8"
    # the model's error columns: each real run beside the prediction of its own scenario (4 images with
    # the 4-image model, 8 with the 8-image one), nothing beside a model row
    from reports.data import headline, load_run
    runs = {name: load_run(out / name) for name in ("real-batched-n4", "real-batched-n8", "sim-batched-n4",
                                                    "sim-batched-n8")}
    table = headline(list(runs.values())).set_index("run")
    for n in (4, 8):
        real, model = runs[f"real-batched-n{n}"].summary, runs[f"sim-batched-n{n}"].summary
        row = table.loc[runs[f"real-batched-n{n}"].label]
        assert row["model error (drop s)"] == f"{model['drop_seconds'] / real['drop_seconds'] - 1:+.0%}"
        assert row["model error (failure rate)"] == round(model["failure_rate"] - real["failure_rate"], 3)
        assert table.loc[runs[f"sim-batched-n{n}"].label, ["model error (failure rate)", "model error (drop s)"]
                         ].isna().all()
