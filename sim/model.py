"""The reference server and the network, in simulated time: the ``World`` strategies run against.

``ServerModel`` has the profile's stages (same names, workers, queue limits, admission control),
its rate limit, its persistence and thumbnail policies and its message limits; it applies every
operation to a real ``bulkbench.canvas.Canvas``, so the truth judged at the end is the same rule
as in real runs. Service time of a job = the real work's cost (``work_ms`` + ``work_per_item_ms``
x items, fitted by ``bulkbench calibrate``) + the profile's emulated time, with the same items as
the real server counts. ``ModelWorld`` adds what lies between the browser and the server: one
shared ``Link`` (the shaped loopback of real runs) and each browser's ``ConnectionPool``.

The server's side is written as callbacks (``then``) on light ``Call`` events, not as a SimPy
process per request: a request is the model's most frequent thing, and a process per request cost
most of a run's time. The browsers' side stays processes (``sim/driver.py``), as strategies are.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import simpy

from bulkbench.canvas import Applied, Canvas
from bulkbench.effects import Answer, AnswerKind, HttpResult
from bulkbench.limits import MIB
from bulkbench.model_params import ModelParams, mean_work_s
from bulkbench.profile import STAGE_NAMES, Overloaded, Profile
from bulkbench.protocol import (
    BATCH_OPS,
    ErrorCode,
    Event,
    OpType,
    ProtocolError,
    execute_operation_frame,
    frame_bytes,
    parse_operation,
)
from bulkbench.ratelimit import RateLimiter
from bulkbench.workload import ImageSpec
from sim.components import ConnectionPool, Held, Link, Slots, Stage
from sim.driver import SimClient
from sim.events import Deadlines, call_later, succeed_in

CPU_BOUND_STAGES = frozenset({"upload", "thumbnail"})
"""Stages whose work runs in threads and holds a core while it does (first come, first served: a
coarse stand-in for the OS scheduler; the event loop's short jobs are left out of it)."""


@dataclass(eq=False)
class SimRoom:
    canvas: Canvas
    acks: dict[str, Answer] = field(default_factory=dict)
    members: list[SimClient] = field(default_factory=list)
    undo_count: int = 0


class ServerModel:
    def __init__(self, env: simpy.Environment, profile: Profile, params: ModelParams, rng: random.Random) -> None:
        self.env = env
        self.profile = profile
        self.params = params
        self.rng = rng
        self.stages = {
            name: Stage(env, name, profile.stage(name).workers, profile.stage(name).queue_limit,
                        profile.admission_control, profile.retry_after_s)
            for name in STAGE_NAMES
        }
        self.specs = {name: profile.stage(name) for name in STAGE_NAMES}
        self.rooms: dict[str, SimRoom] = {}
        self.stored: set[str] = set()
        self.by_hash: dict[str, str] = {}
        self.thumbnails: dict[str, tuple[int, ...]] = {}
        """Stored file's stem -> the thumbnail sizes it has (the profile's plan for its pixels)."""
        self.rate_limiter = RateLimiter(profile.rate_limit) if profile.rate_limit else None
        self.cpu = Slots(env, max(1, params.server_cpus))
        self.uploads_in_flight = 0
        """Upload bodies admitted and not yet answered (``Limits.max_uploads_in_flight``)."""
        self.thumbnail_backlog: deque[tuple[str, float]] = deque()
        """After-the-answer thumbnail jobs (stem, items) a full stage refused, waiting their turn."""
        self.thumbnails_pending: set[str] = set()
        """Stored files whose after-the-answer thumbnails are not made yet (a GET: 503, come back)."""
        self._names = 0

    # ------------------------------------------------------------------ costs

    def work_s(self, stage: str, items: float) -> float:
        """The real work of one job (drawn around its fitted mean)."""
        spec = self.specs[stage]
        mean = mean_work_s(spec, self.params, stage, items)
        cv = spec.work_cv or self.params.service_cv
        if cv <= 0 or mean <= 0:
            return mean
        shape = 1.0 / (cv * cv)
        return self.rng.gammavariate(shape, mean / shape)

    def emulated_s(self, stage: str, items: float) -> float:
        return self.specs[stage].emulated_s(items) if self.profile.emulation else 0.0

    def service_s(self, stage: str, items: float) -> float:
        return self.work_s(stage, items) + self.emulated_s(stage, items)

    def serve(self, stage: str, items: float, then: Callable[[], None]) -> None:
        """One job, then ``then()``: a worker of the stage; for a CPU-bound stage its real work also
        needs a core (4 thumbnail threads on 2 cores run at the speed of 2); emulated time needs none.
        Raises ``Overloaded`` at once if admission control refuses it."""
        if stage not in CPU_BOUND_STAGES:
            self.stages[stage].serve_then(self.service_s(stage, items), then)
            return
        self.stages[stage].acquire_then(lambda held: self._on_cores(stage, items, held, then))

    def _on_cores(self, stage: str, items: float, held: Held, then: Callable[[], None]) -> None:
        env, core = self.env, self.cpu.request()

        def work(_event: Any = None) -> None:
            call_later(env, self.work_s(stage, items), worked)

        def worked(_event: Any) -> None:
            self.cpu.release(core)
            emulated = self.emulated_s(stage, items)
            if emulated > 0:
                call_later(env, emulated, done)
            else:
                done(None)

        def done(_event: Any) -> None:
            self.stages[stage].release(held)
            then()

        if core.callbacks is None:
            work()
        else:
            core.callbacks.append(work)

    def room(self, canvas_id: str) -> SimRoom:
        room = self.rooms.get(canvas_id)
        if room is None:
            room = self.rooms[canvas_id] = SimRoom(Canvas(canvas_id, self.profile.limits))
        return room

    # ------------------------------------------------------------------ operations

    def operation(self, operation_id: str, op_type: OpType, params: dict[str, Any], size: int, room: SimRoom,
                  then: Callable[[Answer, Applied | None], None]) -> None:
        """Apply (once) and persist one operation, as the server's service does; then ``then(answer,
        applied)`` (``applied`` None when nothing was applied)."""
        limits = self.profile.limits
        if size > limits.max_message_bytes:
            error = ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, "Operation too large", operation_id)
            then(_rejection(error), None)
            return
        stored = room.acks.get(operation_id)
        if stored is not None:
            then(stored, None)
            return
        operation = parse_operation(operation_id, str(op_type), params, limits)
        if isinstance(operation, ProtocolError):
            then(_rejection(operation), None)
            return
        items = len(params.get("nodes") or params.get("items") or [None])
        ops, env = self.stages["ops"], self.env

        def serve_op(held: Held) -> None:
            call_later(env, self.service_s("ops", items), lambda _event: apply(held))

        def apply(held: Held) -> None:
            applied = room.canvas.apply(operation, self.stored.__contains__)
            rewrite = len(room.canvas.nodes) if self.profile.persistence == "full_rewrite" and applied.changed else 0
            try:
                self.serve("persist", rewrite or items, lambda: persisted(held, applied))
            except Overloaded as exc:
                room.canvas.undo(applied)
                ops.release(held)
                then(_overloaded(operation_id, exc), None)

        def persisted(held: Held, applied: Applied) -> None:
            ops.release(held)
            if op_type in BATCH_OPS:
                answer = Answer(AnswerKind.ACK, {"operationId": operation_id, "results": applied.results})
            elif applied.results[0]["ok"]:
                answer = Answer(AnswerKind.ACK, {"operationId": operation_id})
            else:
                result = applied.results[0]
                answer = Answer(AnswerKind.REJECTED, {"operationId": operation_id, "code": result["code"]})
            room.acks[operation_id] = answer
            then(answer, applied)

        try:
            ops.acquire_then(serve_op)
        except Overloaded as exc:
            then(_overloaded(operation_id, exc), None)

    # ------------------------------------------------------------------ uploads

    def store_upload(self, image: ImageSpec, digest: str, then: Callable[[HttpResult], None]) -> None:
        """After the body arrived: validate, de-duplicate, thumbnail (sync), store; then ``then(result)``."""
        try:
            self.serve("upload", image.size_bytes / MIB, lambda: self._checked(image, digest, then))
        except Overloaded as exc:
            then(HttpResult(503, retry_after_s=exc.retry_after_s))

    def _checked(self, image: ImageSpec, digest: str, then: Callable[[HttpResult], None]) -> None:
        if self.profile.dedup_by_hash and digest in self.by_hash:
            then(_stored_answer(self.by_hash[digest], digest))
            return
        self._names += 1
        name = f"{self._names:06d}-{image.id}.png"
        thumbnail_items = self.profile.thumbnail_items(image.width, image.height)
        stem = name.rsplit(".", 1)[0]
        self.thumbnails[stem] = self.profile.thumbnail_plan(image.width, image.height)
        if self.profile.thumbnails == "sync":
            try:
                self.serve("thumbnail", thumbnail_items, lambda: self._stored(name, digest, then))
            except Overloaded as exc:
                then(HttpResult(503, retry_after_s=exc.retry_after_s))
            return
        if self.profile.thumbnails == "async":
            self.thumbnails_pending.add(stem)
            self._thumbnails_later(stem, thumbnail_items)
        self._stored(name, digest, then)

    def _thumbnails_later(self, stem: str, items: float) -> None:
        """After the answer, as the server does: refused by a full stage, the job waits in the backlog;
        each job that ends starts the oldest waiting (none is dropped)."""
        def ended() -> None:
            self.thumbnails_pending.discard(stem)
            if self.thumbnail_backlog:
                self._thumbnails_later(*self.thumbnail_backlog.popleft())
        try:
            self.serve("thumbnail", items, ended)
        except Overloaded:
            self.thumbnail_backlog.append((stem, items))

    def _stored(self, name: str, digest: str, then: Callable[[HttpResult], None]) -> None:
        self.stored.add(name)
        self.by_hash.setdefault(digest, name)
        then(_stored_answer(name, digest))

    def get_status(self, path: str) -> int:
        """What a GET of a stored file's thumbnail answers: 404 for a size its plan skipped, 503 while its
        after-the-answer thumbnails are not made yet."""
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "thumbnails" and parts[2].isdigit():
            stem = parts[3].rsplit(".", 1)[0]
            sizes = self.thumbnails.get(stem)
            if sizes is not None and int(parts[2]) not in sizes:
                return 404
            if stem in self.thumbnails_pending:
                return 503
        return 200

    def rate_limited(self, client: SimClient, at: float | None = None) -> float | None:
        """The limiter's answer to one of the client's requests arriving ``at`` (default: now)."""
        if self.rate_limiter is None:
            return None
        return self.rate_limiter.check(f"user-{client.user}", self.env.now if at is None else at)


def _stored_answer(name: str, digest: str) -> HttpResult:
    return HttpResult(200, {"url": f"/uploads/{name}", "serverFilename": name, "hash": digest})


def _rejection(error: ProtocolError) -> Answer:
    return Answer(AnswerKind.REJECTED, {"operationId": error.operation_id, **error.to_json()})


def _overloaded(operation_id: str, exc: Overloaded) -> Answer:
    return _rejection(ProtocolError(ErrorCode.OVERLOADED, str(exc), operation_id, exc.retry_after_s))


class ModelWorld:
    """The browsers' side of the model: their link to the server, their connection pools."""

    def __init__(self, env: simpy.Environment, profile: Profile, link: Link, params: ModelParams,
                 rng: random.Random, link_per_user: bool = False) -> None:
        """``link_per_user``: every browser has an uplink like ``link`` of its own (capacity planning);
        otherwise all share ``link``, as the users of one real run share its shaped loopback."""
        self.env = env
        self.server = ServerModel(env, profile, params, rng)
        self.link = link
        self.link_per_user = link_per_user
        self.links: dict[int, Link] = {}
        self.params = params
        self.pools: dict[int, ConnectionPool] = {}
        self.http_in_flight = 0

    def link_of(self, client: SimClient) -> Link:
        if not self.link_per_user:
            return self.link
        link = self.links.get(client.user)
        if link is None:
            base = self.link
            link = self.links[client.user] = Link(self.env, base.rate_bytes_per_s, base.queue_s, base.base_delay_s,
                                                  base.standing_bytes_per_flow, base.standing_fraction)
        return link

    def pool(self, client: SimClient) -> ConnectionPool:
        pool = self.pools.get(client.user)
        if pool is None:
            pool = self.pools[client.user] = ConnectionPool(self.env)
        return pool

    # ------------------------------------------------------------------ frames

    def _to_client(self, client: SimClient, nbytes: int, answer: tuple[str, Answer] | None = None) -> None:
        """A frame from the server: it crosses the link, then the browser has it. A frame that is only
        counted (no answer in it) costs no event: the browser notes when it arrives."""
        delay = self.link_of(client).frame_delay(nbytes)
        if answer is None:
            client.receive_frame_at(self.env.now + delay)
            return
        call_later(self.env, delay, lambda _event: client.deliver(*answer))

    def join(self, client: SimClient) -> None:
        """``join_canvas`` and its ``canvas_joined`` (sent by the driver's owner before the drop)."""
        room = self.server.room(client.canvas_id)
        room.members.append(client)
        client.ws_messages_sent += 1
        client.note_first_byte()
        self._to_client(client, 200 + len(room.canvas.nodes) * self.params.node_json_bytes)

    def hash_seconds(self, client: SimClient, image: ImageSpec) -> float:
        return image.size_bytes / (self.params.hash_mb_per_s * 1e6)

    def send_op(self, client: SimClient, operation_id: str, op_type: OpType, params: dict[str, Any]) -> None:
        size = frame_bytes(execute_operation_frame(operation_id, op_type, params))
        delay = self.link_of(client).frame_delay(size)
        call_later(self.env, delay, lambda _event: self._operation(client, operation_id, op_type, params, size))

    def _operation(self, client: SimClient, operation_id: str, op_type: OpType, params: dict[str, Any],
                   size: int) -> None:
        """The frame has arrived."""
        room = self.server.room(client.canvas_id)

        def answered(answer: Answer, applied: Applied | None) -> None:
            p = self.params
            results = len(answer.data.get("results", ()))
            self._to_client(client, p.answer_bytes + results * p.result_item_bytes, (operation_id, answer))
            if applied is not None and applied.changed:
                update_bytes = p.answer_bytes + (len(applied.added) + len(applied.updated)) * p.node_json_bytes
                for member in room.members:
                    self._to_client(member, update_bytes)
                if self.server.profile.undo_push:
                    room.undo_count += 1
                    self._to_client(client, p.answer_bytes)

        self.server.operation(operation_id, op_type, params, size, room, answered)

    def send_frame(self, client: SimClient, event: str, data: dict[str, Any]) -> None:
        """A request the server answers with one frame nothing waits for (undo state, full sync)."""
        link = self.link_of(client)
        delay = link.frame_delay(self.params.answer_bytes)
        if event == Event.REQUEST_UNDO_STATE:
            nbytes = self.params.answer_bytes
        elif event == Event.REQUEST_FULL_SYNC:
            room = self.server.room(client.canvas_id)
            nbytes = self.params.answer_bytes + len(room.canvas.nodes) * self.params.node_json_bytes
        else:
            return
        if not link.shaped:  # the answer's way back costs what it costs now: no event at all
            client.receive_frame_at(self.env.now + delay + link.frame_delay(nbytes))
            return
        call_later(self.env, delay, lambda _event: self._to_client(client, nbytes))

    # ------------------------------------------------------------------ HTTP

    def upload(self, client: SimClient, image: ImageSpec, digest: str,
               timeout_s: float) -> Generator[simpy.Event, Any, HttpResult]:
        """One upload: its steps are callbacks (``_upload``); the browser's process waits for one
        event, the answer's arrival, or gives up at its deadline (then the server goes on)."""
        env = self.env
        started, deadline_at = env.now, env.now + timeout_s
        outcome = env.event()
        deadline = client.deadlines.add(deadline_at, lambda: outcome.triggered or outcome.succeed(None))

        def respond(result: HttpResult, nbytes: int, release: Callable[[Any], None]) -> None:
            """The answer leaves the server; once through the link the connection is free again."""
            delay = self.link_of(client).frame_delay(nbytes)
            if outcome.triggered or env.now + delay >= deadline_at:  # the browser has given up, or will
                call_later(env, delay, release)
                return
            Deadlines.cancel(deadline)
            succeed_in(env, outcome, delay, result, first=release)

        self._upload(client, image, digest, respond)
        result: HttpResult | None = yield outcome
        if result is not None:
            return HttpResult(result.status, result.body, env.now - started, result.retry_after_s)
        return HttpResult(0, latency_s=timeout_s, timed_out=True)

    def _upload(self, client: SimClient, image: ImageSpec, digest: str,
                respond: Callable[[HttpResult, int, Callable[[Any], None]], None]) -> None:
        """An upload's way through the model: a connection of the browser's pool, the request's
        headers over the link, rate limit and admission, the body (sharing the link), the server's
        stages; ``respond`` sends the answer back."""
        env, p, server = self.env, self.params, self.server
        connections, link = self.pool(client).connections, self.link_of(client)
        connection = connections.request()

        def release(_event: Any) -> None:
            connections.release(connection)
            self.http_in_flight -= 1

        def connected(_event: Any = None) -> None:
            self.http_in_flight += 1
            call_later(env, link.frame_delay(p.request_overhead_bytes), arrived)

        def arrived(_event: Any) -> None:
            wait_s = server.rate_limited(client)
            if wait_s is not None:
                retry_after = max(1.0, round(wait_s)) if server.profile.rate_limit.retry_after_header else None
                respond(HttpResult(429, retry_after_s=retry_after), p.answer_bytes, release)
                return
            try:
                server.stages["upload"].check_admission()
                server.profile.check_upload_slots(server.uploads_in_flight)
            except Overloaded as exc:
                respond(HttpResult(503, retry_after_s=exc.retry_after_s), p.answer_bytes, release)
                return
            server.uploads_in_flight += 1
            client.bytes_uploaded += image.size_bytes
            link.transfer_then(image.size_bytes, lambda: server.store_upload(image, digest, stored))

        def stored(result: HttpResult) -> None:
            server.uploads_in_flight -= 1
            respond(result, p.upload_response_bytes, release)

        if connection.callbacks is None:
            connected()
        else:
            connection.callbacks.append(connected)

    def fetch(self, client: SimClient, paths: tuple[str, ...],
              timeout_s: float) -> Generator[simpy.Event, Any, tuple[HttpResult, ...]]:
        """GETs one after another, each waiting its turn for one of the browser's connections (in line
        with the uploads, as a browser queues every request: a burst of thumbnails does not hold a
        connection between its GETs), each counted by the rate limiter when it arrives."""
        env, p, link, server = self.env, self.params, self.link_of(client), self.server
        connections = self.pool(client).connections
        served = p.get_service_ms / 1000.0
        results = []
        for _path in paths:
            started = env.now
            connection = connections.request()
            yield connection
            arrives = env.now + link.frame_delay(p.request_overhead_bytes)
            limited = server.rate_limited(client, arrives) is not None
            status = 429 if limited else server.get_status(_path)
            nbytes = p.thumbnail_response_bytes if status == 200 else p.answer_bytes
            yield env.timeout(arrives - env.now + (0.0 if limited else served) + link.frame_delay(nbytes))
            connections.release(connection)
            results.append(HttpResult(status, latency_s=env.now - started))
        return tuple(results)

    def post(self, client: SimClient, path: str, body: dict[str, Any],
             timeout_s: float) -> Generator[simpy.Event, Any, HttpResult]:
        """A small JSON POST (the page's thumbnail-generate call): the thumbnails exist, so the server
        answers after reading the file's header (``get_service_ms``)."""
        env, p, link, server = self.env, self.params, self.link_of(client), self.server
        connections = self.pool(client).connections
        started = env.now
        connection = connections.request()
        yield connection
        arrives = env.now + link.frame_delay(p.request_overhead_bytes + p.answer_bytes)
        limited = server.rate_limited(client, arrives) is not None
        status = 429 if limited else 200 if body.get("hash") in server.by_hash else 404
        served = 0.0 if limited else p.get_service_ms / 1000.0
        yield env.timeout(arrives - env.now + served + link.frame_delay(p.upload_response_bytes))
        connections.release(connection)
        return HttpResult(status, latency_s=env.now - started)
