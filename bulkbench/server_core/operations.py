"""One canvas's operation desk: each operation applied once, answered, persisted at its price, fanned out.

The driver's part is what takes time: it asks ``begin`` (a stored answer, a duplicate still in flight
to wait for, or new), runs the ``ops`` stage around ``apply``, the ``persist`` stage for
``Step.persist_items`` (writing a snapshot when ``Step.snapshot``), then ``finish`` (or ``failed``
if a stage refused or the write failed: nothing stays applied). ``finish`` gives the frames to send.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from bulkbench.canvas import Applied, Canvas, UploadExists
from bulkbench.profile import Overloaded, Profile
from bulkbench.protocol import (
    BATCH_OPS,
    BatchNodeCreate,
    BatchUploadComplete,
    ErrorCode,
    Event,
    Operation,
    OpType,
    ProtocolError,
)

Frame = tuple[str, dict[str, Any]]
"""``(event, data)``: a frame the server sends, before a transport encodes it."""
Waiter = Callable[[Frame | BaseException], None]
"""Told the answer of a duplicate's first copy (or why it failed)."""


class Begun(Enum):
    """What ``Room.begin`` says of an operation that has no stored answer."""

    NEW = "new"
    """Apply it: it is in flight until ``finish`` or ``failed``."""
    WAITING = "waiting"
    """A copy of it is in flight: its answer comes through the waiter, it is never applied twice."""


def rejection(error: ProtocolError) -> Frame:
    """The frame refusing a client frame: ``operation_rejected`` if it named an operation, else ``error``."""
    if error.operation_id is not None:
        return Event.OPERATION_REJECTED, {"operationId": error.operation_id, **error.to_json(), "error": error.message}
    return Event.ERROR, error.to_json()


def overloaded(operation_id: str, exc: Overloaded) -> Frame:
    """An operation a full stage turned away: try again after Retry-After."""
    return rejection(ProtocolError(ErrorCode.OVERLOADED, str(exc), operation_id, exc.retry_after_s))


def items_of(operation: Operation) -> int:
    """How many items an operation's stages work on: a batch's entries, else one."""
    if isinstance(operation, BatchNodeCreate):
        return len(operation.nodes)
    if isinstance(operation, BatchUploadComplete):
        return len(operation.items)
    return 1


@dataclass(slots=True)
class Step:
    """An operation applied in memory and not yet persisted: what persisting costs, and its answer."""

    operation_id: str
    applied: Applied
    answer: Frame
    outcome: str
    """``ok``, ``partial`` or ``rejected`` (the operations counter's label)."""
    persist_items: int
    """Items the ``persist`` stage writes: the whole canvas with a snapshot (every change of a full
    rewrite; delta mode when one is due), else the operation's."""
    snapshot: bool
    """Write the canvas's snapshot with it (every change for a full rewrite; delta mode when one is due)."""
    log_bytes: int


@dataclass(slots=True)
class Reply:
    """What ``finish`` sends: the answer to the sender, the change to the room, the sender's undo state."""

    answer: Frame
    update: Frame | None = None
    undo_state: Frame | None = None


@dataclass(eq=False)
class Room:
    """A canvas, the answers to its operations so far, and who is looking at it (opaque members)."""

    canvas: Canvas
    profile: Profile
    acks: dict[str, Frame] = field(default_factory=dict)
    members: dict[Any, None] = field(default_factory=dict)
    """An ordered set: broadcasts go out in the order members joined."""
    undo_count: int = 0
    snapshot_version: int = 0
    snapshot_bytes: int = 0
    log_bytes_since_snapshot: int = 0
    """Delta mode snapshots once the log since the last snapshot outweighs it, and at most every
    ``snapshot_every_ops`` versions: writing snapshots then costs at most as much as the log."""
    waiters: dict[str, list[Waiter]] = field(default_factory=dict)
    """Operations being applied, and who waits for their answer (a resend that arrived meanwhile)."""

    # ------------------------------------------------------------------ members

    def join(self, member: Any) -> None:
        self.members[member] = None

    def leave(self, member: Any) -> None:
        self.members.pop(member, None)

    # ------------------------------------------------------------------ one operation

    def begin(self, operation_id: str, wait: Waiter) -> Frame | Begun:
        """The stored answer of an operation seen before, else whether to apply it or wait (``wait``
        is told the first copy's answer, or why it failed)."""
        stored = self.acks.get(operation_id)
        if stored is not None:
            return stored
        waiting = self.waiters.get(operation_id)
        if waiting is not None:
            waiting.append(wait)
            return Begun.WAITING
        self.waiters[operation_id] = []
        return Begun.NEW

    def apply(self, operation_id: str, op_type: OpType, operation: Operation, frame_bytes: int,
              upload_exists: UploadExists) -> Step:
        """Apply the items that can be applied (in the ``ops`` stage) and price persisting them."""
        canvas, profile = self.canvas, self.profile
        applied = canvas.apply(operation, upload_exists)
        answer, outcome = self._answer(operation_id, op_type, applied)
        snapshot = applied.changed and (
            profile.persistence == "full_rewrite"
            or (canvas.version - self.snapshot_version >= profile.snapshot_every_ops
                and self.log_bytes_since_snapshot + frame_bytes >= self.snapshot_bytes))
        persist_items = len(canvas.nodes) if snapshot else items_of(operation)  # a snapshot: the whole canvas
        return Step(operation_id, applied, answer, outcome, persist_items, snapshot,
                    frame_bytes if applied.changed else 0)

    def _answer(self, operation_id: str, op_type: OpType, applied: Applied) -> tuple[Frame, str]:
        version = self.canvas.version
        if op_type in BATCH_OPS:
            outcome = "ok" if applied.ok_count == len(applied.results) else "partial"
            return (Event.OPERATION_ACK,
                    {"operationId": operation_id, "stateVersion": version, "results": applied.results}), outcome
        result = applied.results[0]
        if result["ok"]:
            return (Event.OPERATION_ACK, {"operationId": operation_id, "stateVersion": version}), "ok"
        return (Event.OPERATION_REJECTED,
                {"operationId": operation_id, "code": result["code"], "error": result["error"]}), "rejected"

    def persisted(self, step: Step, snapshot_bytes: int = 0) -> None:
        """The write is on disk: account for the log (and the snapshot, if one was written)."""
        self.log_bytes_since_snapshot += step.log_bytes
        if step.snapshot:
            self.snapshot_version, self.snapshot_bytes = self.canvas.version, snapshot_bytes
            self.log_bytes_since_snapshot = 0

    def failed(self, operation_id: str, why: BaseException, step: Step | None = None) -> None:
        """A stage refused the operation or persisting it failed: memory keeps nothing the disk does not,
        and whoever waits for it learns why."""
        if step is not None:
            self.canvas.undo(step.applied)
        for wait in self.waiters.pop(operation_id, ()):
            wait(why)

    def finish(self, step: Step, sender_id: str) -> Reply:
        """The operation is persisted: its answer is kept for resends, given to any waiting copy, and sent;
        a change goes to the whole room, and (``undo_push``) the sender's undo state follows."""
        operation_id, applied = step.operation_id, step.applied
        self.acks[operation_id] = step.answer
        for wait in self.waiters.pop(operation_id, ()):
            wait(step.answer)
        reply = Reply(step.answer)
        if applied.changed:
            reply.update = (Event.STATE_UPDATE, {
                "stateVersion": self.canvas.version,
                "changes": {"added": applied.added, "updated": applied.updated, "removed": []},
                "operationId": operation_id,
                "fromUserId": sender_id,
            })
            if self.profile.undo_push:
                self.undo_count += 1
                reply.undo_state = (Event.UNDO_STATE_UPDATE, self.undo_state())
        return reply

    # ------------------------------------------------------------------ views

    def undo_state(self) -> dict[str, Any]:
        return {"canUndo": self.undo_count > 0, "canRedo": False, "undoCount": self.undo_count}

    def joined(self, session_id: str) -> Frame:
        canvas = self.canvas
        return Event.CANVAS_JOINED, {"canvas": canvas.to_json(),
                                     "session": {"sessionId": session_id, "userId": session_id},
                                     "stateVersion": canvas.version}

    def full_sync(self) -> Frame:
        canvas = self.canvas
        return Event.FULL_STATE_SYNC, {"state": {"nodes": list(canvas.nodes.values()), "version": canvas.version},
                                       "stateVersion": canvas.version}
