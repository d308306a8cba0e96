"""The model's light event primitives (``sim/events.py``): calls and deadlines on SimPy's own queue."""

from __future__ import annotations

from collections.abc import Generator

import simpy

from sim.events import Deadlines, Environment, call_later, events_scheduled, is_pending, processed_now, succeed_in


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


def test_simpys_private_state_is_where_sim_events_reads_it() -> None:
    """SimPy may move these in any release: if this fails, a new SimPy came in (the pin in pyproject.toml
    names the minor release they were read from) and ``sim/events.py`` must be read again against it."""
    from simpy.core import StopSimulation
    from simpy.events import NORMAL, PENDING
    env = simpy.Environment()
    assert isinstance(env._queue, list) and env._now == 0 and next(env._eid) == 0
    event = env.event()
    assert event._value is PENDING and event.callbacks == [] and NORMAL == 1
    event.succeed(7)
    assert event._ok is True and event._value == 7 and env._queue[0][3] is event
    assert callable(StopSimulation.callback)


def test_the_helpers_behave_as_simpys_own_calls() -> None:
    """A place granted on the spot resumes its process at once; ``succeed_in`` is ``succeed`` later,
    with a callback run first; both seen through SimPy's public API."""
    env = Environment()
    seen: list[tuple[str, float, object]] = []
    granted, later = env.event(), env.event()
    processed_now(granted, "now")
    later.callbacks.append(lambda e: seen.append(("callback", env.now, e.value)))

    def process() -> Generator[simpy.Event, object, None]:
        value = yield granted
        seen.append(("granted", env.now, value))
        assert is_pending(later) and not later.triggered
        succeed_in(env, later, 2.5, "done", first=lambda e: seen.append(("first", env.now, e.value)))
        assert not is_pending(later) and later.triggered
        value = yield later
        seen.append(("later", env.now, value))

    env.run(until=env.process(process()))
    assert seen == [("granted", 0, "now"), ("first", 2.5, "done"), ("callback", 2.5, "done"),
                    ("later", 2.5, "done")]


def test_a_burst_of_gets_lets_go_of_its_connection_where_an_upload_starts_waiting() -> None:
    """``ConnectionPool.hold``: a burst keeps its connection from GET to GET while only patient requests
    (other bursts' GETs) wait; an upload that has to wait cuts it at the end of the GET under way and
    takes the connection there, as it would have had the browser let go after each GET."""
    from sim.components import ConnectionPool

    env = Environment()
    pool = ConnectionPool(env, connections=1)
    ended: dict[str, tuple[float, int]] = {}

    def burst(name: str, ends: list[float]) -> Generator:
        connection = pool.connections.request(patient=True)
        if connection.callbacks is not None:
            yield connection
        held = env.event()
        pool.hold([env.now + end for end in ends], held.succeed)
        done = yield held
        ended[name] = env.now, done
        pool.connections.release(connection)

    def upload(at: float) -> Generator:
        yield env.timeout(at)
        connection = pool.connections.request()
        yield connection
        ended["upload"] = env.now, 0
        pool.connections.release(connection)

    env.process(burst("first", [1.0, 2.0, 3.0, 4.0]))
    env.process(burst("patient", [0.5, 1.0]))  # waits behind the first burst, and does not cut it
    env.process(upload(1.5))
    env.run()
    assert ended["first"] == (2.0, 2)  # cut at the end of its second GET
    assert ended["patient"] == (2.5, 1)  # first in line; granted with the upload still waiting: one GET
    assert ended["upload"] == (2.5, 0)
    assert pool.connections.impatient_waiting == 0 and pool.in_use == 0
