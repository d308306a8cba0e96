"""The load generator's browser: its 6 connections serve waiting requests in turn, as a browser does."""

from __future__ import annotations

import gevent

from loadtests.browser import FairGate


def test_a_freed_place_goes_to_the_longest_waiter_not_back_to_the_releaser() -> None:
    gate = FairGate(2)
    assert gate.acquire(1.0) and gate.acquire(1.0)  # both places held here
    served: list[str] = []

    def waiter(name: str) -> None:
        assert gate.acquire(5.0)
        served.append(name)

    waiters = [gevent.spawn(waiter, name) for name in ("first", "second")]
    gevent.idle()  # every ready greenlet has run: both are in line
    assert len(gate.waiting) == 2
    gate.release()
    assert gate.acquire(0.0) is False  # asking again at once does not jump the line (urllib3's pool let it)
    gate.release()
    gevent.joinall(waiters, timeout=5.0, raise_error=True)
    assert served == ["first", "second"]
    assert gate.free == 0 and not gate.waiting  # the two places are held by the two waiters


def test_a_waiter_that_times_out_leaves_the_line() -> None:
    gate = FairGate(1)
    assert gate.acquire(1.0)
    assert gate.acquire(0.0) is False
    assert not gate.waiting
    gate.release()
    assert gate.free == 1
