"""The wire protocol, sans-I/O: frames in, typed messages (or typed errors) out.

Every WebSocket frame is JSON ``{"event": NAME, "data": {...}}`` with the reference system's event
names. ``parse_client_frame`` turns a text frame into one of the message classes below or into a
``ProtocolError``; it never raises. The server, the load-test driver and the model all speak through
these names, so a message name exists exactly once: here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from bulkbench.limits import DEFAULT_LIMITS, Limits


class Event(StrEnum):
    """Event names on the WebSocket, as the reference system spells them."""

    JOIN_CANVAS = "join_canvas"
    CANVAS_JOINED = "canvas_joined"
    EXECUTE_OPERATION = "execute_operation"
    OPERATION_ACK = "operation_ack"
    OPERATION_REJECTED = "operation_rejected"
    STATE_UPDATE = "state_update"
    REQUEST_FULL_SYNC = "request_full_sync"
    FULL_STATE_SYNC = "full_state_sync"
    REQUEST_UNDO_STATE = "request_undo_state"
    UNDO_STATE_UPDATE = "undo_state_update"
    PING = "ping"
    PONG = "pong"
    ERROR = "error"
    """Answer to a frame that is not an operation (or cannot be read as one)."""


class OpType(StrEnum):
    """Operation types carried by ``execute_operation``."""

    NODE_CREATE = "node_create"
    IMAGE_UPLOAD_COMPLETE = "image_upload_complete"
    BATCH_NODE_CREATE = "batch_node_create"
    BATCH_UPLOAD_COMPLETE = "batch_upload_complete"


BATCH_OPS = frozenset({OpType.BATCH_NODE_CREATE, OpType.BATCH_UPLOAD_COMPLETE})


class ErrorCode(StrEnum):
    """Machine-readable error codes, shared by WebSocket error frames and HTTP error bodies."""

    BAD_JSON = "bad_json"
    BAD_FRAME = "bad_frame"
    UNKNOWN_EVENT = "unknown_event"
    UNKNOWN_OPERATION = "unknown_operation"
    INVALID_PARAMS = "invalid_params"
    MESSAGE_TOO_LARGE = "message_too_large"
    BATCH_TOO_LARGE = "batch_too_large"
    NOT_JOINED = "not_joined"
    DUPLICATE_NODE = "duplicate_node"
    UNKNOWN_HASH = "unknown_hash"
    UNKNOWN_UPLOAD = "unknown_upload"
    CANVAS_FULL = "canvas_full"
    OVERLOADED = "overloaded"
    RATE_LIMITED = "rate_limited"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UPLOAD_TOO_SLOW = "upload_too_slow"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    INVALID_UPLOAD = "invalid_upload"
    INVALID_IMAGE = "invalid_image"
    IMAGE_TOO_LARGE = "image_too_large"
    INTERNAL = "internal"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_JSON: 400,
    ErrorCode.BAD_FRAME: 400,
    ErrorCode.INVALID_PARAMS: 400,
    ErrorCode.INVALID_UPLOAD: 400,
    ErrorCode.INVALID_IMAGE: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UPLOAD_TOO_SLOW: 408,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.IMAGE_TOO_LARGE: 413,
    ErrorCode.MESSAGE_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.INTERNAL: 500,
}
"""HTTP status for each code that can be an HTTP answer (400 for any code not listed)."""



def thumbnail_url(size: int, stem: str) -> str:
    """Where a stored file's thumbnail of one size is served (its stem: the stored name without extension)."""
    return f"/thumbnails/{size}/{stem}.webp"


def retry_after_header(seconds: float) -> int:
    """Retry-After as an HTTP answer carries it: whole seconds, never 0 (the model's clients read the same)."""
    return max(1, round(seconds))

class ProtocolError(Exception):
    """A typed refusal: what went wrong (``code``), for whom (``operation_id``), in words."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        operation_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.operation_id = operation_id
        self.retry_after_s = retry_after_s

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 400)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.retry_after_s is not None:
            body["retryAfterMs"] = round(self.retry_after_s * 1000)
        return body

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ProtocolError)
            and (self.code, self.message, self.operation_id)
            == (other.code, other.message, other.operation_id)
        )

    __hash__ = Exception.__hash__

    def __repr__(self) -> str:
        return f"ProtocolError({self.code.value!r}, {self.message!r}, op={self.operation_id!r})"


# --------------------------------------------------------------------------- operations


@dataclass(slots=True)
class NodeSpec:
    """One node to create: the reference's ``node_create`` params (``type`` and ``pos`` required;
    without an ``id`` the server names the node, as ImageCanvas does)."""

    id: str | None
    type: str
    pos: tuple[float, float]
    size: tuple[float, float] = (150.0, 100.0)
    properties: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "pos": list(self.pos),
            "size": list(self.size),
            "properties": dict(self.properties),
        }


@dataclass(frozen=True, slots=True)
class UploadItem:
    """One finished upload to attach to the node(s) carrying its hash."""

    hash: str
    server_url: str
    server_filename: str


@dataclass(frozen=True, slots=True)
class NodeCreate:
    node: NodeSpec


@dataclass(frozen=True, slots=True)
class ImageUploadComplete:
    item: UploadItem


@dataclass(frozen=True, slots=True)
class BatchNodeCreate:
    """Items that failed validation stay in place as ``ProtocolError`` and fail alone."""

    nodes: list[NodeSpec | ProtocolError]


@dataclass(frozen=True, slots=True)
class BatchUploadComplete:
    items: list[UploadItem | ProtocolError]


Operation = NodeCreate | ImageUploadComplete | BatchNodeCreate | BatchUploadComplete


# --------------------------------------------------------------------------- client messages


@dataclass(frozen=True, slots=True)
class JoinCanvas:
    canvas_id: str
    token: str | None = None


@dataclass(frozen=True, slots=True)
class ExecuteOperation:
    operation_id: str
    op_type: OpType
    operation: Operation
    frame: str = ""
    """The frame's text as received: what the server's operation log keeps and replays."""


@dataclass(frozen=True, slots=True)
class RequestFullSync:
    pass


@dataclass(frozen=True, slots=True)
class RequestUndoState:
    pass


@dataclass(frozen=True, slots=True)
class Ping:
    data: dict[str, Any]


ClientMessage = JoinCanvas | ExecuteOperation | RequestFullSync | RequestUndoState | Ping
MESSAGE_EVENTS: dict[type, Event] = {JoinCanvas: Event.JOIN_CANVAS, ExecuteOperation: Event.EXECUTE_OPERATION,
                                     RequestFullSync: Event.REQUEST_FULL_SYNC,
                                     RequestUndoState: Event.REQUEST_UNDO_STATE, Ping: Event.PING}
"""The event each message class is read from."""


# --------------------------------------------------------------------------- encoding


def dumps(value: Any) -> str:
    """Compact JSON text. orjson: frames of a 1000-node batch are encoded on every hot path."""
    return orjson.dumps(value).decode()


def loads(text: str | bytes) -> Any:
    """Parse JSON; raises ``ValueError`` on anything that is not strict JSON (NaN, huge ints...)."""
    return orjson.loads(text)


def encode(event: Event | str, data: dict[str, Any]) -> str:
    """One frame's text: compact JSON, the envelope every frame uses."""
    return orjson.dumps({"event": str(event), "data": data}).decode()


def event_of(frame: str) -> str:
    """The event name of a frame made by ``encode`` (which always puts it first), without parsing."""
    return frame[10 : frame.index('"', 10)]


def frame_bytes(text: str) -> int:
    """UTF-8 size of a text frame, without encoding it when the answer is already certain."""
    n = len(text)
    return n if text.isascii() else len(text.encode("utf-8"))


def execute_operation_frame(operation_id: str, op_type: OpType | str, params: dict[str, Any]) -> str:
    return encode(
        Event.EXECUTE_OPERATION, {"operationId": operation_id, "type": str(op_type), "params": params}
    )


# --------------------------------------------------------------------------- parsing


def _bad(message: str, operation_id: str | None = None) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_PARAMS, message, operation_id)


MAX_COORDINATE = 1e12
"""Largest absolute position or size: finite, and far from float precision trouble."""


MAX_NESTING = 32
"""Deepest nesting of free-form JSON (node ``properties``, ``ping`` data), lists and objects counted.
What the server stores, broadcasts and echoes must stay encodable: orjson writes at most 254 levels."""


def _deeper_than(value: Any, levels: int) -> bool:
    """Whether lists and objects nest more than ``levels`` deep in ``value``; level by level, no recursion."""
    level = [value]
    for _ in range(levels):
        level = [child for item in level for child in (item.values() if type(item) is dict else item)
                 if type(child) is dict or type(child) is list]
        if not level:
            return False
    return True


def _pair(value: Any, name: str) -> tuple[float, float] | str:
    """Two finite numbers (not bools, not NaN, not inf). On every node's path, so kept plain."""
    if type(value) is list and len(value) == 2:
        a, b = value
        ta, tb = type(a), type(b)
        if (
            (ta is float or ta is int)
            and (tb is float or tb is int)
            and -MAX_COORDINATE <= a <= MAX_COORDINATE
            and -MAX_COORDINATE <= b <= MAX_COORDINATE
        ):
            return (float(a), float(b))
    return f"{name} must be a list of two finite numbers within +-{MAX_COORDINATE:g}"


def _ident(value: Any, name: str, limits: Limits) -> str | None:
    """Return an error text if ``value`` is not a usable identifier, else None."""
    if not isinstance(value, str) or not value:
        return f"{name} must be a non-empty string"
    if len(value) > limits.max_id_chars:
        return f"{name} longer than max_id_chars={limits.max_id_chars}"
    return None


def parse_node(raw: Any, limits: Limits = DEFAULT_LIMITS) -> NodeSpec | str:
    """A node's params, validated; a string says what is wrong."""
    if not isinstance(raw, dict):
        return "node must be an object"
    node_id = raw.get("id")
    error = (_ident(node_id, "id", limits) if node_id is not None else None) or _ident(raw.get("type"), "type", limits)
    if error:
        return error
    pos = _pair(raw.get("pos"), "pos")
    if isinstance(pos, str):
        return pos
    size: tuple[float, float] | str = (150.0, 100.0)
    if "size" in raw:
        size = _pair(raw["size"], "size")
        if isinstance(size, str):
            return size
    props = raw.get("properties", {})
    if not isinstance(props, dict):
        return "properties must be an object"
    if _deeper_than(props, MAX_NESTING):
        return f"properties nested deeper than {MAX_NESTING} levels"
    return NodeSpec(node_id, raw["type"], pos, size, props)


def parse_upload_item(raw: Any, limits: Limits = DEFAULT_LIMITS) -> UploadItem | str:
    if not isinstance(raw, dict):
        return "item must be an object"
    for key in ("hash", "serverUrl", "serverFilename"):
        error = _ident(raw.get(key), key, limits)
        if error:
            return error
    return UploadItem(raw["hash"], raw["serverUrl"], raw["serverFilename"])


def _parse_batch(
    params: dict[str, Any], key: str, parse_item: Any, operation_id: str, limits: Limits
) -> list[Any] | ProtocolError:
    raw_items = params.get(key)
    if not isinstance(raw_items, list) or not raw_items:
        return _bad(f"params.{key} must be a non-empty list", operation_id)
    if len(raw_items) > limits.max_batch_items:
        return ProtocolError(
            ErrorCode.BATCH_TOO_LARGE,
            f"{len(raw_items)} items, over max_batch_items={limits.max_batch_items}",
            operation_id,
        )
    out: list[Any] = []
    for index, raw in enumerate(raw_items):
        item = parse_item(raw, limits)
        out.append(_bad(f"item {index}: {item}", operation_id) if isinstance(item, str) else item)
    return out


def parse_operation(
    operation_id: str, op_type: str, params: Any, limits: Limits = DEFAULT_LIMITS
) -> Operation | ProtocolError:
    """The typed operation for ``op_type`` and its ``params``."""
    if not isinstance(params, dict):
        return _bad("params must be an object", operation_id)
    if op_type == OpType.NODE_CREATE:
        node = parse_node(params, limits)
        return _bad(node, operation_id) if isinstance(node, str) else NodeCreate(node)
    if op_type == OpType.IMAGE_UPLOAD_COMPLETE:
        item = parse_upload_item(params, limits)
        return _bad(item, operation_id) if isinstance(item, str) else ImageUploadComplete(item)
    if op_type == OpType.BATCH_NODE_CREATE:
        nodes = _parse_batch(params, "nodes", parse_node, operation_id, limits)
        return nodes if isinstance(nodes, ProtocolError) else BatchNodeCreate(nodes)
    if op_type == OpType.BATCH_UPLOAD_COMPLETE:
        items = _parse_batch(params, "items", parse_upload_item, operation_id, limits)
        return items if isinstance(items, ProtocolError) else BatchUploadComplete(items)
    return ProtocolError(
        ErrorCode.UNKNOWN_OPERATION, f"unknown operation type {op_type!r}", operation_id
    )


def _operation_id_of(data: Any, limits: Limits = DEFAULT_LIMITS) -> str | None:
    """The operationId of a frame we refuse, if it has a readable one, so the client can match it."""
    if isinstance(data, dict):
        op_id = data.get("operationId")
        if isinstance(op_id, str) and 0 < len(op_id) <= limits.max_id_chars:
            return op_id
    return None


def parse_client_frame(text: str | bytes, limits: Limits = DEFAULT_LIMITS) -> ClientMessage | ProtocolError:
    """Turn one client frame into a typed message, or a typed error saying why not. Never raises."""
    if isinstance(text, bytes | bytearray):
        return ProtocolError(ErrorCode.BAD_FRAME, "binary frames are not part of the protocol")
    size = frame_bytes(text)
    try:
        frame = orjson.loads(text)
    except (ValueError, RecursionError):
        return ProtocolError(ErrorCode.BAD_JSON, "frame is not valid JSON")
    if not isinstance(frame, dict) or not isinstance(frame.get("event"), str):
        return ProtocolError(ErrorCode.BAD_FRAME, 'frame must be {"event": NAME, "data": {...}}')
    event, data = frame["event"], frame.get("data", {})
    if not isinstance(data, dict):
        return ProtocolError(ErrorCode.BAD_FRAME, "data must be an object")

    if event == Event.EXECUTE_OPERATION:
        op_id = _operation_id_of(data, limits)
        if size > limits.max_message_bytes:
            return ProtocolError(
                ErrorCode.MESSAGE_TOO_LARGE,
                f"Operation too large: {size} bytes, over max_message_bytes={limits.max_message_bytes}",
                op_id,
            )
        if op_id is None:
            return _bad("operationId must be a non-empty string")
        op_type = data.get("type")
        if not isinstance(op_type, str):
            return _bad("type must be a string", op_id)
        operation = parse_operation(op_id, op_type, data.get("params"), limits)
        if isinstance(operation, ProtocolError):
            return operation
        return ExecuteOperation(op_id, OpType(op_type), operation, text if isinstance(text, str) else "")
    if size > limits.max_message_bytes:
        return ProtocolError(
            ErrorCode.MESSAGE_TOO_LARGE, f"frame of {size} bytes over max_message_bytes"
        )
    if event == Event.JOIN_CANVAS:
        error = _ident(data.get("canvasId"), "canvasId", limits)
        if error:
            return _bad(error)
        token = data.get("token")
        return JoinCanvas(data["canvasId"], token if isinstance(token, str) else None)
    if event == Event.REQUEST_FULL_SYNC:
        return RequestFullSync()
    if event == Event.REQUEST_UNDO_STATE:
        return RequestUndoState()
    if event == Event.PING:
        if _deeper_than(data, MAX_NESTING):
            return ProtocolError(ErrorCode.BAD_FRAME, f"data nested deeper than {MAX_NESTING} levels")
        return Ping(data)
    return ProtocolError(ErrorCode.UNKNOWN_EVENT, f"unknown event {event!r}")


def parse_server_frame(text: str) -> tuple[str, dict[str, Any]]:
    """Client side: split a server frame into (event, data). Servers we test are trusted to be JSON."""
    frame = orjson.loads(text)
    return frame["event"], frame.get("data") or {}
