"""The vocabulary a strategy speaks: effects it yields, and what it gets back.

A strategy is a generator: it yields an effect, its driver performs it (in simulated time in
``sim/``, for real under gevent in ``loadtests/``) and sends the outcome back in. So a strategy
reads top to bottom like the client it describes, and never knows which engine runs it; the
model and the load test cannot drift apart.

Concurrency inside a drop (two hashers, twelve upload slots, one operation queue, an orphan
sweeper) is ``Spawn`` plus ``Join``; processes talk through named queues (``Put`` / ``Take``),
as a browser's callbacks talk through its queues.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bulkbench.protocol import OpType
from bulkbench.workload import ImageSpec

BROWSER_CONNECTIONS_PER_HOST = 6
"""HTTP/1.1 browsers open at most this many connections to one host: uploads and GETs share them."""

# --------------------------------------------------------------------------- effects


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait this long (a merge window, a pause between waves, a back-off)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Now:
    """Seconds since the drop started."""


NOW = Now()
"""The one ``Now`` a strategy yields: ``at = yield NOW``."""


@dataclass(frozen=True, slots=True)
class Spawn:
    """Start another process of this drop; the answer is a handle to ``Join``."""

    process: Generator[Any, Any, Any]
    name: str = ""


@dataclass(frozen=True, slots=True)
class Join:
    """Wait until every given process has ended."""

    handles: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Put:
    """Append an item to a named FIFO queue of this drop."""

    queue: str
    item: Any


@dataclass(frozen=True, slots=True)
class Take:
    """Take the oldest item of a named queue, waiting for one; ``None`` after ``timeout_s``."""

    queue: str
    timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class Hash:
    """The client computes an image's SHA-256 (browser CPU time); the answer is the hex digest."""

    image: ImageSpec


@dataclass(frozen=True, slots=True)
class SendOp:
    """Send one ``execute_operation`` on the drop's WebSocket (returns once the frame is written)."""

    operation_id: str
    op_type: OpType
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SendFrame:
    """Send a frame that is not an operation (``request_undo_state``, ``request_full_sync``)."""

    event: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AwaitAnswers:
    """Wait for the answers (ack or rejection) to these operations, up to ``timeout_s`` in all."""

    operation_ids: tuple[str, ...]
    timeout_s: float


@dataclass(frozen=True, slots=True)
class Upload:
    """``POST /api/upload`` of one image through the browser's connection pool."""

    image: ImageSpec
    digest: str
    timeout_s: float


@dataclass(frozen=True, slots=True)
class Fetch:
    """``GET`` these paths one after another through the same pool (a node's viewport thumbnails);
    the answer is one ``HttpResult`` per path."""

    paths: tuple[str, ...]
    timeout_s: float = 30.0
    until_refused: bool = False
    """Stop after the first 429/503: the server asked for a pause, the rest would be refused too."""


@dataclass(frozen=True, slots=True)
class Post:
    """``POST`` a small JSON body through the same pool (a page's call such as ImageCanvas's
    ``/api/thumbnails/generate``); the answer is its ``HttpResult``."""

    path: str
    body: dict[str, Any]
    timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Close the drop's socket and open a new one; ``rejoin`` False: the new socket does not join the canvas
    again, so the server refuses its operations (fc1316b's heartbeat reconnection: ``NetworkLayer.js:130``
    joins again only when the page holds a ``currentUser``, which it does not)."""

    rejoin: bool = False


Effect = (Sleep | Now | Spawn | Join | Put | Take | Hash | SendOp | SendFrame | AwaitAnswers | Upload | Fetch | Post
          | Reconnect)
Strategy = Generator[Effect, Any, None]


# --------------------------------------------------------------------------- outcomes


class AnswerKind(StrEnum):
    ACK = "ack"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    CONNECTION_LOST = "connection_lost"


@dataclass(frozen=True, slots=True)
class Answer:
    kind: AnswerKind
    data: dict[str, Any] = field(default_factory=dict)
    latency_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.kind is AnswerKind.ACK

    @property
    def retry_after_s(self) -> float | None:
        ms = self.data.get("retryAfterMs")
        return ms / 1000.0 if isinstance(ms, int | float) else None


@dataclass(frozen=True, slots=True)
class HttpResult:
    """What an HTTP request came to: ``status`` 0 means no answer (timeout or connection error)."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    latency_s: float = 0.0
    retry_after_s: float | None = None
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def refused(self) -> bool:
        """The server asked for a pause (429: rate limit; 503: overloaded, or a thumbnail still owed)."""
        return self.status in (429, 503)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for, in either of its forms (RFC 9110: delay-seconds or an
    HTTP-date); None when absent or unreadable. ``now``: the wall clock to measure a date from."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
