"""The sans-I/O protocol: every bad frame becomes a typed error, never an exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkbench.limits import Limits
from bulkbench.protocol import (
    BatchNodeCreate,
    ErrorCode,
    Event,
    ExecuteOperation,
    JoinCanvas,
    NodeCreate,
    OpType,
    Ping,
    ProtocolError,
    RequestFullSync,
    RequestUndoState,
    encode,
    event_of,
    execute_operation_frame,
    parse_client_frame,
)


def op_frame(op_type: str, params: object, op_id: str = "op1") -> str:
    return json.dumps({"event": "execute_operation",
                       "data": {"operationId": op_id, "type": op_type, "params": params}})


NODE = {"id": "n1", "type": "media/image", "pos": [1, 2]}


def test_node_create_parses_into_a_typed_operation() -> None:
    message = parse_client_frame(op_frame("node_create", NODE))
    assert isinstance(message, ExecuteOperation)
    assert message.operation_id == "op1" and message.op_type is OpType.NODE_CREATE
    assert isinstance(message.operation, NodeCreate)
    assert message.operation.node.pos == (1.0, 2.0)
    assert message.operation.node.size == (150.0, 100.0)  # the reference's default size


def test_join_canvas_parses() -> None:
    assert parse_client_frame(encode(Event.JOIN_CANVAS, {"canvasId": "c"})) == JoinCanvas("c")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", ErrorCode.BAD_JSON),
        ("[1, 2]", ErrorCode.BAD_FRAME),
        ('{"event": 3}', ErrorCode.BAD_FRAME),
        ('{"event": "ping", "data": []}', ErrorCode.BAD_FRAME),
        ('{"event": "dance", "data": {}}', ErrorCode.UNKNOWN_EVENT),
        (op_frame("node_delete", NODE), ErrorCode.UNKNOWN_OPERATION),
        (op_frame("node_create", {"id": "n", "type": "t", "pos": "1,2"}), ErrorCode.INVALID_PARAMS),
        (op_frame("node_create", {"id": "n", "type": "t", "pos": [1e13, 0]}), ErrorCode.INVALID_PARAMS),
        (op_frame("node_create", {"id": "n", "type": "t", "pos": [True, 0]}), ErrorCode.INVALID_PARAMS),
        (op_frame("node_create", {"id": "n", "type": "t", "pos": [1, 2, 3]}), ErrorCode.INVALID_PARAMS),
        ('{"event": "ping", "data": {"x": 1e400}}', ErrorCode.BAD_JSON),
        ('{"event": "ping", "data": {"x": NaN}}', ErrorCode.BAD_JSON),
        (op_frame("node_create", {"id": 7, "type": "t", "pos": [0, 0]}), ErrorCode.INVALID_PARAMS),
        (op_frame("node_create", [1]), ErrorCode.INVALID_PARAMS),
        (op_frame("batch_node_create", {"nodes": []}), ErrorCode.INVALID_PARAMS),
        (op_frame("image_upload_complete", {"hash": "h"}), ErrorCode.INVALID_PARAMS),
        ('{"event": "execute_operation", "data": {"type": "node_create"}}', ErrorCode.INVALID_PARAMS),
        ("[" * 100_000 + "]" * 100_000, ErrorCode.BAD_JSON),
        ('{"event": "ping", "data": {"n": ' + "9" * 5000 + "}}", ErrorCode.BAD_JSON),
    ],
)
def test_bad_frames_become_typed_errors(frame: str, code: ErrorCode) -> None:
    result = parse_client_frame(frame)
    assert isinstance(result, ProtocolError)
    assert result.code is code


def test_binary_frames_are_refused() -> None:
    result = parse_client_frame(b"\x00\x01")
    assert isinstance(result, ProtocolError) and result.code is ErrorCode.BAD_FRAME


def test_an_operation_over_the_message_cap_is_rejected_with_its_id() -> None:
    limits = Limits(max_message_bytes=1000)
    frame = op_frame("node_create", {**NODE, "properties": {"pad": "x" * 2000}}, op_id="big")
    result = parse_client_frame(frame, limits)
    assert isinstance(result, ProtocolError)
    assert result.code is ErrorCode.MESSAGE_TOO_LARGE and result.operation_id == "big"
    assert "Operation too large" in result.message


def test_a_batch_over_the_item_limit_is_rejected_whole() -> None:
    limits = Limits(max_batch_items=3)
    frame = op_frame("batch_node_create", {"nodes": [NODE] * 4})
    result = parse_client_frame(frame, limits)
    assert isinstance(result, ProtocolError) and result.code is ErrorCode.BATCH_TOO_LARGE


def test_bad_items_in_a_batch_fail_alone() -> None:
    frame = op_frame("batch_node_create", {"nodes": [NODE, {"id": "x"}, {**NODE, "id": "n2"}]})
    message = parse_client_frame(frame)
    assert isinstance(message, ExecuteOperation) and isinstance(message.operation, BatchNodeCreate)
    kinds = [type(item).__name__ for item in message.operation.nodes]
    assert kinds == ["NodeSpec", "ProtocolError", "NodeSpec"]


def test_event_of_reads_the_name_encode_wrote() -> None:
    assert event_of(encode(Event.STATE_UPDATE, {"a": 1})) == "state_update"
    assert event_of(execute_operation_frame("o", OpType.NODE_CREATE, NODE)) == "execute_operation"


@settings(max_examples=300, deadline=None, derandomize=True)  # the same examples every run
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300),
                 st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
                              lambda kids: st.lists(kids, max_size=4)
                              | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                              max_leaves=20).map(json.dumps)))
def test_parsing_never_raises(frame: str | bytes) -> None:
    result = parse_client_frame(frame)
    assert isinstance(result, ProtocolError | JoinCanvas | ExecuteOperation | RequestFullSync | RequestUndoState
                      | Ping)
    if isinstance(frame, bytes):
        assert isinstance(result, ProtocolError) and result.code == ErrorCode.BAD_FRAME
