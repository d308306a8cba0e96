"""The recorded matrices: every row is a run the engines accept, before hours are spent running it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.validation.matrix import (
    BROWSER_CAP_S,
    MATRICES,
    ROW_KEY_FILE,
    keep_course,
    keep_pings,
    row_folder,
    row_options,
)
from bulkbench.course import counts_at
from loadtests.run import RunOptions

ROWS = [(name, spec) for name, specs in MATRICES.items() for spec in specs]


@pytest.mark.parametrize(("matrix", "spec"), ROWS, ids=[f"{name}-{n}" for n, (name, _) in enumerate(ROWS)])
def test_every_row_makes_its_engines_options(matrix: str, spec: dict, tmp_path: Path) -> None:
    options = row_options(spec, tmp_path, "")
    if spec.get("engine") == "browser":
        assert not isinstance(options, RunOptions)
        assert options.max_seconds == spec.get("drop_cap_s", BROWSER_CAP_S)
        assert options.start_app == spec["app"] and options.images == spec["images"]
    else:
        assert isinstance(options, RunOptions)
        assert options.drop_cap_s == spec.get("drop_cap_s", 0.0)
        assert options.max_seconds >= 0 and options.images == spec["images"]


def test_a_long_row_is_cut_where_it_says_in_both_engines(tmp_path: Path) -> None:
    browser, protocol = MATRICES["browser-500"]
    assert row_options(browser, tmp_path).max_seconds == browser["drop_cap_s"] > BROWSER_CAP_S
    assert row_options(protocol, tmp_path).drop_cap_s == protocol["drop_cap_s"]


def test_a_row_never_takes_the_folder_of_another_rows_run(tmp_path: Path) -> None:
    assert row_folder(tmp_path, 6, "a") == tmp_path / "run06"  # free
    (tmp_path / "run06").mkdir()
    (tmp_path / "run06" / ROW_KEY_FILE).write_text("a")
    assert row_folder(tmp_path, 6, "a") == tmp_path / "run06"  # the same row again: its own folder
    assert row_folder(tmp_path, 6, "b") == tmp_path / "run06-2"  # a row renumbered onto it: beside it
    (tmp_path / "run07").mkdir()  # an older run's, without a key: taken
    assert row_folder(tmp_path, 7, "a") == tmp_path / "run07-2"



def test_a_browser_rows_pings_are_kept_beside_the_matrix_and_replaced_when_it_runs_again(tmp_path: Path) -> None:
    """``calibrate --heartbeat`` fits recorded pings, and the summary keeps only their figures: the matrix keeps
    each browser page's pings in ``heartbeats.jsonl``, one line a page, a row's earlier lines replaced."""
    def drop(folder: Path, user: int, extra: dict) -> None:
        (folder / "drops").mkdir(parents=True, exist_ok=True)
        (folder / "drops" / f"user-{user}.json").write_text(json.dumps({"user": user, "extra": extra}))

    first, again, other = tmp_path / "run01", tmp_path / "run01-2", tmp_path / "run02"
    drop(first, 0, {"heartbeats": [[10.0, 0.5], [20.0, None]], "socket_events": [[-3.0, "open"]]})
    drop(first, 1, {})  # a page whose target names no heartbeat: nothing to keep
    drop(again, 0, {"heartbeats": [[10.0, 1.5]], "socket_events": None})
    drop(other, 0, {"heartbeats": [[10.0, 2.5]]})
    assert keep_pings(tmp_path, "a", first) == 1 and keep_pings(tmp_path, "b", other) == 1
    assert keep_pings(tmp_path, "a", again) == 1
    lines = [json.loads(line) for line in (tmp_path / "heartbeats.jsonl").read_text().splitlines()]
    assert lines == [{"key": "b", "user": 0, "heartbeats": [[10.0, 2.5]], "socket_events": []},
                     {"key": "a", "user": 0, "heartbeats": [[10.0, 1.5]], "socket_events": []}]


def test_a_browser_rows_step_times_are_kept_beside_the_matrix(tmp_path: Path) -> None:
    """``validate --course`` sets the model's course beside the real pages': the matrix keeps each browser drop's
    step times from its records (the raw drops stay on the machine), a row's earlier lines replaced."""
    def drop(folder: Path, records: list[dict]) -> None:
        (folder / "drops").mkdir(parents=True, exist_ok=True)
        (folder / "drops" / "user-0.json").write_text(json.dumps({"user": 0, "records": records, "extra": {}}))

    first, again = tmp_path / "run01", tmp_path / "run01-2"
    drop(first, [{"timings": {"node_sent_at": 2.0, "upload_done_at": 5.0}},
                 {"timings": {"node_sent_at": 1.0, "upload_done_at": 3.0, "complete_sent_at": 9.5}}])
    drop(again, [{"timings": {"node_sent_at": 4.0}}])
    assert keep_course(tmp_path, "a", first) == 1
    [line] = [json.loads(text) for text in (tmp_path / "course.jsonl").read_text().splitlines()]
    assert line["key"] == "a" and line["steps"] == {"node_sent_at": [1.0, 2.0], "upload_done_at": [3.0, 5.0],
                                                      "complete_sent_at": [9.5], "complete_acked_at": []}
    assert counts_at(line["steps"]["node_sent_at"], [0.5, 1.0, 10.0]) == [0, 1, 2]
    assert keep_course(tmp_path, "a", again) == 1
    [line] = [json.loads(text) for text in (tmp_path / "course.jsonl").read_text().splitlines()]
    assert line["steps"]["node_sent_at"] == [4.0]
    (tmp_path / "run02" / "drops").mkdir(parents=True)
    (tmp_path / "run02" / "drops" / "user-0.json").write_text(json.dumps({"user": 0, "records": []}))
    assert keep_course(tmp_path, "b", tmp_path / "run02") == 0  # a drop with no images: nothing to keep
