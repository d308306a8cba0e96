"""One client socket's conversation with the server, whatever carries it (raw frames, Socket.IO, the model).

``receive`` takes a typed message (``bulkbench.protocol.parse_client_frame``'s output) and returns the
frame answering it, or ``Execute`` for an operation: the driver runs that through its stages with the
room's desk (``operations.Room``). Authorisation and rooms come from the driver, so the session has
no clock and no storage of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bulkbench.protocol import (
    ClientMessage,
    ErrorCode,
    Event,
    ExecuteOperation,
    JoinCanvas,
    Ping,
    ProtocolError,
    RequestFullSync,
    RequestUndoState,
)
from bulkbench.server_core.operations import Frame, Room, rejection

OpenRoom = Callable[[str], Room]
"""The canvas's room, loaded or created."""
Authorize = Callable[[str | None, str], None]
"""Raises ``ProtocolError`` if this token may not join this canvas (the driver brings the clock)."""


@dataclass(frozen=True, slots=True)
class Execute:
    """An operation for the driver to run on ``room`` (``begin``, the stages, ``finish``)."""

    room: Room
    message: ExecuteOperation


class Session:
    def __init__(self, session_id: str, member: Any, open_room: OpenRoom, authorize: Authorize | None = None,
                 handshake_token: str | None = None) -> None:
        """``member``: what the room broadcasts to (the driver's object for this socket)."""
        self.session_id = session_id
        self.member = member
        self.open_room = open_room
        self.authorize = authorize
        self.handshake_token = handshake_token
        self.room: Room | None = None

    def receive(self, message: ClientMessage | ProtocolError) -> Frame | Execute | None:
        match message:
            case ExecuteOperation():
                if self.room is None:
                    return rejection(ProtocolError(ErrorCode.NOT_JOINED, "join_canvas first", message.operation_id))
                return Execute(self.room, message)
            case JoinCanvas(canvas_id, token):
                if self.authorize is not None:
                    try:
                        self.authorize(token or self.handshake_token, canvas_id)
                    except ProtocolError as refused:
                        return rejection(refused)
                self.leave()
                self.room = self.open_room(canvas_id)
                self.room.join(self.member)
                return self.room.joined(self.session_id)
            case RequestFullSync():
                if self.room is None:
                    return rejection(ProtocolError(ErrorCode.NOT_JOINED, "join_canvas first"))
                return self.room.full_sync()
            case RequestUndoState():
                return None if self.room is None else (Event.UNDO_STATE_UPDATE, self.room.undo_state())
            case Ping(data):
                return Event.PONG, data
            case ProtocolError():
                return rejection(message)
        raise TypeError(f"not a client message: {message!r}")

    def leave(self) -> None:
        if self.room is not None:
            self.room.leave(self.member)
            self.room = None
