"""The reference server and the network, in simulated time: the ``World`` strategies run against.

``ServerModel`` has the profile's stages (same names, workers, queue limits, admission control),
its rate limit, its persistence and thumbnail policies and its message limits; it applies every
operation to a real ``bulkbench.canvas.Canvas``, so the truth judged at the end is the same rule
as in real runs. Service time of a job = the real work's cost (``work_ms`` + ``work_per_item_ms``
x items, fitted by ``bulkbench calibrate``) + the profile's emulated time, with the same items as
the real server counts. ``ModelWorld`` adds what lies between the browser and the server: one
shared ``Link`` (the shaped loopback of real runs) and each browser's ``ConnectionPool``.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import simpy

from bulkbench.canvas import Applied, Canvas
from bulkbench.config import from_table, scenarios_dir, table_of
from bulkbench.effects import Answer, AnswerKind, HttpResult
from bulkbench.limits import MIB
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
from sim.components import ConnectionPool, Link, Slots, Stage
from sim.driver import SimClient
from sim.events import Task

CPU_BOUND_STAGES = frozenset({"upload", "thumbnail"})
"""Stages whose work runs in threads and holds a core while it does (first come, first served: a
coarse stand-in for the OS scheduler; the event loop's short jobs are left out of it)."""


@dataclass(frozen=True, slots=True)
class ModelParams:
    """What the model assumes beyond the profile (``scenarios/model.toml``)."""

    hash_mb_per_s: float = 300.0
    """The client's SHA-256 rate (file read included)."""
    request_overhead_bytes: int = 400
    """HTTP request line and headers."""
    answer_bytes: int = 80
    result_item_bytes: int = 40
    node_json_bytes: int = 260
    thumbnail_response_bytes: int = 1450
    upload_response_bytes: int = 250
    service_cv: float = 0.0
    """Spread of service times (coefficient of variation, gamma); 0: every job its mean."""
    server_cpus: int = 2
    """Cores the server's CPU-bound stages (upload checks, thumbnails) share: this machine's 2."""
    standing_bytes_per_flow: float = 40_000.0
    standing_fraction: float = 0.45
    """Bytes each upload keeps in the shaped link's queue (fitted: 6 uploads hold about 160 KB)."""


def load_model_params(path: str | None = None) -> ModelParams:
    source = Path(path) if path else scenarios_dir() / "model.toml"
    return from_table(ModelParams, table_of(source, "model"), f"{source} [model]")


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
        self.rooms: dict[str, SimRoom] = {}
        self.stored: set[str] = set()
        self.by_hash: dict[str, str] = {}
        self.rate_limiter = RateLimiter(profile.rate_limit) if profile.rate_limit else None
        self.cpu = Slots(env, max(1, params.server_cpus))
        self.uploads_in_flight = 0
        """Upload bodies admitted and not yet answered (``Limits.max_uploads_in_flight``)."""
        self._names = 0

    # ------------------------------------------------------------------ costs

    def work_s(self, stage: str, items: float) -> float:
        """The real work of one job (drawn around its fitted mean)."""
        spec = self.profile.stage(stage)
        mean = spec.work_s(items)
        cv = spec.work_cv or self.params.service_cv
        if cv <= 0 or mean <= 0:
            return mean
        shape = 1.0 / (cv * cv)
        return self.rng.gammavariate(shape, mean / shape)

    def emulated_s(self, stage: str, items: float) -> float:
        return self.profile.stage(stage).emulated_s(items) if self.profile.emulation else 0.0

    def service_s(self, stage: str, items: float) -> float:
        return self.work_s(stage, items) + self.emulated_s(stage, items)

    def serve(self, stage: str, items: float) -> Generator[simpy.Event, Any, None]:
        """One job: a worker of the stage; for a CPU-bound stage its real work also needs a core
        (4 thumbnail threads on 2 cores run at the speed of 2); emulated time needs none."""
        if stage not in CPU_BOUND_STAGES:
            yield from self.stages[stage].serve(self.service_s(stage, items))
            return
        held = yield from self.stages[stage].acquire()
        try:
            with self.cpu.request() as core:
                yield core
                yield self.env.timeout(self.work_s(stage, items))
            emulated = self.emulated_s(stage, items)
            if emulated > 0:
                yield self.env.timeout(emulated)
        finally:
            self.stages[stage].release(held)

    def room(self, canvas_id: str) -> SimRoom:
        room = self.rooms.get(canvas_id)
        if room is None:
            room = self.rooms[canvas_id] = SimRoom(Canvas(canvas_id, self.profile.limits))
        return room

    # ------------------------------------------------------------------ operations

    def operation(self, operation_id: str, op_type: OpType, params: dict[str, Any], size: int,
                  room: SimRoom) -> Generator[simpy.Event, Any, tuple[Answer, Applied | None]]:
        """Apply (once) and persist one operation, as the server's service does."""
        limits = self.profile.limits
        if size > limits.max_message_bytes:
            return _rejection(ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, "Operation too large", operation_id)), None
        stored = room.acks.get(operation_id)
        if stored is not None:
            return stored, None
        operation = parse_operation(operation_id, str(op_type), params, limits)
        if isinstance(operation, ProtocolError):
            return _rejection(operation), None
        items = len(params.get("nodes") or params.get("items") or [None])
        ops = self.stages["ops"]
        try:
            held = yield from ops.acquire()
        except Overloaded as exc:
            return _overloaded(operation_id, exc), None
        try:
            yield self.env.timeout(self.service_s("ops", items))
            applied = room.canvas.apply(operation, self.stored.__contains__)
            rewrite = len(room.canvas.nodes) if self.profile.persistence == "full_rewrite" and applied.changed else 0
            try:
                yield from self.serve("persist", rewrite or items)
            except Overloaded as exc:
                room.canvas.undo(applied)
                return _overloaded(operation_id, exc), None
        finally:
            ops.release(held)
        if op_type in BATCH_OPS:
            answer = Answer(AnswerKind.ACK, {"operationId": operation_id, "results": applied.results})
        elif applied.results[0]["ok"]:
            answer = Answer(AnswerKind.ACK, {"operationId": operation_id})
        else:
            result = applied.results[0]
            answer = Answer(AnswerKind.REJECTED, {"operationId": operation_id, "code": result["code"]})
        room.acks[operation_id] = answer
        return answer, applied

    # ------------------------------------------------------------------ uploads

    def store_upload(self, image: ImageSpec, digest: str) -> Generator[simpy.Event, Any, HttpResult]:
        """After the body arrived: validate, de-duplicate, thumbnail (sync), store."""
        try:
            yield from self.serve("upload", image.size_bytes / MIB)
        except Overloaded as exc:
            return HttpResult(503, retry_after_s=exc.retry_after_s)
        if self.profile.dedup_by_hash and digest in self.by_hash:
            name = self.by_hash[digest]
        else:
            self._names += 1
            name = f"{self._names:06d}-{image.id}.png"
            thumbnail_items = image.width * image.height / 1e6 * len(self.profile.thumbnail_sizes)
            if self.profile.thumbnails == "sync":
                try:
                    yield from self.serve("thumbnail", thumbnail_items)
                except Overloaded as exc:
                    return HttpResult(503, retry_after_s=exc.retry_after_s)
            elif self.profile.thumbnails == "async":
                Task(self.env, self._thumbnail_later(thumbnail_items))
            self.stored.add(name)
            self.by_hash.setdefault(digest, name)
        return HttpResult(200, {"url": f"/uploads/{name}", "serverFilename": name, "hash": digest})

    def _thumbnail_later(self, items: float) -> Generator[simpy.Event, Any, None]:
        with contextlib.suppress(Overloaded):  # after the answer: a refused thumbnail fails nobody
            yield from self.serve("thumbnail", items)

    def rate_limited(self, client: SimClient) -> float | None:
        if self.rate_limiter is None:
            return None
        return self.rate_limiter.check(f"user-{client.user}", self.env.now)


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
        self.env.timeout(delay).callbacks.append(lambda _event: client.deliver(*answer))

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
        Task(self.env, self._operation(client, operation_id, op_type, params, size), delay=delay)

    def _operation(self, client: SimClient, operation_id: str, op_type: OpType, params: dict[str, Any],
                   size: int) -> Generator[simpy.Event, Any, None]:
        """The frame has arrived (the task starts after its delay on the link)."""
        room = self.server.room(client.canvas_id)
        answer, applied = yield from self.server.operation(operation_id, op_type, params, size, room)
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
        self.env.timeout(delay).callbacks.append(lambda _e: self._to_client(client, nbytes))

    # ------------------------------------------------------------------ HTTP

    def upload(self, client: SimClient, image: ImageSpec, digest: str,
               timeout_s: float) -> Generator[simpy.Event, Any, HttpResult]:
        started = self.env.now
        outcome = self.env.event()
        """The server's answer, or None when the browser gives up first (then the server goes on)."""
        Task(self.env, self._upload(client, image, digest), now=True,
             then=lambda result: outcome.triggered or outcome.succeed(result))
        self.env.timeout(timeout_s).callbacks.append(lambda _timer: outcome.triggered or outcome.succeed(None))
        result: HttpResult | None = yield outcome
        if result is not None:
            return HttpResult(result.status, result.body, self.env.now - started, result.retry_after_s)
        return HttpResult(0, latency_s=timeout_s, timed_out=True)

    def _upload(self, client: SimClient, image: ImageSpec, digest: str) -> Generator[simpy.Event, Any, HttpResult]:
        p, server = self.params, self.server
        with self.pool(client).connections.request() as connection:
            yield connection
            self.http_in_flight += 1
            try:
                yield self.env.timeout(self.link_of(client).frame_delay(p.request_overhead_bytes))
                wait_s = server.rate_limited(client)
                if wait_s is not None:
                    yield self.env.timeout(self.link_of(client).frame_delay(p.answer_bytes))
                    return HttpResult(429, retry_after_s=max(1.0, round(wait_s)))
                try:
                    server.stages["upload"].check_admission()
                    server.profile.check_upload_slots(server.uploads_in_flight)
                except Overloaded as exc:
                    yield self.env.timeout(self.link_of(client).frame_delay(p.answer_bytes))
                    return HttpResult(503, retry_after_s=exc.retry_after_s)
                server.uploads_in_flight += 1
                try:
                    client.bytes_uploaded += image.size_bytes
                    yield from self.link_of(client).transfer(image.size_bytes)
                    result = yield from server.store_upload(image, digest)
                finally:
                    server.uploads_in_flight -= 1
                yield self.env.timeout(self.link_of(client).frame_delay(p.upload_response_bytes))
                return result
            finally:
                self.http_in_flight -= 1

    def fetch(self, client: SimClient, paths: tuple[str, ...],
              timeout_s: float) -> Generator[simpy.Event, Any, tuple[HttpResult, ...]]:
        """A burst of GETs over one connection, one after another (keep-alive), each rate limited."""
        p, link = self.params, self.link_of(client)
        with self.pool(client).connections.request() as connection:
            yield connection
            if self.server.rate_limiter is None and paths:  # every GET the same: its latency once, then the sum
                latency = link.frame_delay(p.request_overhead_bytes) + link.frame_delay(p.thumbnail_response_bytes)
                link.bytes_carried += (p.request_overhead_bytes + p.thumbnail_response_bytes) * (len(paths) - 1)
                elapsed = 0.0
                for _path in paths:
                    elapsed += latency
                yield self.env.timeout(elapsed)
                return (HttpResult(200, latency_s=latency),) * len(paths)
            results, elapsed = [], 0.0
            for _path in paths:
                limited = self.server.rate_limited(client) is not None
                status, nbytes = (429, p.answer_bytes) if limited else (200, p.thumbnail_response_bytes)
                latency = link.frame_delay(p.request_overhead_bytes) + link.frame_delay(nbytes)
                elapsed += latency
                results.append(HttpResult(status, latency_s=latency))
            yield self.env.timeout(elapsed)
            return tuple(results)
