"""Canvas operations under asyncio: the rules are ``bulkbench.server_core``'s, the time is the stages'.

``ws`` hands a session's ``Execute`` here; this module runs the ``ops`` stage around the room's
``apply``, the ``persist`` stage around the storage write, and sends what the room's ``finish``
returns. An operation is persisted before its ack leaves.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Protocol

from bulkbench.canvas import Canvas
from bulkbench.profile import Profile
from bulkbench.protocol import Event, ExecuteOperation, encode, loads, parse_client_frame
from bulkbench.server_core import Begun, Frame, Room, Step, items_of
from reference_server.metrics import Metrics
from reference_server.stages import Stage
from reference_server.storage import Storage


class Member(Protocol):
    """Whoever is in a canvas room: something we can queue frames to."""

    user_id: str

    def send(self, text: str) -> None: ...


def broadcast(room: Room, text: str) -> None:
    for member in list(room.members):
        member.send(text)


def _stored_frame(text: str) -> Frame:
    frame = loads(text)
    return frame["event"], frame["data"]


class CanvasService:
    def __init__(
        self, profile: Profile, storage: Storage, stages: dict[str, Stage], metrics: Metrics
    ) -> None:
        self.profile = profile
        self.storage = storage
        self.ops = stages["ops"]
        self.persist = stages["persist"]
        self.metrics = metrics
        self.rooms: dict[str, Room] = {}
        self._session_ids: Callable[[], int] = itertools.count(1).__next__

    def new_session_id(self) -> str:
        return f"s{self._session_ids()}"

    # ------------------------------------------------------------------ rooms

    def find(self, canvas_id: str) -> Room | None:
        """The canvas if it exists, loading it from storage (snapshot plus replayed log)."""
        room = self.rooms.get(canvas_id)
        if room is not None:
            return room
        loaded = self.storage.load_canvas(canvas_id)
        if loaded is None:
            return None
        snapshot, tail = loaded
        canvas = Canvas.from_json(snapshot, self.profile.limits, self.profile.linking)
        log_bytes = 0
        for _operation_id, frame, _ack in tail:
            message = parse_client_frame(frame, self.profile.limits)
            assert isinstance(message, ExecuteOperation), "the log holds only accepted operations"
            canvas.apply(message.operation, self.storage.upload_exists)
            log_bytes += len(frame)
        acks = {op_id: _stored_frame(text) for op_id, text in self.storage.load_acks(canvas_id).items()}
        room = Room(canvas, self.profile, acks, snapshot_version=snapshot["version"],
                    log_bytes_since_snapshot=log_bytes)
        self.rooms[canvas_id] = room
        return room

    def open(self, canvas_id: str) -> Room:
        """The canvas, created empty if it does not exist yet."""
        room = self.find(canvas_id)
        if room is None:
            canvas = Canvas(canvas_id, self.profile.limits, self.profile.linking)
            self.storage.create_canvas(canvas.to_json())
            room = self.rooms[canvas_id] = Room(canvas, self.profile)
        return room

    # ------------------------------------------------------------------ operations

    async def execute(self, room: Room, message: ExecuteOperation, member: Member) -> None:
        """Apply (once) and persist an operation, answer the sender, then fan out its changes.

        Raises ``Overloaded`` when admission control refuses it; nothing is applied then.
        """
        op_id = message.operation_id
        waiting: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()

        def wait(outcome: Frame | BaseException) -> None:
            if waiting.done():  # this copy's task was cancelled meanwhile (its client is gone)
                return
            if isinstance(outcome, BaseException):
                waiting.set_exception(outcome)
            else:
                waiting.set_result(outcome)

        begun = room.begin(op_id, wait)
        if begun is Begun.WAITING:
            begun = await waiting
        if not isinstance(begun, Begun):
            self.metrics.operations_total.labels(message.op_type.value, "replayed").inc()
            member.send(encode(*begun))
            return
        try:
            step = await self._apply_and_persist(room, message)
        except BaseException as exc:
            room.failed(op_id, exc)
            raise
        reply = room.finish(step, member.user_id)
        member.send(encode(*reply.answer))
        if reply.update is not None:
            broadcast(room, encode(*reply.update))
        if reply.undo_state is not None:
            member.send(encode(*reply.undo_state))

    async def _apply_and_persist(self, room: Room, message: ExecuteOperation) -> Step:
        canvas, frame, items = room.canvas, message.frame, items_of(message.operation)
        started = await self.ops.acquire()
        persist_s = 0.0
        try:
            step = room.apply(message.operation_id, message.op_type, message.operation, len(frame),
                              self.storage.upload_exists)
            answer, snapshot = encode(*step.answer), canvas.to_json() if step.snapshot else None
            persist_started = time.perf_counter()
            try:
                snapshot_bytes = await self.persist.run(
                    lambda: self.storage.record_operation(
                        canvas.id, message.operation_id, canvas.version, frame, answer, snapshot
                    ),
                    items=step.persist_items,
                )
            except BaseException as exc:
                room.failed(message.operation_id, exc, step)  # while the ops worker is held: undone at once
                raise
            persist_s = time.perf_counter() - persist_started
            room.persisted(step, snapshot_bytes)
        finally:
            await self.ops.release(started, items, work_s=time.perf_counter() - started - persist_s)
        self.metrics.operations_total.labels(message.op_type.value, step.outcome).inc()
        return step

    def encode_reply(self, frame: Frame) -> str:
        """A frame's text for a transport; an operation refused before it was applied is counted."""
        if frame[0] == Event.OPERATION_REJECTED:
            self.metrics.operations_total.labels("unknown", "rejected").inc()
        return encode(*frame)
