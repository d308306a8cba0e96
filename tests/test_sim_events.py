"""The model's light event primitives (``sim/events.py``): calls and deadlines on SimPy's own queue."""

from __future__ import annotations

from collections.abc import Generator

import simpy

from sim.events import Deadlines, call_later
from sim.run import events_scheduled


def test_deadlines_fire_at_their_exact_time_unless_cancelled() -> None:
    env = simpy.Environment()
    deadlines, fired = Deadlines(env), []
    deadlines.add(5.0, lambda: fired.append(("a", env.now)))
    cancelled = deadlines.add(3.0, lambda: fired.append(("b", env.now)))
    deadlines.add(7.25, lambda: fired.append(("c", env.now)))
    call_later(env, 1.0, lambda _event: Deadlines.cancel(cancelled))
    env.run(until=10.0)
    assert fired == [("a", 5.0), ("c", 7.25)]


def test_a_deadline_added_while_one_fires_still_fires() -> None:
    env = simpy.Environment()
    deadlines, fired = Deadlines(env), []

    def first() -> None:
        fired.append(env.now)
        deadlines.add(env.now + 2.0, lambda: fired.append(env.now))

    deadlines.add(1.0, first)
    env.run(until=10.0)
    assert fired == [1.0, 3.0]


def test_cancelled_deadlines_cost_almost_no_events() -> None:
    """1000 requests, each with a 120 s deadline cancelled after 1 s: one event per request (its own
    timeout) and a handful for the deadlines, where a timer each would double the count."""
    env = simpy.Environment()
    deadlines = Deadlines(env)

    def requests() -> Generator:
        for _ in range(1000):
            handle = deadlines.add(env.now + 120.0, lambda: None)
            yield env.timeout(1.0)
            Deadlines.cancel(handle)

    env.process(requests())
    env.run()
    assert events_scheduled(env) < 1000 + 30
