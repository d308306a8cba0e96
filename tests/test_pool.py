"""Simulations on every core (``sim.pool``): the same figures as one after another, in the jobs' order."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
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


SLOW_START_S = 2.0
_forks = {"armed": False, "count": 0}


def _count_fork() -> None:
    if _forks["armed"]:
        _forks["count"] += 1


def _second_worker_starts_late() -> None:
    """A worker that the machine schedules late: still before its pool's initializer when the pool terminates."""
    if _forks["armed"] and _forks["count"] == 2:
        time.sleep(SLOW_START_S)


os.register_at_fork(before=_count_fork, after_in_child=_second_worker_starts_late)


def _a_call_ends(call, within_s: float = 30.0) -> bool:
    """Whether ``call()`` returned or raised within ``within_s`` (a pool stuck in ``join`` never does)."""
    finished = threading.Event()

    def run() -> None:
        with contextlib.suppress(ValueError):
            call()
        finished.set()

    threading.Thread(target=run, daemon=True).start()
    return finished.wait(within_s)


@pytest.fixture
def sigterm_swallowed():
    """The worst handler a parent can leave its forked workers: one that never ends on SIGTERM."""
    before = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    yield
    signal.signal(signal.SIGTERM, before)
    _forks["armed"] = False


def test_no_worker_outlives_the_call_whatever_its_parent_does_with_sigterm(sigterm_swallowed) -> None:
    """A forked worker inherits its parent's SIGTERM handler (a run's turns it into ``SystemExit``), and twice a
    worker outlived its pool's ``terminate`` and ``join`` waited until a timeout: once in a full suite, once in CI
    on a worker that had not yet reached the pool's initializer when the first job failed. Here the second worker
    starts ``SLOW_START_S`` late, so the failing first job's ``terminate`` reaches it before its initializer."""
    assert [s for s, _pid in run_each(_square_and_where, [1, 2, 3], processes=2)] == [1, 4, 9]  # closed, no signal
    _forks.update(armed=True, count=0)
    began = time.monotonic()
    assert _a_call_ends(lambda: run_each(_refuse_three, [3, 1, 2, 4, 5, 6], processes=2))
    assert _forks["count"] == 2 and time.monotonic() - began < SLOW_START_S + 20
    assert multiprocessing.active_children() == []


def test_validation_gives_the_same_rows_on_every_core_as_in_one_process(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # a matrix names its workload files relative to the repository
    folder = ROOT / "examples" / "validation" / "browser-200"
    assert compare_matrix(folder, replications=1, processes=2) == compare_matrix(folder, replications=1, processes=1)
    spread = ROOT / "examples" / "validation" / "browser-repeat"
    assert compare_spread(spread, replications=2, processes=2) == compare_spread(spread, replications=2, processes=1)
