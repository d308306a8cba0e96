"""SimPy's kernel and two of its primitives, lighter, with the same order of events.

- ``Environment`` is ``simpy.Environment`` whose ``run(until=event)`` steps through the events in a
  loop of its own (``step()`` inlined): the same events, processed in the same order.
- ``first_of(a, b)`` stands for ``a | b`` where only "which one came first" matters: it is scheduled
  exactly when SimPy's ``AnyOf`` is, without building a ``ConditionValue``; the waiter asks the
  events themselves (``processed``) what happened, as it would ask the condition's value.
- ``Task`` is a ``Process`` that nobody waits for (a request the server works on, a thumbnail made
  after the answer): it starts when a ``Process`` starts, but its end schedules nothing, since
  SimPy's event for it would have no callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from heapq import heappop
from typing import Any

import simpy
from simpy.core import StopSimulation
from simpy.events import NORMAL, PENDING, URGENT


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


class Task:
    """Runs ``generator`` like ``env.process(generator)`` would, for a process nobody waits for; its
    return value, if wanted, goes to ``then``. It starts as a process does (an urgent event now), or
    after ``delay`` (one timeout instead of an initial event plus the generator's first timeout), or
    at once (``now``: within the caller's step, no event)."""

    __slots__ = ("generator", "then")

    def __init__(self, env: simpy.Environment, generator: Generator[simpy.Event, Any, Any],
                 delay: float | None = None, now: bool = False,
                 then: Callable[[Any], None] | None = None) -> None:
        self.generator = generator
        self.then = then
        start = simpy.Event(env)
        start._ok = True
        start._value = None
        if now:
            self._resume(start)
            return
        start.callbacks.append(self._resume)
        if delay is None:
            env.schedule(start, URGENT)
        else:
            env.schedule(start, NORMAL, delay)

    def _resume(self, event: simpy.Event) -> None:
        generator = self.generator
        while True:
            try:
                if event._ok:
                    event = generator.send(event._value)
                else:
                    event._defused = True
                    error = type(event._value)(*event._value.args)
                    error.__cause__ = event._value
                    event = generator.throw(error)
            except StopIteration as stop:
                if self.then is not None:
                    self.then(stop.value)
                return
            if event.callbacks is not None:
                event.callbacks.append(self._resume)
                return
