"""Simulations on every core (``sim.pool``): the same figures as one after another, in the jobs' order."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from sim.pool import cores, run_each
from sim.validate import compare_matrix, compare_spread

ROOT = Path(__file__).resolve().parent.parent


def _square_and_where(n: int) -> tuple[int, int]:
    return n * n, os.getpid()


def _refuse_three(n: int) -> int:
    if n == 3:
        raise ValueError("three is refused")
    return n


def test_jobs_come_back_in_their_order_whichever_ran_first() -> None:
    jobs = [3, 1, 4, 1, 5, 9, 2, 6]
    done: list[int] = []
    results = run_each(_square_and_where, jobs, processes=2, size=lambda n: n,
                       progress=lambda finished, total: done.append(total - finished))
    assert [square for square, _pid in results] == [n * n for n in jobs]
    assert done == list(range(len(jobs) - 1, -1, -1))
    assert {pid for _square, pid in results} != {os.getpid()}  # they ran in workers
    here = run_each(_square_and_where, jobs, processes=1)
    assert {pid for _square, pid in here} == {os.getpid()} and [s for s, _p in here] == [n * n for n in jobs]


def test_a_failing_job_fails_the_call_in_the_workers_and_here() -> None:
    for processes in (1, 2):
        with pytest.raises(ValueError, match="three is refused"):
            run_each(_refuse_three, [1, 2, 3, 4], processes=processes)
    assert run_each(_refuse_three, [], processes=2) == []
    assert cores() >= 1
    with pytest.raises(ValueError, match="0 .every core. or more"):
        run_each(_refuse_three, [1], processes=-1)


def test_a_negative_process_count_is_refused_on_the_command_line(capsys) -> None:
    from bulkbench.cli import build_parser
    for command in (["validate", "examples/validation/issue4"], ["plan"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*command, "--processes", "-2"])
        assert "must be 0 or more, got -2" in capsys.readouterr().err


def test_no_worker_outlives_the_call_where_sigterm_raises_systemexit() -> None:
    """A run's process turns SIGTERM into ``SystemExit`` (``bulkbench.lifeline``), and its forked workers kept
    that: once, in a full suite, a worker blocked on the pool's queue outlived the pool's ``terminate`` and
    ``join`` waited until pytest's timeout (it did not happen again alone, so this holds the property, not that
    hang). Each call ends its workers, after its jobs (closed, no signal) and after a failing job."""
    from bulkbench.lifeline import exit_on_sigterm

    before = signal.getsignal(signal.SIGTERM)
    exit_on_sigterm()
    try:
        for _ in range(3):
            assert [s for s, _pid in run_each(_square_and_where, [1, 2, 3], processes=2)] == [1, 4, 9]
            with pytest.raises(ValueError):
                run_each(_refuse_three, [3, 1, 2, 4], processes=2)
            assert multiprocessing.active_children() == []
    finally:
        signal.signal(signal.SIGTERM, before)


def test_validation_gives_the_same_rows_on_every_core_as_in_one_process(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # a matrix names its workload files relative to the repository
    folder = ROOT / "examples" / "validation" / "browser-200"
    assert compare_matrix(folder, replications=1, processes=2) == compare_matrix(folder, replications=1, processes=1)
    spread = ROOT / "examples" / "validation" / "browser-repeat"
    assert compare_spread(spread, replications=2, processes=2) == compare_spread(spread, replications=2, processes=1)
