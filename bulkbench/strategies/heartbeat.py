"""A page's own heartbeat, played on its busy main thread: when a late answer makes the page drop its socket.

Why: fc1316b's page pings its server every 10 s and, 10 s after each ping, checks its last answer; if that
is over 30 s old it closes its socket and opens a new one, which never joins the canvas again
(``NetworkLayer.js:680-716``, ``:130``), so the server refuses every later operation. The server answers at
once: what makes an answer late is the page's main thread. The interval's task, the answer's handler and
the check are tasks of that thread, and each runs when the thread gets to it. On a page busy 95-100 % they
wait a few seconds at the median and, now and then, 10-40 s (the browser runs recorded in
``examples/validation/browser-slower``): one such stall, timed so the check runs before the answer, and
the socket is gone.

How: each task waits what the page's thread holds when it is posted (its long work under way and the
canvas's load: ``individual``'s ``heartbeat_wait_s``) times a draw of mean ``wait_scale`` and shape
``wait_shape`` (a gamma: the spread of the real page's waits around that load, ``calibrate --heartbeat``).
Answers on one socket are handled in the order they came; a handled answer cancels the check of the latest
ping only (the page keeps one timeout handle and overwrites it with every ping). Once it drops the socket,
the old socket's answers never come, its older checks still run, and the new socket's handler pings at once
and starts the interval again (``NetworkLayer.js`` ``startHeartbeat``).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from bulkbench.config import ConfigError
from bulkbench.effects import NOW, Reconnect, Take
from bulkbench.strategies.common import DropLog


@dataclass(frozen=True, slots=True)
class HeartbeatRule:
    every_s: float
    """A ping this often (the page's ``setInterval``: it does not drift with the delays of its tasks)."""
    check_s: float
    """Each ping's check runs this long after it (its ``setTimeout``)..."""
    dead_s: float
    """... and drops the socket if the last answer handled is older than this."""
    rejoin: bool
    """The new socket joins the canvas again (fc1316b's does not)."""
    wait_scale: float
    """A heartbeat task waits ``wait_scale`` times what the page's thread holds when it is posted, on average ..."""
    wait_shape: float
    """... spread as a gamma of this shape (1: exponential; larger: narrower)."""

    def __post_init__(self) -> None:
        if not (self.every_s > 0 and self.check_s > 0 and self.dead_s > 0 and self.wait_scale > 0
                and self.wait_shape > 0):
            raise ConfigError(f"heartbeat: every, check, dead, wait scale and wait shape must be > 0, got {self}")

    def wait_draw(self, chance: random.Random) -> float:
        return chance.gammavariate(self.wait_shape, self.wait_scale / self.wait_shape)


def heartbeat(rule: HeartbeatRule, step_wait_s: Callable[[float], float], chance: random.Random, log: DropLog,
              stop_queue: str) -> Generator[Any, Any, None]:
    """The page's heartbeat until ``stop_queue`` has an item; ``step_wait_s(now)``: what a task posted now
    waits before the draw. Records each ping in ``log.heartbeats`` and each reconnection in
    ``log.reconnected_at``."""
    start = yield NOW
    due: list[tuple[float, int, str, int]] = []
    """By when they run: (at, tie-break, kind, ping). Timers ("interval", "timeout") fire on time and post a
    task ("ping", "check"); the answer to a ping is a task ("answer") as soon as it is sent; a new socket's
    "connect" handler pings at once and starts the interval again."""
    order, pings = 0, 0
    in_order = {"ping": start, "answer": start}
    """The page's interval runs its pings in order, and its socket hands it answers in order."""

    def post(at: float, kind: str, ping: int, waits: bool = True) -> None:
        nonlocal order
        order += 1
        runs = at + step_wait_s(at) * rule.wait_draw(chance) if waits else at
        if kind in in_order:
            runs = in_order[kind] = max(runs, in_order[kind])
        heapq.heappush(due, (runs, order, kind, ping))

    def send_ping(at: float) -> None:
        nonlocal latest, pings
        latest, pings = pings, pings + 1
        beats[latest] = [round(at - start, 3), None]
        log.heartbeats.append(beats[latest])
        post(at, "answer", latest)
        post(at + rule.check_s, "timeout", latest, waits=False)

    post(start + rule.every_s, "interval", 0, waits=False)
    last_answer = start
    """The page answered a ping just before the drop (it pings on connecting)."""
    latest = -1
    cancelled: set[int] = set()
    beats: dict[int, list[float | None]] = {}
    while True:
        now = yield NOW
        at, _order, kind, ping = due[0]
        if (yield Take(stop_queue, timeout_s=max(0.0, at - now))) is not None:
            return
        heapq.heappop(due)
        if kind == "interval":  # the timer fired; its task runs when the thread gets to it
            post(at, "ping", 0)
            post(at + rule.every_s, "interval", 0, waits=False)
        elif kind == "ping":
            send_ping(at)
        elif kind == "timeout":  # the check's timer fired; its task too runs when the thread gets to it
            post(at, "check", ping)
        elif kind == "answer":
            last_answer = at
            cancelled.add(latest)
            beats[ping][1] = round(at - start - beats[ping][0], 3)  # type: ignore[operator]  # sent at: a float
        elif kind == "connect":  # the new socket's handler: a ping at once, and the interval from now
            in_order["answer"] = at
            send_ping(at)
            post(at + rule.every_s, "interval", 0, waits=False)
        elif ping not in cancelled and at - last_answer > rule.dead_s:
            log.reconnected_at.append(round(at - start, 3))
            yield Reconnect(rejoin=rule.rejoin)
            # the old socket's answers never come; its interval and latest timeout are cleared, older
            # timeouts are not (the page keeps one handle), and the new socket connects
            cancelled.add(latest)
            due = [task for task in due if task[2] in ("timeout", "check")]
            heapq.heapify(due)
            post(at, "connect", 0)
