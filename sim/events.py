"""SimPy's kernel and a few of its primitives, lighter, with the same order of events.

- ``Environment`` is ``simpy.Environment`` whose ``run(until=event)`` steps through the events in a
  loop of its own (``step()`` inlined): the same events, processed in the same order.
- ``first_of(a, b)`` stands for ``a | b`` where only "which one came first" matters: it is scheduled
  exactly when SimPy's ``AnyOf`` is, without building a ``ConditionValue``; the waiter asks the
  events themselves (``processed``) what happened, as it would ask the condition's value.
- ``call_at`` / ``call_later`` schedule a ``Call``: an event that only runs one callback (the server's
  and the network's steps are callbacks, not processes). It is an entry in SimPy's own queue, counted
  and ordered like any event, without a ``Timeout``'s value and bookkeeping.
- ``Deadlines``: give-up timers that are almost always cancelled, one event for the earliest.

This is the one module that touches SimPy's private state (``Environment._queue``, ``_eid``, ``_now``;
``Event._ok``, ``_value``): the rest of ``sim`` goes through the helpers below. They were read from
SimPy 4.1, which ``pyproject.toml`` pins to its minor release; ``tests/test_sim_events.py`` fails if a
new SimPy moves them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.core import StopSimulation
from simpy.events import NORMAL, PENDING


def is_pending(event: simpy.Event) -> bool:
    """Not triggered yet (SimPy's ``triggered`` is its negation; this spares the property call)."""
    return event._value is PENDING


def processed_now(event: simpy.Event, value: Any = None) -> None:
    """Mark ``event`` succeeded and already processed: a process that yields it goes on at once,
    without an event in the queue (what a free place or a ready answer needs)."""
    event._ok = True
    event._value = value
    event.callbacks = None


def succeed_in(env: simpy.Environment, event: simpy.Event, delay: float = 0.0, value: Any = None,
               first: Callable[[Any], None] | None = None) -> None:
    """``event.succeed(value)``, processed ``delay`` from now; ``first`` runs before its other callbacks."""
    if first is not None:
        event.callbacks.insert(0, first)
    event._ok = True
    event._value = value
    env.schedule(event, NORMAL, delay)


def events_scheduled(env: simpy.Environment) -> int:
    """How many events the environment scheduled (SimPy numbers them with a counter)."""
    return next(env._eid)  # type: ignore[attr-defined]


class Environment(simpy.Environment):
    def run(self, until: Any = None) -> Any:
        if not isinstance(until, simpy.Event):
            return super().run(until)
        if until.callbacks is None:
            return until.value
        until.callbacks.append(StopSimulation.callback)
        queue = self._queue
        while queue:
            self._now, _, _, event = heappop(queue)
            callbacks, event.callbacks = event.callbacks, None
            try:
                for callback in callbacks:
                    callback(event)
            except StopSimulation as stop:
                event.callbacks = callbacks[callbacks.index(callback) + 1:]
                self.schedule(event, -1)  # as simpy's step(), so that a later run() resumes it
                return stop.args[0]
            if not event._ok and not hasattr(event, "_defused"):
                error = type(event._value)(*event._value.args)
                error.__cause__ = event._value
                raise error
        raise RuntimeError(f'No scheduled events left but "until" event was not triggered: {until}')


class FirstOf(simpy.Event):
    """Triggered when the first of its events is processed (failed if that one failed)."""

    def __init__(self, env: simpy.Environment, events: tuple[simpy.Event, ...]) -> None:
        self.env = env
        self.callbacks = []
        for event in events:
            if event.callbacks is None:
                self._check(event)
            else:
                event.callbacks.append(self._check)

    def _check(self, event: simpy.Event) -> None:
        if self._value is not PENDING:
            return
        if event._ok:
            self._ok = True
            self._value = None
        else:
            event._defused = True
            self._ok = False
            self._value = event._value
        self.env.schedule(self, NORMAL)


def first_of(env: simpy.Environment, *events: simpy.Event) -> FirstOf:
    return FirstOf(env, events)


class Call:
    """An event that runs ``callback(event)`` when its time comes; nobody waits on it."""

    __slots__ = ("callbacks",)
    _ok = True

    def __init__(self, callback: Callable[[Any], None]) -> None:
        self.callbacks = [callback]


def call_at(env: simpy.Environment, at: float, callback: Callable[[Any], None]) -> None:
    heappush(env._queue, (at, NORMAL, next(env._eid), Call(callback)))  # type: ignore[attr-defined]


def call_later(env: simpy.Environment, delay: float, callback: Callable[[Any], None]) -> None:
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), Call(callback)))  # type: ignore[attr-defined]


class Deadlines:
    """Give-up timers that are almost always cancelled first (an upload's 120 s, an answer's 5 s).
    One event each would sit in SimPy's queue and fire for nothing; here they wait in a heap of their
    own, with one ``Call`` armed for the earliest. A deadline still fires at exactly its time."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self._heap: list[list[Any]] = []
        self._armed = math.inf
        self._calls_at: set[float] = set()
        self._count = 0

    def add(self, at: float, callback: Callable[[], None]) -> list[Any]:
        """``callback()`` at ``at`` unless cancelled; returns the handle for ``cancel``."""
        self._count += 1
        entry = [at, self._count, callback]
        heappush(self._heap, entry)
        if at < self._armed:
            self._arm(at)
        return entry

    @staticmethod
    def cancel(entry: list[Any]) -> None:
        entry[2] = None

    def _arm(self, at: float) -> None:
        self._armed = at
        if at not in self._calls_at:
            self._calls_at.add(at)
            call_at(self.env, at, self._fire)

    def _fire(self, _event: Any) -> None:
        now = self.env.now
        self._calls_at.discard(now)
        if now != self._armed:
            return  # an earlier deadline was armed after this call was scheduled
        self._armed = math.inf
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heappop(heap)
            callback, entry[2] = entry[2], None
            if callback is not None:
                callback()
        while heap and heap[0][2] is None:
            heappop(heap)
        if heap and heap[0][0] < self._armed:
            self._arm(heap[0][0])
