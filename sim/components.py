"""The model's building blocks, each standing for one part of the real system.

- ``Slots``: so many identical places (workers, cores, connections) and a line for them: SimPy's
  ``Resource`` with the same order of events, minus its bookkeeping.
- ``Stage``: one of the server's named costs (``ops``, ``persist``, ``upload``, ``thumbnail``): a
  pool of workers with a waiting room, which admission control may close when it is full.
- ``ConnectionPool``: the browser's 6 HTTP/1.1 connections per host, shared by uploads and GETs.
- ``Link``: the uplink (a loopback shaped by ``tbf`` in real runs). Bulk transfers share its rate
  equally (TCP flows through one bottleneck); a small frame waits behind the standing queue the
  bulk flows keep (each flow about the same number of bytes, as TCP small queues hold them,
  never more than the tbf queue's limit), then crosses.
Each keeps the counters the model's time series and Little's law checks read.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from heapq import heappop, heappush
from typing import Any

import simpy

from bulkbench.effects import BROWSER_CONNECTIONS_PER_HOST
from bulkbench.profile import Overloaded, StageSpec
from sim.events import call_later, is_pending, processed_now, succeed_in

Held = tuple["SlotRequest", float]
"""A worker held: its request and when the job arrived."""


@dataclass(slots=True)
class Occupancy:
    """Time-weighted count of jobs in a system: the ``L`` of Little's law, and the ``W`` samples."""

    env: simpy.Environment
    jobs: int = 0
    area: float = 0.0
    last: float = 0.0
    arrivals: int = 0
    completions: int = 0
    time_in_system: float = 0.0

    def change(self, delta: int) -> None:
        now = self.env.now
        self.area += self.jobs * (now - self.last)
        self.last = now
        self.jobs += delta

    def mean_jobs(self, until: float) -> float:
        return (self.area + self.jobs * (until - self.last)) / until if until > 0 else 0.0


class SlotRequest(simpy.Event):
    """A request for one of ``Slots``: triggered once the slot is granted; ``with`` gives it back."""

    patient = False
    """It waits in line without calling ``Slots.on_wait`` (a burst's next GET)."""

    def __init__(self, slots: Slots) -> None:
        self.env = slots.env
        self.callbacks = []
        self.slots = slots

    def __enter__(self) -> SlotRequest:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is not GeneratorExit:
            self.slots.release(self)
        elif is_pending(self):
            self.slots.queue.remove(self)


class Slots:
    """``capacity`` identical places and a FIFO line for them. A place that is free is taken on the
    spot: the request comes back already processed, so the requester goes on without an event (a
    SimPy ``Resource`` would schedule one, and resume it after whatever else happens at that instant).
    A released place goes straight to the head of the line: one event, the grant (SimPy schedules a
    ``Release`` event first, and the grant when that one is processed)."""

    def __init__(self, env: simpy.Environment, capacity: int = 1,
                 on_wait: Callable[[], None] | None = None) -> None:
        """``on_wait``: called when a request that is not ``patient`` has to wait in line."""
        if capacity <= 0:
            raise ValueError('"capacity" must be > 0.')
        self.env = env
        self.capacity = capacity
        self.on_wait = on_wait
        self.impatient_waiting = 0
        """Requests in line that are not ``patient``."""
        self.count = 0
        """Places in use."""
        self.queue: deque[SlotRequest] = deque()
        """Requests waiting for a place, oldest first."""

    def request(self, patient: bool = False) -> SlotRequest:
        request = SlotRequest(self)
        if self.count < self.capacity:  # nobody waits while a place is free
            self.count += 1
            processed_now(request)  # a process yielding it goes on at once
        elif patient:
            request.patient = True
            self.queue.append(request)
        else:
            self.queue.append(request)
            self.impatient_waiting += 1
            if self.on_wait is not None:
                self.on_wait()
        return request

    def release(self, request: SlotRequest) -> None:
        if is_pending(request):  # still in line: it leaves the line
            self.queue.remove(request)
            self.impatient_waiting -= not request.patient
            return
        if self.queue:
            granted = self.queue.popleft()
            self.impatient_waiting -= not granted.patient
            succeed_in(self.env, granted)
        else:
            self.count -= 1


class SharedCores:
    """``cores`` processors shared by every job on them (processor sharing): n jobs each run at
    min(1, cores / n) of a core, as the OS time-slices the server's threads, so a short upload check
    is not held up behind long thumbnail jobs. One ``Call`` is pending, for the next job to finish;
    an arrival or a departure replaces it (the replaced one fires and is ignored)."""

    def __init__(self, env: simpy.Environment, cores: int) -> None:
        if cores <= 0:
            raise ValueError('"cores" must be > 0.')
        self.env = env
        self.cores = cores
        self._left: dict[int, float] = {}
        """Each job's work still to do, in core-seconds."""
        self._then: dict[int, Callable[[], None]] = {}
        self._last = 0.0
        self._jobs = 0
        self._generation = 0

    def run(self, work_s: float, then: Callable[[], None]) -> None:
        """Do ``work_s`` core-seconds of work among the others on the cores, then ``then()``."""
        self._advance()
        self._jobs += 1
        self._left[self._jobs] = max(0.0, work_s)
        self._then[self._jobs] = then
        self._schedule()

    def _speed(self) -> float:
        return min(1.0, self.cores / len(self._left))

    def _advance(self) -> None:
        now = self.env.now
        if self._left and now > self._last:
            done = (now - self._last) * self._speed()
            left = self._left
            for job in left:
                left[job] -= done
        self._last = now

    def _schedule(self) -> None:
        self._generation += 1
        if not self._left:
            return
        generation, (job, least) = self._generation, min(self._left.items(), key=lambda item: item[1])
        call_later(self.env, max(0.0, least) / self._speed(), lambda _event: self._finish(generation, job))

    def _finish(self, generation: int, job: int) -> None:
        if generation != self._generation:
            return  # an arrival or a departure since: a later call stands for it
        self._advance()
        # the job the call was for, and any that ended at the same instant (to rounding)
        ended = [other for other, left in self._left.items() if other == job or left <= 1e-12]
        for other in ended:
            del self._left[other]
        self._schedule()
        for other in ended:
            self._then.pop(other)()


class Stage:
    """A pool of ``workers`` with a queue of at most ``queue_limit`` (0: unbounded)."""

    def __init__(self, env: simpy.Environment, name: str, workers: int, queue_limit: int = 0,
                 admission_control: bool = False, retry_after_s: float = 1.0) -> None:
        self.env = env
        self.name = name
        self.spec = StageSpec(workers=workers, queue_limit=queue_limit)
        self.workers = Slots(env, workers)
        self.queue_limit = queue_limit
        self.admission_control = admission_control
        self.retry_after_s = retry_after_s
        self.occupancy = Occupancy(env)
        self.waits: list[float] = []
        self.refused = 0

    @property
    def queue_depth(self) -> int:
        return len(self.workers.queue)

    @property
    def busy(self) -> int:
        return self.workers.count

    def check_admission(self) -> None:
        if self.admission_control and self.spec.refuses(True, self.workers.count, len(self.workers.queue)):
            self.refused += 1
            raise Overloaded(self.name, self.retry_after_s)

    def acquire_then(self, then: Callable[[Held], None]) -> None:
        """Wait for a worker, then ``then(held)``; ``Overloaded`` at once if admission control refuses."""
        self.check_admission()
        arrived = self.env.now
        occupancy = self.occupancy
        occupancy.arrivals += 1
        occupancy.change(+1)
        request = self.workers.request()
        if request.callbacks is None:
            self.waits.append(0.0)
            then((request, arrived))
        else:
            request.callbacks.append(lambda _event: self._granted(request, arrived, then))

    def _granted(self, request: SlotRequest, arrived: float, then: Callable[[Held], None]) -> None:
        self.waits.append(self.env.now - arrived)
        then((request, arrived))

    def release(self, held: Held) -> None:
        request, arrived = held
        self.workers.release(request)
        occupancy = self.occupancy
        occupancy.change(-1)
        occupancy.completions += 1
        occupancy.time_in_system += self.env.now - arrived

    def serve_then(self, service_s: float, then: Callable[[], None]) -> None:
        """One job: wait for a worker, hold it ``service_s``, then ``then()``."""

        def hold(held: Held) -> None:
            call_later(self.env, service_s, lambda _event: (self.release(held), then()))

        self.acquire_then(hold)

    def serve(self, service_s: float) -> Generator[simpy.Event, Any, None]:
        """``serve_then`` for a process: the same job, waited for."""
        done = self.env.event()
        self.serve_then(service_s, done.succeed)
        yield done


class ConnectionPool:
    """The browser's connections to one host: a request waits for a free one.

    A burst of GETs may keep one connection from one GET to the next (``hold``): the browser lets go of
    it after each GET and asks again at the back of the line. While only other GETs wait, that changes
    which image's thumbnails come first, not when the last one does. An upload or a POST that has to
    wait cuts every burst at the end of its GET under way, where the browser would have let go; the
    bursts ask again behind it (``patient``: they cut no burst)."""

    def __init__(self, env: simpy.Environment, connections: int = BROWSER_CONNECTIONS_PER_HOST) -> None:
        self.env = env
        self.connections = Slots(env, connections, on_wait=self._cut_bursts)
        self._bursts: set[_Burst] = set()

    def hold(self, ends: list[float], then: Callable[[int], None]) -> None:
        """Keep a connection already granted until ``ends[-1]`` (each GET's end, in order), or until the
        end of the GET under way when a request has to wait; then ``then(how many GETs ended)``."""
        burst = _Burst(self, ends, then)
        self._bursts.add(burst)
        call_later(self.env, ends[-1] - self.env.now, lambda _event: burst.end(len(ends)))
        if self.connections.impatient_waiting:  # granted from the head of a line an upload is still in
            burst.cut(self.env)

    def _cut_bursts(self) -> None:
        for burst in tuple(self._bursts):
            burst.cut(self.env)

    @property
    def in_use(self) -> int:
        return self.connections.count


class _Burst:
    """A connection held across GETs (``ConnectionPool.hold``); ``until``: the GETs it ends after."""

    __slots__ = ("pool", "ends", "then", "until")

    def __init__(self, pool: ConnectionPool, ends: list[float], then: Callable[[int], None]) -> None:
        self.pool, self.ends, self.then, self.until = pool, ends, then, len(ends)

    def cut(self, env: simpy.Environment) -> None:
        done = bisect_left(self.ends, env.now) + 1  # the GET under way (one ending now still counts)
        if done < self.until:
            self.until = done
            call_later(env, self.ends[done - 1] - env.now, lambda _event: self.end(done))

    def end(self, done: int) -> None:
        if done != self.until:  # an end a cut has moved earlier, or one already taken
            return
        self.until = 0
        self.pool._bursts.discard(self)
        self.then(done)


class _Flow:
    """One bulk transfer on a ``Link``. Positions are in the link's virtual bytes (what every flow
    under way has been sent since the link began): it started at ``start`` and ends at ``finish``."""

    __slots__ = ("start", "finish", "then", "ended", "saturated")

    def __init__(self, start: float, nbytes: float, then: Callable[[], None]) -> None:
        self.start = start
        self.finish = start + nbytes
        self.then = then
        self.ended = False
        self.saturated = False
        """Its standing queue has reached ``standing_bytes_per_flow``."""


@dataclass
class Link:
    """A bottleneck of ``rate_bytes_per_s`` with a tbf queue of ``queue_s`` (rate 0: unshaped).

    Bulk flows share the rate equally (processor sharing), kept in virtual time: ``virtual`` grows
    by rate / flows per second, so a flow's bytes sent are ``virtual - start`` and it ends when
    ``virtual`` reaches its ``finish``. Nothing is touched per flow as time passes: an arrival, an
    end and a frame's delay cost O(log flows), whatever the number of flows."""

    env: simpy.Environment
    rate_bytes_per_s: float = 0.0
    queue_s: float = 0.0
    base_delay_s: float = 0.0002
    """One-way time of an idle link (loopback, a few hundred microseconds through two stacks)."""
    standing_bytes_per_flow: float = 40_000.0
    """Most bytes one bulk flow keeps waiting in the queue (its congestion window, grown)."""
    standing_fraction: float = 0.45
    """A flow's queued bytes grow with what it has sent (slow start): this share of it, up to the most
    above. 0: every flow keeps the most from its first byte."""
    queue_occupancy: float = 1.0
    """The share of ``queue_s`` the standing queue can fill (where this run sits in TCP's sawtooth)."""
    link_mbit: float = 0.0
    """The link's nominal rate, as a scenario names it (``rate_bytes_per_s`` is its goodput): what the
    server's receive CPU depends on (``model_params.receive_share``, the bound's too). 0: unshaped."""
    bytes_carried: float = 0.0
    virtual: float = 0.0
    _flows: int = 0
    _by_finish: list[tuple[float, int, _Flow]] = field(default_factory=list)
    _growing: deque[_Flow] = field(default_factory=deque)
    """Flows whose standing queue still grows, oldest first (lazily: ended ones are skipped)."""
    _growing_count: int = 0
    _growing_start_sum: float = 0.0
    _saturated: int = 0
    _last: float = 0.0
    _generation: int = 0
    _arrivals: int = 0

    @property
    def shaped(self) -> bool:
        return self.rate_bytes_per_s > 0

    @property
    def bulk_flows(self) -> int:
        return self._flows

    def frame_delay(self, nbytes: int) -> float:
        """One way for a small frame: the standing queue bulk flows keep full, then its own bytes."""
        self.bytes_carried += nbytes
        if self.rate_bytes_per_s <= 0:  # not shaped (``shaped`` inlined: this runs for every frame)
            return self.base_delay_s
        if self._flows:
            self._advance()
            standing = self._standing()
        else:
            standing = 0.0
        queue = min(self.queue_s * self.queue_occupancy, standing / self.rate_bytes_per_s)
        return self.base_delay_s + queue + nbytes / self.rate_bytes_per_s

    def _standing(self) -> float:
        """Bytes the flows under way keep queued: each min(cap, fraction x its bytes sent)."""
        cap, fraction, virtual = self.standing_bytes_per_flow, self.standing_fraction, self.virtual
        full_after = cap / fraction if fraction > 0 else 0.0
        growing = self._growing
        while growing and (growing[0].ended or virtual - growing[0].start >= full_after):
            flow = growing.popleft()
            if flow.ended:
                continue
            flow.saturated = True
            self._saturated += 1
            self._growing_count -= 1
            self._growing_start_sum -= flow.start
        grown = fraction * (self._growing_count * virtual - self._growing_start_sum) if self._growing_count else 0.0
        return cap * self._saturated + grown

    def transfer_then(self, nbytes: int, then: Callable[[], None]) -> None:
        """A bulk transfer (an upload body): shares the rate with the others under way; ``then()``
        when its last byte is through."""
        self.bytes_carried += nbytes
        if not self.shaped:
            call_later(self.env, self.base_delay_s, lambda _event: then())
            return
        self._advance()
        flow = _Flow(self.virtual, float(nbytes), then)
        self._flows += 1
        self._arrivals += 1
        heappush(self._by_finish, (flow.finish, self._arrivals, flow))
        self._growing.append(flow)
        self._growing_count += 1
        self._growing_start_sum += flow.start
        self._schedule()

    def transfer(self, nbytes: int) -> Generator[simpy.Event, Any, None]:
        """``transfer_then`` for a process."""
        done = self.env.event()
        self.transfer_then(nbytes, done.succeed)
        yield done

    def _advance(self) -> None:
        now = self.env.now
        if self._flows and now > self._last:
            self.virtual += self.rate_bytes_per_s / self._flows * (now - self._last)
        self._last = now

    def _schedule(self) -> None:
        self._generation += 1
        if not self._flows:
            return
        share_rate = self.rate_bytes_per_s / self._flows
        soonest = max(0.0, self._by_finish[0][0] - self.virtual) / share_rate
        generation = self._generation
        call_later(self.env, soonest, lambda _event: self._on_timer(generation))

    def _on_timer(self, generation: int) -> None:
        if generation != self._generation:
            return  # a newer arrival or departure rescheduled
        self._advance()
        by_finish = self._by_finish
        finished = []
        while by_finish and by_finish[0][0] - self.virtual <= 1e-6:
            finished.append(heappop(by_finish)[2])
        for flow in finished:
            self._end(flow)
        if not self._flows:
            self.virtual = 0.0  # idle: start afresh, so that positions stay small
            self._growing.clear()
            self._growing_start_sum = 0.0
        self._schedule()
        for flow in finished:
            flow.then()

    def _end(self, flow: _Flow) -> None:
        flow.ended = True
        self._flows -= 1
        if flow.saturated:
            self._saturated -= 1
        else:
            self._growing_count -= 1
            self._growing_start_sum -= flow.start
