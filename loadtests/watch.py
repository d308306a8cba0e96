"""A real run that watches its own thresholds and stops when one marked ``abort_on_fail`` is crossed
(k6's ``abortOnFail``): a CI job learns in seconds what a full drop would have told it in minutes.

Every drop of this process registers its live state (its log of answers and uploads, its socket's and
browser's counters) in ``LiveDrops``; ``AbortWatch`` builds the run's record from them every second, in
the shape ``bulkbench gate`` reads a finished run (``bulkbench.thresholds``), and holds it to the watched
thresholds. Crossed: it says which, what it measured and when, and sets the run's ``stop`` event; each
drop then stops where it is, as its cap would stop it, and is judged (its open images ``unfinished``).
In distributed mode each worker watches the users it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.event

from bulkbench.strategies.common import DropLog
from bulkbench.thresholds import Gate, Threshold

WATCH_EVERY_S = 1.0


@dataclass(eq=False)
class LiveDrop:
    log: DropLog
    socket: Any
    """A ``DropSocket``: ``sent``, ``received``."""
    browser: Any
    """A ``Browser``: ``requests``, ``bytes_uploaded``."""


@dataclass
class LiveDrops:
    drops: list[LiveDrop] = field(default_factory=list)

    def record(self, identity: dict[str, Any]) -> dict[str, Any]:
        """What the run has measured so far, as ``bulkbench gate`` reads a run's record."""
        return {
            **identity, "_name": "live",
            "ws_messages_sent": sum(d.socket.sent for d in self.drops),
            "ws_messages_received": sum(d.socket.received for d in self.drops),
            "http_requests": sum(d.browser.requests for d in self.drops),
            "bytes_uploaded": sum(d.browser.bytes_uploaded for d in self.drops),
            "_samples": {"op_ack_ms": [s * 1000 for d in self.drops for s in d.log.op_ack_s],
                         "upload_ms": [s * 1000 for d in self.drops for s in d.log.upload_s]},
        }


def watched(gates: list[Gate], identity: dict[str, Any]) -> list[Threshold]:
    """The ``abort_on_fail`` thresholds of the gates that select this run."""
    return [t for gate in gates if gate.selects(identity) for t in gate.thresholds if t.abort_on_fail]


@dataclass
class AbortWatch:
    thresholds: list[Threshold]
    identity: dict[str, Any]
    live: LiveDrops
    stop: gevent.event.Event
    started: float = field(default_factory=time.monotonic)
    aborted: dict[str, Any] | None = None

    def check(self) -> dict[str, Any] | None:
        """Hold what was measured so far to each watched threshold due by now; the first crossed stops the run."""
        if self.aborted is not None:
            return self.aborted
        elapsed = time.monotonic() - self.started
        record = self.live.record(self.identity)
        for threshold in self.thresholds:
            if elapsed < threshold.delay_abort_eval_s:
                continue
            ok, measured = threshold.holds(record)
            if not ok and measured is not None:  # nothing measured yet is not a crossing
                self.aborted = {"threshold": threshold.text, "measured": measured, "at_s": round(elapsed, 2)}
                self.stop.set()
                print(f"[bulkbench] aborted: {threshold.text} crossed (measured {measured:g} at {elapsed:.1f} s)",
                      flush=True)
                return self.aborted
        return None

    def run(self, stopped: Callable[[], bool], max_seconds: float = 7200.0) -> None:
        while not stopped() and time.monotonic() - self.started < max_seconds and self.check() is None:
            gevent.sleep(WATCH_EVERY_S)
