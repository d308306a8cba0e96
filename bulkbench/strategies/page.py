"""A page's main thread: what every step of the page's own script waits for.

Why it is modelled at all: in a browser, hashing a file, sending an operation, handling its answer,
starting an upload and taking its result are all tasks of one thread, and between tasks the page draws
a frame. Two kinds of work keep that thread busy, and they delay a step differently:
- long work the page queues for itself (making every file's preview, reading every file again and
  cutting its own thumbnails from it): one piece after another, and a step waits for the piece under way
  and every piece queued before it;
- the frame: drawn between tasks, so every step waits for one. When the canvas is busy it is long
  (fc1316b re-sorts its texture queue on every request and drains it only in idle time,
  ``TextureLODManager.js:274-286``), and then every upload and every operation slows down.
Short steps do not wait for each other: the thread runs many short tasks between two frames.

Or, ``serial``: every step is a task of its own, as long as a frame, and the thread runs one at a time in the
order they were posted. That is what a page does whose thread is busy all the time (fc1316b's on a slow
machine: 77-98 % of it in long tasks for the whole drop, 0.2 s each at first; the busy series of
``examples/validation/browser-harness``): a step waits for every step posted before it, so uploads, hashes and
operations share one pace.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from bulkbench.effects import NOW, Sleep


@dataclass(slots=True)
class MainThread:
    """The page's one thread; ``frame_s(now)`` is how long the frame drawn before a step takes at ``now``."""

    frame_s: Callable[[float], float]
    serial: bool = False
    """Every step holds the thread for its frame, one step at a time (see the module's docstring)."""
    busy_until: float = 0.0
    """When the work queued so far ends (seconds since the drop started): the long work, or, ``serial``, every
    step's."""

    def backlog_s(self, now: float) -> float:
        """The work still queued at ``now``: the long work, or, ``serial``, every step's."""
        return max(0.0, self.busy_until - now)

    def wait_s(self, now: float) -> float:
        """How long a step posted at ``now`` waits before its own work starts."""
        return self.backlog_s(now) + self.frame_s(now)

    def step(self, own_s: float = 0.0) -> Generator[Any, Any, None]:
        """A task of the page's script: it waits for the long work queued before it and a frame, then
        does its own work (``own_s`` > 0: long work, which the steps after it wait for in turn)."""
        now = yield NOW
        end = now + self.wait_s(now) + own_s
        if own_s or self.serial:
            self.busy_until = end
        yield Sleep(end - now)
