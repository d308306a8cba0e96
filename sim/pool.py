"""Independent simulations on every core: a plan's cells, a validation's rows, a spread's seeds.

Each simulation is seeded and runs alone, so running them in worker processes changes no figure, only the
wall time (about half on 2 cores). The workers are forked: they see the caller's working directory (a matrix
names its workload files relative to the repository) and its loaded modules, so a worker starts at once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from typing import TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")


def cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_each(work: Callable[[Job], Result], jobs: Sequence[Job], processes: int = 0,
             size: Callable[[Job], float] | None = None,
             progress: Callable[[int, int], None] | None = None) -> list[Result]:
    """``work(job)`` for every job, results in the jobs' order. ``work`` must be a module's own function (the
    workers find it by name). ``processes``: 0 for every core; 1 runs here, in order. ``size``: the largest
    jobs are handed out first, so that no core is left with one of them while the others have finished."""
    if processes < 0:
        raise ValueError(f"processes: 0 (every core) or more, got {processes}")
    processes = min(processes or cores(), len(jobs))
    order = sorted(range(len(jobs)), key=lambda at: -size(jobs[at])) if size else list(range(len(jobs)))
    results: list[Result | None] = [None] * len(jobs)
    if processes <= 1:
        for done, at in enumerate(order, 1):
            results[at] = work(jobs[at])
            if progress:
                progress(done, len(jobs))
        return results  # type: ignore[return-value]
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # until each worker's own handler is set
    try:
        pool = multiprocessing.get_context("fork").Pool(processes, initializer=_worker_starts)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    try:
        indexed = [(work, at, jobs[at]) for at in order]
        for done, (at, result) in enumerate(pool.imap_unordered(_run_at, indexed, chunksize=1), 1):
            results[at] = result
            if progress:
                progress(done, len(jobs))
        pool.close()  # every job done: the workers leave on their own, no signal needed
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return results  # type: ignore[return-value]


def _worker_starts() -> None:
    """A forked worker keeps its parent's signal handlers. A SIGTERM that such a handler does not end on (a run's
    turns it into ``SystemExit``; a test's swallows it) leaves the worker alive after ``terminate``, waiting on the
    queue lock the pool then holds, and the pool's ``join`` waits for it for ever. So a worker ends on SIGTERM, as
    the pool expects, and a SIGTERM sent before it got here (a worker slow to start, on a busy machine) waited,
    blocked since the fork, and ends it now."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def _run_at(item: tuple[Callable[[Job], Result], int, Job]) -> tuple[int, Result]:
    work, at, job = item
    return at, work(job)
