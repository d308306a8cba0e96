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
from collections.abc import Callable, Generator
from typing import Any

import simpy

from bulkbench.canvas import Canvas
from bulkbench.effects import Answer, AnswerKind, HttpResult
from bulkbench.model_params import ModelParams, mean_work_s
from bulkbench.profile import STAGE_NAMES, Overloaded, Profile
from bulkbench.protocol import (
    ErrorCode,
    Event,
    ExecuteOperation,
    JoinCanvas,
    OpType,
    ProtocolError,
    RequestFullSync,
    RequestUndoState,
    execute_operation_frame,
    frame_bytes,
    parse_operation,
    retry_after_header,
    thumbnail_url,
)
from bulkbench.ratelimit import RateLimiter
from bulkbench.server_core import (
    Begun,
    Frame,
    Reply,
    Room,
    Session,
    Step,
    ThumbnailJob,
    UploadDesk,
    items_of,
    overloaded,
    rejection,
    unused,
    upload_answer,
)
from bulkbench.workload import ImageSpec
from sim.components import ConnectionPool, Held, Link, SharedCores, Slots, Stage
from sim.driver import SimClient
from sim.events import Deadlines, call_later, succeed_in

CPU_BOUND_STAGES = frozenset({"upload", "thumbnail"})
"""Stages whose work runs in threads and holds a core while it does (first come, first served: a
coarse stand-in for the OS scheduler; the event loop's short jobs are left out of it)."""


class ServerModel:
    def __init__(self, env: simpy.Environment, profile: Profile, params: ModelParams, rng: random.Random,
                 uptime_s: float = 0.0) -> None:
        """``uptime_s``: how long the server has run at the model's time 0 (where its file sweeps fall)."""
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
        self.rooms: dict[str, Room] = {}
        self.uploads = UploadDesk(profile)
        self.stored: set[str] = set()
        self.by_hash: dict[str, str] = {}
        self.thumbnails_made: set[str] = set()
        """The thumbnails' URLs made so far: the model's stand-in for the files on disk."""
        self.rate_limiter = RateLimiter(profile.rate_limit) if profile.rate_limit else None
        self.cpu = Slots(env, max(1, params.server_cpus))
        self.shared_cores = (SharedCores(env, max(1, params.server_cpus))
                             if params.cpu_sharing == "processor_sharing" else None)
        self._names = 0
        self.swept = 0
        """Uploads the server's sweeps deleted (``profile.file_sweep``)."""
        sweep = profile.file_sweep
        self._next_sweep_s = sweep.next_after(uptime_s) - uptime_s if sweep is not None else None
        self._sweep_every_s = sweep.every_s if sweep is not None else 0.0

    # ------------------------------------------------------------------ costs

    def work_s(self, stage: str, items: float, link_mbit: float = 0.0) -> float:
        """The real work of one job (drawn around its fitted mean)."""
        spec = self.specs[stage]
        mean = mean_work_s(spec, self.params, stage, items, link_mbit)
        cv = spec.work_cv or self.params.service_cv
        if cv <= 0 or mean <= 0:
            return mean
        shape = 1.0 / (cv * cv)
        return self.rng.gammavariate(shape, mean / shape)

    def emulated_s(self, stage: str, items: float) -> float:
        return self.specs[stage].emulated_s(items) if self.profile.emulation else 0.0

    def service_s(self, stage: str, items: float) -> float:
        return self.work_s(stage, items) + self.emulated_s(stage, items)

    def serve(self, stage: str, items: float, then: Callable[[], None], link_mbit: float = 0.0) -> None:
        """One job, then ``then()``: a worker of the stage; for a CPU-bound stage its real work also
        needs a core (4 thumbnail threads on 2 cores run at the speed of 2); emulated time needs none.
        Raises ``Overloaded`` at once if admission control refuses it."""
        if stage not in CPU_BOUND_STAGES:
            self.stages[stage].serve_then(self.service_s(stage, items), then)
            return
        self.stages[stage].acquire_then(lambda held: self._on_cores(stage, items, held, then, link_mbit))

    def _on_cores(self, stage: str, items: float, held: Held, then: Callable[[], None], link_mbit: float) -> None:
        env = self.env

        def worked() -> None:
            emulated = self.emulated_s(stage, items)
            if emulated > 0:
                call_later(env, emulated, done)
            else:
                done(None)

        def done(_event: Any) -> None:
            self.stages[stage].release(held)
            then()

        if self.shared_cores is not None:
            self.shared_cores.run(self.work_s(stage, items, link_mbit), worked)
            return
        core = self.cpu.request()

        def work(_event: Any = None) -> None:
            call_later(env, self.work_s(stage, items, link_mbit), lambda _event: (self.cpu.release(core), worked()))

        if core.callbacks is None:
            work()
        else:
            core.callbacks.append(work)

    def room(self, canvas_id: str) -> Room:
        room = self.rooms.get(canvas_id)
        if room is None:
            canvas = Canvas(canvas_id, self.profile.limits, self.profile.linking)
            room = self.rooms[canvas_id] = Room(canvas, self.profile)
        return room

    # ------------------------------------------------------------------ operations

    def operation(self, operation_id: str, op_type: OpType, params: dict[str, Any], size: int, room: Room,
                  sender_id: str, then: Callable[[Frame, Reply | None], None]) -> None:
        """One operation through the server's desk (``server_core.Room``) and its stages, priced in
        simulated time; then ``then(answer, reply)`` (``reply`` None when nothing was applied now)."""
        limits = self.profile.limits
        if size > limits.max_message_bytes:
            then(rejection(ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, "Operation too large", operation_id)), None)
            return
        operation = parse_operation(operation_id, str(op_type), params, limits)
        if isinstance(operation, ProtocolError):
            then(rejection(operation), None)
            return

        def waited(outcome: Frame | BaseException) -> None:
            if isinstance(outcome, Overloaded):
                then(overloaded(operation_id, outcome), None)
            elif not isinstance(outcome, BaseException):
                then(outcome, None)

        begun = room.begin(operation_id, waited)
        if begun is Begun.WAITING:
            return
        if not isinstance(begun, Begun):
            then(begun, None)
            return
        ops, env = self.stages["ops"], self.env

        items = items_of(operation)

        def serve_op(held: Held) -> None:
            call_later(env, self.service_s("ops", items), lambda _event: apply(held))

        def apply(held: Held) -> None:
            self.sweeps_due()
            step = room.apply(operation_id, op_type, operation, size, self.stored.__contains__)
            try:
                self.serve("persist", step.persist_items, lambda: persisted(held, step))
            except Overloaded as exc:
                ops.release(held)
                room.failed(operation_id, exc, step)
                then(overloaded(operation_id, exc), None)

        def persisted(held: Held, step: Step) -> None:
            ops.release(held)
            room.persisted(step)
            reply = room.finish(step, sender_id)
            then(reply.answer, reply)

        try:
            ops.acquire_then(serve_op)
        except Overloaded as exc:
            room.failed(operation_id, exc)
            then(overloaded(operation_id, exc), None)

    # ------------------------------------------------------------------ uploads

    def store_upload(self, image: ImageSpec, digest: str, then: Callable[[HttpResult], None],
                     link_mbit: float = 0.0) -> None:
        """After the body arrived (over a link of ``link_mbit``, 0: unshaped): check, de-duplicate,
        thumbnails (before or after the answer), store; then ``then(result)``."""
        try:
            self.serve("upload", self.uploads.check_items(image.size_bytes),
                       lambda: self._checked(image, digest, then), link_mbit)
        except Overloaded as exc:
            then(HttpResult(503, retry_after_s=retry_after_header(exc.retry_after_s)))

    def _checked(self, image: ImageSpec, digest: str, then: Callable[[HttpResult], None]) -> None:
        self.sweeps_due()
        desk = self.uploads
        existing = desk.existing(digest, self.by_hash.get)
        if existing is not None:
            then(HttpResult(200, upload_answer(existing, digest, deduplicated=True)))
            return
        self._names += 1
        name = f"{self._names:06d}-{image.id}.png"
        job = desk.thumbnails(name, image.width, image.height)
        if job is not None and desk.before_answer:
            def made() -> None:
                self._made(job)
                self._stored(name, digest, then)
            try:
                self.serve("thumbnail", job.items, made)
            except Overloaded as exc:
                then(HttpResult(503, retry_after_s=retry_after_header(exc.retry_after_s)))
            return
        if job is not None:
            desk.owe(job)
            self._thumbnails_later(job)
        self._stored(name, digest, then)

    def _thumbnails_later(self, job: ThumbnailJob) -> None:
        """After the answer, as the server does: refused by a full stage, the job waits in the desk's
        backlog; each job that ends starts the oldest waiting (none is dropped)."""
        def ended() -> None:
            self._made(job)
            following = self.uploads.ended(job)
            if following is not None:
                self._thumbnails_later(following)
        try:
            self.serve("thumbnail", job.items, ended)
        except Overloaded:
            self.uploads.refused(job)

    def _made(self, job: ThumbnailJob) -> None:
        self.sweeps_due()
        stem = job.stem
        self.thumbnails_made.update(thumbnail_url(size, stem) for size in job.sizes)

    def _stored(self, name: str, digest: str, then: Callable[[HttpResult], None]) -> None:
        self.sweeps_due()
        self.stored.add(name)
        self.by_hash.setdefault(digest, name)
        then(HttpResult(200, upload_answer(name, digest)))

    def sweeps_due(self) -> None:
        """The file sweeps due by now (``profile.file_sweep``, timed from the server's start), before the
        server's state next changes or is read. Between two changes a sweep sees the same state, so
        applying it late is exact, and no sweep event keeps a run going."""
        while self._next_sweep_s is not None and self.env.now >= self._next_sweep_s:
            self._sweep_unused()
            self._next_sweep_s += self._sweep_every_s

    def _sweep_unused(self) -> None:
        """Delete every stored upload no canvas's node uses, with its thumbnails (``server_core.sweep``)."""
        gone = unused(self.stored, (node for room in self.rooms.values() for node in room.canvas.nodes.values()))
        if not gone:
            return
        self.stored -= gone
        self.by_hash = {digest: name for digest, name in self.by_hash.items() if name not in gone}
        stems = {name.rsplit(".", 1)[0] for name in gone}
        self.thumbnails_made = {url for url in self.thumbnails_made
                                if url.rsplit("/", 1)[-1].rsplit(".", 1)[0] not in stems}
        self.swept += len(gone)

    def get_status(self, path: str) -> int:
        """What a GET of a stored file answers (a thumbnail's: the desk's rule, by what is made)."""
        self.sweeps_due()
        if path in self.thumbnails_made or not path.startswith("/thumbnails/"):
            return 200
        stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        return self.uploads.thumbnail_status(stem, exists=False)

    def retry_after(self, status: int, rate_wait_s: float | None) -> float | None:
        """The Retry-After a refused request carries, as the server sends it (none on a limiter's
        429 unless the profile sends the header; a 503's from the profile)."""
        if status == 429 and rate_wait_s is not None and self.profile.rate_limit is not None:
            return retry_after_header(rate_wait_s) if self.profile.rate_limit.retry_after_header else None
        if status == 503:
            return retry_after_header(self.profile.retry_after_s)
        return None

    def rate_limited(self, client: SimClient, at: float | None = None) -> float | None:
        """The limiter's answer to one of the client's requests arriving ``at`` (default: now)."""
        if self.rate_limiter is None:
            return None
        return self.rate_limiter.check(f"user-{client.user}", self.env.now if at is None else at)


_ANSWERED_REQUESTS = {Event.REQUEST_UNDO_STATE: RequestUndoState(), Event.REQUEST_FULL_SYNC: RequestFullSync()}
"""The requests ``send_frame`` hands the browser's session: answered with one frame nothing waits for."""


def _answer(frame: Frame) -> Answer:
    event, data = frame
    return Answer(AnswerKind.ACK if event == Event.OPERATION_ACK else AnswerKind.REJECTED, data)


class ModelWorld:
    """The browsers' side of the model: their link to the server, their connection pools."""

    def __init__(self, env: simpy.Environment, profile: Profile, link: Link, params: ModelParams,
                 rng: random.Random, link_per_user: bool = False, gets_as_bursts: bool = False,
                 server_uptime_s: float = 0.0) -> None:
        """``link_per_user``: every browser has an uplink like ``link`` of its own (capacity planning);
        otherwise all share ``link``, as the users of one real run share its shaped loopback.
        ``gets_as_bursts``: a node's GETs as bursts on one connection (``_burst``), a sweep's coarser form.
        ``server_uptime_s``: how long the server has run when the first drop starts."""
        self.env = env
        self.server = ServerModel(env, profile, params, rng, server_uptime_s)
        self.link = link
        self.link_per_user = link_per_user
        self.links: dict[int, Link] = {}
        self.params = params
        self.pools: dict[int, ConnectionPool] = {}
        self.sessions: dict[SimClient, Session] = {}
        """Each browser's socket as the server holds it (``server_core.Session``)."""
        self.http_in_flight = 0
        self.gets_as_bursts = gets_as_bursts

    def link_of(self, client: SimClient) -> Link:
        if not self.link_per_user:
            return self.link
        link = self.links.get(client.user)
        if link is None:
            base = self.link
            link = self.links[client.user] = Link(self.env, base.rate_bytes_per_s, base.queue_s, base.base_delay_s,
                                                  base.standing_bytes_per_flow, base.standing_fraction,
                                                  base.queue_occupancy, base.link_mbit)
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
        session = self.sessions[client] = Session(f"s{client.user}", client, self.server.room)
        self._join(client, session)

    def reconnect(self, client: SimClient, rejoin: bool) -> None:
        """A new socket, a new session: the old one leaves its room (``server_core.Session``)."""
        self.sessions[client].leave()
        session = self.sessions[client] = Session(f"s{client.user}", client, self.server.room)
        if rejoin:
            self._join(client, session)

    def _join(self, client: SimClient, session: Session) -> None:
        joined = session.receive(JoinCanvas(client.canvas_id))
        assert isinstance(joined, tuple) and joined[0] == Event.CANVAS_JOINED, joined
        client.ws_messages_sent += 1
        client.note_first_byte()
        self._to_client(client, 200 + len(joined[1]["canvas"]["nodes"]) * self.params.node_json_bytes)

    def hash_seconds(self, client: SimClient, image: ImageSpec) -> float:
        return image.size_bytes / (self.params.hash_mb_per_s * 1e6)

    def send_op(self, client: SimClient, operation_id: str, op_type: OpType, params: dict[str, Any]) -> None:
        size = frame_bytes(execute_operation_frame(operation_id, op_type, params))
        delay = self.link_of(client).frame_delay(size)
        call_later(self.env, delay, lambda _event: self._operation(client, operation_id, op_type, params, size))

    def _operation(self, client: SimClient, operation_id: str, op_type: OpType, params: dict[str, Any],
                   size: int) -> None:
        """The frame has arrived."""
        session = self.sessions[client]
        room = session.room
        if room is None:  # a socket that has not joined: refused, as the server's rule says
            message = parse_operation(operation_id, op_type, params)
            refused = session.receive(message if isinstance(message, ProtocolError)
                                      else ExecuteOperation(operation_id, op_type, message))
            assert isinstance(refused, tuple), refused
            self._to_client(client, self.params.answer_bytes, (operation_id, _answer(refused)))
            return

        def answered(answer: Frame, reply: Reply | None) -> None:
            p = self.params
            results = len(answer[1].get("results", ()))
            self._to_client(client, p.answer_bytes + results * p.result_item_bytes, (operation_id, _answer(answer)))
            if reply is None:
                return
            if reply.update is not None:
                changes = reply.update[1]["changes"]
                update_bytes = p.answer_bytes + (len(changes["added"]) + len(changes["updated"])) * p.node_json_bytes
                for member in room.members:
                    self._to_client(member, update_bytes)
            if reply.undo_state is not None:
                self._to_client(client, p.answer_bytes)

        self.server.operation(operation_id, op_type, params, size, room, session.session_id, answered)

    def send_frame(self, client: SimClient, event: str, data: dict[str, Any]) -> None:
        """A request the server answers with one frame nothing waits for (undo state, full sync)."""
        link = self.link_of(client)
        delay = link.frame_delay(self.params.answer_bytes)
        request = _ANSWERED_REQUESTS.get(event)
        reply = self.sessions[client].receive(request) if request is not None else None
        if not isinstance(reply, tuple):
            return
        nbytes = self.params.answer_bytes
        if reply[0] == Event.FULL_STATE_SYNC:
            nbytes += len(reply[1]["state"]["nodes"]) * self.params.node_json_bytes
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
            wait_s = server.rate_limited(client) if server.rate_limiter is not None else None
            if wait_s is not None:
                respond(HttpResult(429, retry_after_s=server.retry_after(429, wait_s)), p.answer_bytes, release)
                return
            try:
                server.uploads.admit(server.stages["upload"].check_admission)
            except Overloaded as exc:
                respond(HttpResult(503, retry_after_s=retry_after_header(exc.retry_after_s)), p.answer_bytes, release)
                return
            client.bytes_uploaded += image.size_bytes
            link.transfer_then(image.size_bytes, lambda: server.store_upload(image, digest, stored, link.link_mbit))

        def stored(result: HttpResult) -> None:
            server.uploads.answered()
            respond(result, p.upload_response_bytes, release)

        if connection.callbacks is None:
            connected()
        else:
            connection.callbacks.append(connected)

    def fetch(self, client: SimClient, paths: tuple[str, ...], timeout_s: float,
              until_refused: bool = False) -> Generator[simpy.Event, Any, tuple[HttpResult, ...]]:
        """GETs one after another, each waiting its turn for one of the browser's connections (in line
        with the uploads, as a browser queues every request: a burst of thumbnails does not hold a
        connection between its GETs), each counted by the rate limiter when it arrives. With
        ``gets_as_bursts`` and no limiter, the GETs that follow one granted while no upload waits go on
        its connection as one burst (``_burst``)."""
        env, p, link, server = self.env, self.params, self.link_of(client), self.server
        connections = self.pool(client).connections
        served = p.get_service_ms / 1000.0
        bursts = self.gets_as_bursts and server.rate_limiter is None
        results: list[HttpResult] = []
        at, count = 0, len(paths)
        while at < count:
            started = env.now
            connection = connections.request(patient=bursts)
            if connection.callbacks is not None:  # not granted on the spot: wait in line
                yield connection
            if bursts and count - at > 1 and not connections.impatient_waiting:
                at += yield from self._burst(client, paths[at:], started, until_refused, results)
                connections.release(connection)
                if until_refused and results[-1].refused:
                    break
                continue
            path = paths[at]
            at += 1
            arrives = env.now + link.frame_delay(p.request_overhead_bytes)
            wait_s = server.rate_limited(client, arrives) if server.rate_limiter is not None else None
            status = 429 if wait_s is not None else server.get_status(path)
            nbytes = p.thumbnail_response_bytes if status == 200 else p.answer_bytes
            yield env.timeout(arrives - env.now + (0.0 if wait_s is not None else served) + link.frame_delay(nbytes))
            connections.release(connection)
            result = HttpResult(status, latency_s=env.now - started,
                                retry_after_s=server.retry_after(status, wait_s))
            results.append(result)
            if until_refused and result.refused:
                break
        return tuple(results)

    def _burst(self, client: SimClient, paths: tuple[str, ...], started: float, until_refused: bool,
               results: list[HttpResult]) -> Generator[simpy.Event, Any, int]:
        """``fetch``'s coarse form: GETs on the connection just granted, held from one to the next until an
        upload waits for one (``ConnectionPool.hold``), a few events for them all; each one ended goes to
        ``results``, and how many ended is returned. Each is answered as the server and the link stand
        now (a thumbnail made meanwhile is still "not made"); with no limiter nothing else depends on when
        each arrives."""
        env, p, link, server = self.env, self.params, self.link_of(client), self.server
        served = p.get_service_ms / 1000.0
        request_s = link.frame_delay(p.request_overhead_bytes)
        # each path's status, time and Retry-After: a node's viewport asks for a few sizes again and again
        answers: dict[str, tuple[int, float, float | None]] = {}
        planned, ends, at = [], [], env.now
        for path in paths:
            answer = answers.get(path)
            if answer is None:
                status = server.get_status(path)
                nbytes = p.thumbnail_response_bytes if status == 200 else p.answer_bytes
                answer = answers[path] = (status, request_s + served + link.frame_delay(nbytes),
                                          server.retry_after(status, None))
            status, took, retry_after_s = answer
            at += took
            planned.append(HttpResult(status, latency_s=at - started, retry_after_s=retry_after_s))
            ends.append(at)
            started = at
            if until_refused and planned[-1].refused:
                break
        held = env.event()
        self.pool(client).hold(ends, held.succeed)
        done: int = yield held
        results += planned[:done]
        return done

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
