"""The model against recorded real runs (``examples/validation``): a change to the model that moves a
prediction outside its stated error, or changes a message count, fails here."""

from __future__ import annotations

from pathlib import Path

from benchmarks.validate import compare_matrix

ROOT = Path(__file__).resolve().parent.parent


def test_the_model_predicts_the_recorded_issue4_runs_within_its_stated_error(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # the matrix names its workload files relative to the repository
    rows = compare_matrix(ROOT / "examples" / "validation" / "issue4", replications=3)
    assert len(rows) == 20
    assert [r for r in rows if not r["within"]] == []
    for r in rows:  # where nothing is lost, the model sends exactly the real messages and requests
        if r["real_failure_rate"] == 0 and r["sim_failure_rate"] == 0:
            assert (r["sim_ws_sent"], r["sim_http"]) == (r["real_ws_sent"], r["real_http"])
