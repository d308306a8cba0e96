"""A stage is one named cost of the server: a pool of workers with a waiting room in front.

Like the pumps of a petrol station: ``workers`` cars are served at once, the rest queue. With
admission control on, a full queue turns new arrivals away (``bulkbench.profile.Overloaded``: the transport answers
503 or ``overloaded`` with Retry-After) instead of letting them wait without bound. Each job does its
real work, then holds its worker for the profile's emulated service time, so a slow production
server can be reproduced on a fast machine.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from bulkbench.profile import Overloaded, StageSpec
from reference_server.metrics import Metrics

T = TypeVar("T")
SAMPLES_KEPT = 50_000


class Stage:
    def __init__(
        self,
        name: str,
        spec: StageSpec,
        metrics: Metrics,
        *,
        emulate: bool,
        admission_control: bool,
        retry_after_s: float,
    ) -> None:
        self.name = name
        self.spec = spec
        self.emulate = emulate
        self.admission_control = admission_control
        self.retry_after_s = retry_after_s
        self.waiting = 0
        self.busy = 0
        self.samples: deque[tuple[float, float]] = deque(maxlen=SAMPLES_KEPT)
        """(items, seconds of real work) of recent jobs; emulated time is not in them."""
        self._free = asyncio.Semaphore(spec.workers)
        self._queue_gauge = metrics.stage_queue_depth.labels(name)
        self._busy_gauge = metrics.stage_busy_workers.labels(name)
        self._service = metrics.stage_service_seconds.labels(name)
        self._refused = metrics.stage_refused_total.labels(name)
        metrics.stage_workers.labels(name).set(spec.workers)

    def check_admission(self) -> None:
        """Raise ``Overloaded`` now if a new job would be refused (to fail before reading a body)."""
        if self.spec.refuses(self.admission_control, self.busy, self.waiting):
            self._refused.inc()
            raise Overloaded(self.name, self.retry_after_s)

    async def acquire(self) -> float:
        """Wait for a worker (refused at once by admission control when the queue is full).

        Returns the start of service, for ``release``. Plain methods rather than a context manager:
        this is on every operation's path.
        """
        self.check_admission()
        if self._free.locked() or self.waiting:
            self.waiting += 1
            self._queue_gauge.set(self.waiting)
            try:
                await self._free.acquire()
            finally:
                self.waiting -= 1
                self._queue_gauge.set(self.waiting)
        else:
            await self._free.acquire()
        self.busy += 1
        self._busy_gauge.set(self.busy)
        return time.perf_counter()

    async def release(self, started: float, items: float = 0, work_s: float | None = None) -> None:
        """Hold the worker for the emulated service time, then free it.

        ``work_s``: the job's own work, when that is not all the time it held the worker (``ops``
        holds its worker through ``persist``; a thread job reports its CPU time); by default, all of it.
        """
        self.samples.append((items, time.perf_counter() - started if work_s is None else work_s))
        try:
            if self.emulate:
                delay = self.spec.emulated_s(items)
                if delay > 0:
                    await asyncio.sleep(delay)
        finally:
            self._service.observe(time.perf_counter() - started)
            self.busy -= 1
            self._busy_gauge.set(self.busy)
            self._free.release()

    def samples_json(self) -> dict[str, object]:
        return {"workers": self.spec.workers, "samples": list(self.samples)}

    async def run(self, work: Callable[[], T], items: float = 0, *, in_thread: bool = False) -> T:
        """Run ``work`` in a worker: inline on the event loop, or in a thread for long CPU work.

        A thread's sample is its CPU time, not its wall time: threads sharing the cores (and the
        GIL) stretch each other's wall time, and the model adds that contention itself.
        """
        started = await self.acquire()
        cpu_s: float | None = None
        try:
            if not in_thread:
                return work()
            result, cpu_s = await asyncio.to_thread(_cpu_timed, work)
            return result
        finally:
            await self.release(started, items, work_s=cpu_s)


def _cpu_timed(work: Callable[[], T]) -> tuple[T, float]:
    started = time.thread_time()
    return work(), time.thread_time() - started
