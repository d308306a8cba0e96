"""The SimPy driver: a strategy's effects performed in simulated time.

``SimClient`` is one user's browser. It runs the strategy generator as a SimPy process, turning
each effect into SimPy events (a ``Sleep`` is a ``Timeout``, a named queue is a ``Store``, a
``Spawn`` is a child ``Process``); what crosses the network (operations, uploads, GETs) it hands
to a ``World``, the model of everything between the browser and the server's disk. A process
ends only when the processes it spawned have ended, so a drop is over when all its work is.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Generator
from typing import Any, Protocol

import simpy

from bulkbench.effects import (
    Answer,
    AnswerKind,
    AwaitAnswers,
    Fetch,
    Hash,
    HttpResult,
    Join,
    Now,
    Post,
    Put,
    Reconnect,
    SendFrame,
    SendOp,
    Sleep,
    Spawn,
    Take,
    Upload,
)
from bulkbench.protocol import OpType
from bulkbench.workload import ImageSpec
from sim.events import Deadlines, first_of, is_pending

SimGenerator = Generator[simpy.Event, Any, Any]
_GAVE_UP = object()
"""The value of an answer's event when its waiter timed out first."""


_STATUS_KEYS = {status: str(status) for status in (0, 200, 400, 404, 409, 413, 429, 500, 503)}
"""``http_by_status`` keys of the usual answers, made once (every GET counts one)."""


class _Queue:
    """A named FIFO of a drop: a ``Take`` with an item waiting costs no event at all."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.items: deque[Any] = deque()
        self.takers: deque[simpy.Event] = deque()

    def put(self, item: Any) -> None:
        while self.takers:
            taker = self.takers.popleft()
            if not taker.triggered:  # not given up on (a Take that timed out)
                taker.succeed(item)
                return
        self.items.append(item)

    def take(self, timeout_s: float | None) -> SimGenerator:
        if self.items:
            return self.items.popleft()
        taker = self.env.event()
        self.takers.append(taker)
        if timeout_s is None:
            return (yield taker)
        yield first_of(self.env, taker, self.env.timeout(timeout_s))
        if taker.triggered:
            return taker.value
        taker.fail(TimeoutError())  # mark it given up; put() skips it
        taker.defused = True
        return None


class World(Protocol):
    """Everything between one browser and the server's state, in simulated time."""

    def hash_seconds(self, client: SimClient, image: ImageSpec) -> float: ...

    def send_op(self, client: SimClient, operation_id: str, op_type: OpType, params: dict[str, Any]) -> None:
        """Start carrying the frame to the server; its answer comes back through ``client.deliver``."""
        ...

    def send_frame(self, client: SimClient, event: str, data: dict[str, Any]) -> None: ...

    def upload(self, client: SimClient, image: ImageSpec, digest: str, timeout_s: float) -> SimGenerator: ...

    def fetch(self, client: SimClient, paths: tuple[str, ...], timeout_s: float,
              until_refused: bool = False) -> SimGenerator: ...

    def post(self, client: SimClient, path: str, body: dict[str, Any], timeout_s: float) -> SimGenerator: ...

    def reconnect(self, client: SimClient, rejoin: bool) -> None:
        """The browser's socket closed and a new one opened (joined to the canvas again only if ``rejoin``)."""
        ...


class SimClient:
    """One user's browser: its queues, its pending answers, and what it sent and received."""

    def __init__(self, env: simpy.Environment, world: World, user: int = 0, canvas_id: str = "") -> None:
        self.env = env
        self.world = world
        self.user = user
        self.canvas_id = canvas_id
        self.started_at = env.now
        self.first_byte_at: float | None = None
        self.queues: dict[str, _Queue] = {}
        self.answers: dict[str, simpy.Event] = {}
        self.sent_at: dict[str, float] = {}
        self.ws_messages_sent = 0
        self.ws_messages_received = 0
        self.frames_arriving: list[float] = []
        """Arrival times of frames that are only counted (see ``receive_frame_at``)."""
        self.http_requests = 0
        self.upload_attempts = 0
        self.http_by_status: dict[str, int] = {}
        """Answers by status, as the real engine counts them ("0": none)."""
        self.bytes_uploaded = 0
        self.deadlines = Deadlines(env)
        """When this browser gives up waiting (for an answer, an upload)."""

    # ------------------------------------------------------------------ called by the world

    def note_first_byte(self) -> None:
        if self.first_byte_at is None:
            self.first_byte_at = self.env.now

    def deliver(self, operation_id: str, answer: Answer) -> None:
        """An answer frame reached the browser (late answers to abandoned operations are dropped)."""
        self.ws_messages_received += 1
        event = self.answers.get(operation_id)
        if event is not None and not event.triggered:
            sent = self.sent_at.get(operation_id, self.env.now)
            event.succeed(Answer(answer.kind, answer.data, self.env.now - sent))

    def receive_frame_at(self, arrival_s: float) -> None:
        """A frame that nothing waits for, reaching the browser at ``arrival_s``: no event; it counts
        once the run is over if it arrived by then (``count_frames_until``)."""
        self.frames_arriving.append(arrival_s)

    def count_frames_until(self, now: float) -> None:
        """At the end of a run: the frames of ``receive_frame_at`` that arrived by ``now`` are received."""
        self.ws_messages_received += sum(1 for arrival in self.frames_arriving if arrival <= now)
        self.frames_arriving.clear()

    def _count_status(self, status: int) -> None:
        key = _STATUS_KEYS.get(status) or str(status)
        self.http_by_status[key] = self.http_by_status.get(key, 0) + 1

    # ------------------------------------------------------------------ running a strategy

    def run(self, strategy: Generator[Any, Any, Any]) -> simpy.Process:
        return self.env.process(self._run(strategy))

    @property
    def now(self) -> float:
        return self.env.now - self.started_at

    def _run(self, strategy: Generator[Any, Any, Any]) -> SimGenerator:
        """Drive one process of a strategy. Effects that take no simulated time are answered on the
        spot (no SimPy event, no generator); the others become events."""
        children: list[simpy.Process] = []
        value: Any = None
        send = strategy.send
        while True:
            try:
                effect = send(value)
            except StopIteration:
                break
            kind = type(effect)
            if kind is Now:
                value = self.env.now - self.started_at
            elif kind is Put:
                self._queue(effect.queue).put(effect.item)
                value = None
            elif kind is SendOp:
                self._send_op(effect)
                value = None
            elif kind is SendFrame:
                self.ws_messages_sent += 1
                self.note_first_byte()
                self.world.send_frame(self, effect.event, effect.data)
                value = None
            elif kind is Spawn:
                value = self.env.process(self._run(effect.process))
                children.append(value)
            elif kind is Sleep:
                value = yield self.env.timeout(max(0.0, effect.seconds))
            elif kind is Take:
                value = yield from self._queue(effect.queue).take(effect.timeout_s)
            elif kind is Fetch:  # the commonest effect that takes time: one generator fewer per GET
                value = yield from self.world.fetch(self, effect.paths, effect.timeout_s, effect.until_refused)
                self.http_requests += len(value)  # until_refused: those made, not those asked for
                for fetched in value:
                    self._count_status(fetched.status)
            else:
                value = yield from self._perform(effect)
        live = [child for child in children if child.is_alive]
        if live:
            yield self.env.all_of(live)

    def _queue(self, name: str) -> _Queue:
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = _Queue(self.env)
        return queue

    def _send_op(self, effect: SendOp) -> None:
        operation_id = effect.operation_id
        event = self.answers.get(operation_id)
        if event is None or event.triggered:
            self.answers[operation_id] = self.env.event()
        self.sent_at[operation_id] = self.env.now
        self.ws_messages_sent += 1
        self.note_first_byte()
        self.world.send_op(self, operation_id, effect.op_type, effect.params)

    def _give_up(self, operation_id: str, event: simpy.Event) -> None:
        """An answer's wait timed out: wake the waiter; a late answer (or a resend of the same id)
        finds a fresh event, as it would find the one nobody waits for any more."""
        if event.triggered:
            return
        if self.answers.get(operation_id) is event:
            self.answers[operation_id] = self.env.event()
        event.succeed(_GAVE_UP)

    def _perform(self, effect: Any) -> SimGenerator:
        env = self.env
        match effect:  # the commonest first
            case AwaitAnswers(operation_ids, timeout_s):
                waiting = {op: self.answers.get(op) or self.answers.setdefault(op, env.event())
                           for op in operation_ids}
                pending = [(op, e) for op, e in waiting.items() if is_pending(e)]
                if len(pending) == 1:  # the answer itself wakes the waiter; the timer, if first, too
                    op, event = pending[0]
                    deadline = self.deadlines.add(env.now + timeout_s, lambda: self._give_up(op, event))
                    yield event
                    Deadlines.cancel(deadline)
                elif pending:
                    yield first_of(env, env.all_of([e for _op, e in pending]), env.timeout(timeout_s))
                out = {}
                for op, event in waiting.items():
                    if event.triggered and event.value is not _GAVE_UP:
                        out[op] = event.value
                        del self.answers[op]
                    else:
                        out[op] = Answer(AnswerKind.TIMEOUT)
                return out
            case Upload(image, digest, timeout_s):
                self.http_requests += 1
                self.upload_attempts += 1
                self.note_first_byte()
                result: HttpResult = yield from self.world.upload(self, image, digest, timeout_s)
                self._count_status(result.status)
                return result
            case Hash(image):
                yield env.timeout(self.world.hash_seconds(self, image))
                # a digest as long as a real one: batches are chunked by their size in bytes
                return hashlib.sha256(image.seed.encode()).hexdigest()
            case Post(path, body, timeout_s):
                self.http_requests += 1
                posted: HttpResult = yield from self.world.post(self, path, body, timeout_s)
                self._count_status(posted.status)
                return posted
            case Join(handles):
                live = [h for h in handles if h.is_alive]
                if live:
                    yield env.all_of(live)
                return None
            case Reconnect(rejoin):
                self.world.reconnect(self, rejoin)
                return None
        raise TypeError(f"not an effect: {effect!r}")
