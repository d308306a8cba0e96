"""Canvas operations end to end: idempotency, the ``ops`` stage, persisting, fan-out to the room.

This is the server's logic with the transports taken away: ``ws`` hands it parsed messages and a
``Member`` to answer through; it returns frames. A repeated ``operationId`` gets the stored answer,
never a second application; an operation is persisted before its ack leaves.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bulkbench.canvas import Applied, Canvas
from bulkbench.profile import Profile
from bulkbench.protocol import (
    BATCH_OPS,
    BatchNodeCreate,
    BatchUploadComplete,
    Event,
    ExecuteOperation,
    ProtocolError,
    encode,
    parse_client_frame,
)
from reference_server.metrics import Metrics
from reference_server.stages import Stage
from reference_server.storage import Storage


class Member(Protocol):
    """Whoever is in a canvas room: something we can queue frames to."""

    user_id: str

    def send(self, text: str) -> None: ...


@dataclass(eq=False)
class Room:
    """A loaded canvas, the answers to its operations so far, and who is looking at it."""

    canvas: Canvas
    acks: dict[str, str]
    members: set[Member] = field(default_factory=set)
    in_flight: dict[str, asyncio.Future[str]] = field(default_factory=dict)
    undo_count: int = 0
    snapshot_version: int = 0
    snapshot_bytes: int = 0
    log_bytes_since_snapshot: int = 0
    """Delta mode snapshots once the log since the last snapshot outweighs it, and at most every
    ``snapshot_every_ops`` versions: writing snapshots then costs at most as much as the log."""

    def snapshot_due(self, every_ops: int) -> bool:
        return (
            self.canvas.version - self.snapshot_version >= every_ops
            and self.log_bytes_since_snapshot >= self.snapshot_bytes
        )

    def broadcast(self, text: str) -> None:
        for member in list(self.members):
            member.send(text)


def _items(operation: Any) -> int:
    if isinstance(operation, BatchNodeCreate):
        return len(operation.nodes)
    if isinstance(operation, BatchUploadComplete):
        return len(operation.items)
    return 1


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
        canvas = Canvas.from_json(snapshot, self.profile.limits)
        log_bytes = 0
        for _operation_id, frame, _ack in tail:
            message = parse_client_frame(frame, self.profile.limits)
            assert isinstance(message, ExecuteOperation), "the log holds only accepted operations"
            canvas.apply(message.operation, self.storage.upload_exists)
            log_bytes += len(frame)
        room = Room(canvas, self.storage.load_acks(canvas_id), snapshot_version=snapshot["version"],
                    log_bytes_since_snapshot=log_bytes)
        self.rooms[canvas_id] = room
        return room

    def open(self, canvas_id: str) -> Room:
        """The canvas, created empty if it does not exist yet."""
        room = self.find(canvas_id)
        if room is None:
            canvas = Canvas(canvas_id, self.profile.limits)
            self.storage.create_canvas(canvas.to_json())
            room = self.rooms[canvas_id] = Room(canvas, {})
        return room

    # ------------------------------------------------------------------ operations

    async def execute(self, room: Room, message: ExecuteOperation, frame: str, member: Member) -> None:
        """Apply (once) and persist an operation, answer the sender, then fan out its changes.

        Raises ``Overloaded`` when admission control refuses it; nothing is applied then.
        """
        op_id = message.operation_id
        stored = room.acks.get(op_id)
        if stored is None and op_id in room.in_flight:
            stored = await asyncio.shield(room.in_flight[op_id])
        if stored is not None:
            self.metrics.operations_total.labels(message.op_type.value, "replayed").inc()
            member.send(stored)
            return
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        room.in_flight[op_id] = future
        try:
            answer, applied = await self._apply_and_persist(room, message, frame)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved: only waiters re-raise it
            raise
        finally:
            room.in_flight.pop(op_id, None)
        future.set_result(answer)
        room.acks[op_id] = answer
        member.send(answer)
        if applied.changed:
            room.broadcast(
                encode(
                    Event.STATE_UPDATE,
                    {
                        "stateVersion": room.canvas.version,
                        "changes": {"added": applied.added, "updated": applied.updated, "removed": []},
                        "operationId": op_id,
                        "fromUserId": member.user_id,
                    },
                )
            )
            if self.profile.undo_push:
                room.undo_count += 1
                member.send(encode(Event.UNDO_STATE_UPDATE, self.undo_state(room)))

    def _answer(self, message: ExecuteOperation, room: Room, applied: Applied) -> tuple[str, str]:
        op_id = message.operation_id
        if message.op_type in BATCH_OPS:
            outcome = "ok" if applied.ok_count == len(applied.results) else "partial"
            data = {"operationId": op_id, "stateVersion": room.canvas.version, "results": applied.results}
            return encode(Event.OPERATION_ACK, data), outcome
        result = applied.results[0]
        if result["ok"]:
            return encode(Event.OPERATION_ACK, {"operationId": op_id, "stateVersion": room.canvas.version}), "ok"
        return (
            encode(
                Event.OPERATION_REJECTED,
                {"operationId": op_id, "code": result["code"], "error": result["error"]},
            ),
            "rejected",
        )

    async def _apply_and_persist(
        self, room: Room, message: ExecuteOperation, frame: str
    ) -> tuple[str, Applied]:
        canvas = room.canvas
        items = _items(message.operation)
        started = await self.ops.acquire()
        persist_s = 0.0
        try:
            applied = canvas.apply(message.operation, self.storage.upload_exists)
            answer, outcome = self._answer(message, room, applied)
            snapshot = None
            rewrite_items = 0
            if applied.changed:
                room.log_bytes_since_snapshot += len(frame)
                if self.profile.persistence == "full_rewrite":
                    snapshot, rewrite_items = canvas.to_json(), len(canvas.nodes)
                elif room.snapshot_due(self.profile.snapshot_every_ops):
                    snapshot = canvas.to_json()
            persist_started = time.perf_counter()
            try:
                snapshot_bytes = await self.persist.run(
                    lambda: self.storage.record_operation(
                        canvas.id, message.operation_id, canvas.version, frame, answer, snapshot
                    ),
                    items=rewrite_items or items,
                )
            except BaseException:
                canvas.undo(applied)
                raise
            persist_s = time.perf_counter() - persist_started
            if snapshot is not None:
                room.snapshot_version, room.snapshot_bytes = canvas.version, snapshot_bytes
                room.log_bytes_since_snapshot = 0
        finally:
            await self.ops.release(started, items, work_s=time.perf_counter() - started - persist_s)
        self.metrics.operations_total.labels(message.op_type.value, outcome).inc()
        return answer, applied

    def undo_state(self, room: Room) -> dict[str, Any]:
        return {"canUndo": room.undo_count > 0, "canRedo": False, "undoCount": room.undo_count}

    def rejection(self, error: ProtocolError) -> str:
        """The frame answering a refused client frame."""
        if error.operation_id is not None:
            self.metrics.operations_total.labels("unknown", "rejected").inc()
            return encode(
                Event.OPERATION_REJECTED,
                {"operationId": error.operation_id, **error.to_json(), "error": error.message},
            )
        return encode(Event.ERROR, error.to_json())

