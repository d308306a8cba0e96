"""The WebSocket protocol against a real server process, with a real ``websockets`` client."""

from __future__ import annotations

import json

import httpx
import pytest

from bulkbench.protocol import ErrorCode, Event, OpType, execute_operation_frame
from tests.helpers import canvas_of, image_bytes, node, sha256_hex, upload


def test_node_create_is_acked_broadcast_and_on_the_server(start_server, ws_factory) -> None:
    server = start_server("legacy")
    alice, bob = ws_factory(server), ws_factory(server)
    alice.join("c1")
    bob.join("c1")
    event, ack = alice.op("op1", OpType.NODE_CREATE, node(1))
    assert event == Event.OPERATION_ACK and ack["stateVersion"] == 1
    _, update = bob.until(Event.STATE_UPDATE)
    assert [n["id"] for n in update["changes"]["added"]] == ["n1"]
    assert update["operationId"] == "op1"
    assert [n["id"] for n in canvas_of(server, "c1")["nodes"]] == ["n1"]


def test_legacy_sends_six_frames_per_operation_round(start_server, ws_factory) -> None:
    """Two up (the operation, the undo-state request), four down (ack, state_update, the pushed undo
    state, the asked one), as ImageCanvas: nothing else in between (a ping's pong closes the round)."""
    server = start_server("legacy")
    client = ws_factory(server)
    client.join("c1")
    client.seen.clear()
    client.op("op1", OpType.NODE_CREATE, node(1))
    client.send(Event.REQUEST_UNDO_STATE, {})
    client.send(Event.PING, {"n": 1})
    client.until(Event.PONG)
    assert [event for event, _ in client.seen] == [Event.OPERATION_ACK, Event.STATE_UPDATE, Event.UNDO_STATE_UPDATE,
                                                   Event.UNDO_STATE_UPDATE, Event.PONG]
    assert client.seen[3][1]["undoCount"] == 1


@pytest.mark.parametrize("count", [1, 100, 1000])
def test_batch_node_create_applies_every_node_in_one_ack(start_server, ws_factory, count) -> None:
    server = start_server("optimized")
    client = ws_factory(server)
    client.join("c1")
    event, ack = client.op("b1", OpType.BATCH_NODE_CREATE, {"nodes": [node(i) for i in range(count)]})
    assert event == Event.OPERATION_ACK
    assert len(ack["results"]) == count and all(r["ok"] for r in ack["results"])
    assert ack["stateVersion"] == 1  # one batch, one version
    assert len(canvas_of(server, "c1")["nodes"]) == count


def test_bad_items_fail_alone_and_good_ones_apply(start_server, ws_factory) -> None:
    server = start_server("optimized")
    client = ws_factory(server)
    client.join("c1")
    client.op("a", OpType.NODE_CREATE, node(0))
    nodes = [node(1), {"id": "x", "pos": [0, 0]}, node(0), node(2)]
    _, ack = client.op("b", OpType.BATCH_NODE_CREATE, {"nodes": nodes})
    assert [(r["ok"], r.get("code")) for r in ack["results"]] == [
        (True, None), (False, "invalid_params"), (False, "duplicate_node"), (True, None)]
    assert sorted(n["id"] for n in canvas_of(server, "c1")["nodes"]) == ["n0", "n1", "n2"]


def test_upload_then_image_upload_complete_sets_the_server_url(start_server, ws_factory) -> None:
    server = start_server("optimized")
    data = image_bytes(seed=3)
    digest = sha256_hex(data)
    client = ws_factory(server)
    client.join("c1")
    client.op("n", OpType.NODE_CREATE, node(1, image_hash=digest))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        stored = upload(http, data).json()
    item = {"hash": digest, "serverUrl": stored["url"], "serverFilename": stored["serverFilename"]}
    event, _ = client.op("u", OpType.IMAGE_UPLOAD_COMPLETE, item)
    assert event == Event.OPERATION_ACK
    (only,) = canvas_of(server, "c1")["nodes"]
    assert only["properties"]["serverUrl"] == stored["url"]


def test_batch_upload_complete_reports_each_item(start_server, ws_factory) -> None:
    server = start_server("optimized")
    images = [image_bytes(seed=s) for s in range(3)]
    client = ws_factory(server)
    client.join("c1")
    client.op("nodes", OpType.BATCH_NODE_CREATE,
              {"nodes": [node(i, sha256_hex(d)) for i, d in enumerate(images)]})
    with httpx.Client(base_url=server.url, timeout=30) as http:
        stored = [upload(http, d).json() for d in images]
    items = [{"hash": s["hash"], "serverUrl": s["url"], "serverFilename": s["serverFilename"]} for s in stored]
    items.append({"hash": "f" * 64, "serverUrl": "/uploads/nope.png", "serverFilename": "nope.png"})
    _, ack = client.op("done", OpType.BATCH_UPLOAD_COMPLETE, {"items": items})
    assert [r["ok"] for r in ack["results"]] == [True, True, True, False]
    assert ack["results"][3]["code"] == "unknown_upload"
    nodes = canvas_of(server, "c1")["nodes"]
    assert len(nodes) == 3 and all("serverUrl" in n["properties"] for n in nodes)


def test_a_retried_operation_id_gets_the_original_answer_and_applies_once(start_server, ws_factory) -> None:
    server = start_server("optimized")
    client = ws_factory(server)
    client.join("c1")
    first = client.op("same", OpType.BATCH_NODE_CREATE, {"nodes": [node(1), node(2)]})
    again = client.op("same", OpType.BATCH_NODE_CREATE, {"nodes": [node(1), node(2)]})
    assert again == first
    assert len(canvas_of(server, "c1")["nodes"]) == 2
    assert canvas_of(server, "c1")["version"] == 1


def test_a_retry_in_flight_or_from_another_socket_applies_once(start_server, ws_factory) -> None:
    server = start_server("optimized")
    first, second = ws_factory(server), ws_factory(server)
    first.join("c1")
    second.join("c1")
    frame = execute_operation_frame("dup", OpType.BATCH_NODE_CREATE, {"nodes": [node(i) for i in range(50)]})
    first.conn.send(frame)
    first.conn.send(frame)  # the retry arrives while the original is still being applied
    answers = [first.until(Event.OPERATION_ACK, Event.OPERATION_REJECTED, operation_id="dup") for _ in range(2)]
    from_elsewhere = second.op("dup", OpType.BATCH_NODE_CREATE, {"nodes": [node(i) for i in range(50)]})
    assert answers[0] == answers[1] == from_elsewhere
    assert all(result["ok"] for result in from_elsewhere[1]["results"])
    canvas = canvas_of(server, "c1")
    assert len(canvas["nodes"]) == 50 and canvas["version"] == 1


def test_operations_before_join_are_rejected(start_server, ws_factory) -> None:
    server = start_server("optimized")
    client = ws_factory(server)
    event, data = client.op("early", OpType.NODE_CREATE, node(1))
    assert event == Event.OPERATION_REJECTED and data["code"] == ErrorCode.NOT_JOINED


def test_full_sync_and_ping(start_server, ws_factory) -> None:
    server = start_server("optimized")
    client = ws_factory(server)
    client.join("c1")
    client.op("a", OpType.NODE_CREATE, node(1))
    client.send(Event.REQUEST_FULL_SYNC, {})
    _, sync = client.until(Event.FULL_STATE_SYNC)
    assert [n["id"] for n in sync["state"]["nodes"]] == ["n1"] and sync["stateVersion"] == 1
    client.send(Event.PING, {"t": 42})
    assert client.until(Event.PONG)[1] == {"t": 42}


BAD_FRAMES = [
    ("{oops", ErrorCode.BAD_JSON, None),
    (json.dumps({"event": "teleport", "data": {}}), ErrorCode.UNKNOWN_EVENT, None),
    (execute_operation_frame("u1", "node_delete", {}), ErrorCode.UNKNOWN_OPERATION, "u1"),
    (execute_operation_frame("w1", OpType.NODE_CREATE, {"id": "z", "type": "t", "pos": ["a", 1]}),
     ErrorCode.INVALID_PARAMS, "w1"),
    (execute_operation_frame("big", OpType.NODE_CREATE, {**node(9), "properties": {"p": "x" * 200_000}}),
     ErrorCode.MESSAGE_TOO_LARGE, "big"),
    (execute_operation_frame("many", OpType.BATCH_NODE_CREATE, {"nodes": [node(i) for i in range(1001)]}),
     ErrorCode.BATCH_TOO_LARGE, "many"),
]


@pytest.mark.parametrize(("frame", "code", "op_id"), BAD_FRAMES, ids=[c for _, c, _ in BAD_FRAMES])
def test_bad_input_gets_a_clear_error_and_changes_nothing(start_server, ws_factory, frame, code, op_id) -> None:
    server = start_server("legacy")
    client = ws_factory(server)
    client.join("c1")
    client.op("good", OpType.NODE_CREATE, node(1))
    before = canvas_of(server, "c1")
    client.conn.send(frame)
    event, data = client.until(Event.ERROR, Event.OPERATION_REJECTED)
    assert data["code"] == code
    assert data.get("operationId") == op_id
    assert canvas_of(server, "c1") == before
    event, _ = client.op("after", OpType.NODE_CREATE, node(2))  # still serving
    assert event == Event.OPERATION_ACK


def test_a_full_canvas_refuses_the_nodes_over_max_canvas_nodes_alone(start_server, ws_factory, tmp_path) -> None:
    profile = tmp_path / "small.toml"
    profile.write_text('extends = "optimized"\nname = "small"\n[limits]\nmax_canvas_nodes = 5\n')
    client = ws_factory(server := start_server(profile))
    client.join("c1")
    _, ack = client.op("b", OpType.BATCH_NODE_CREATE, {"nodes": [node(i) for i in range(8)]})
    assert [r["ok"] for r in ack["results"]] == [True] * 5 + [False] * 3
    assert {r["code"] for r in ack["results"][5:]} == {ErrorCode.CANVAS_FULL}
    assert len(canvas_of(server, "c1")["nodes"]) == 5


def test_binary_frames_get_an_error_frame(start_server, ws_factory) -> None:
    server = start_server("legacy")
    client = ws_factory(server)
    client.conn.send(b"\x00\xff")
    event, data = client.until(Event.ERROR)
    assert data["code"] == ErrorCode.BAD_FRAME


def test_admission_control_answers_overloaded_with_retry_after(start_server, ws_factory, tmp_path) -> None:
    profile = tmp_path / "tight.toml"
    profile.write_text(
        'extends = "optimized"\nname = "tight"\n'
        "[stages.ops]\nworkers = 1\nqueue_limit = 1\nservice_ms = 400.0\n"
    )
    server = start_server(profile)
    client = ws_factory(server)
    client.join("c1")
    for i in range(5):  # pipelined: one in service, one waiting, the rest refused
        client.conn.send(execute_operation_frame(f"p{i}", OpType.NODE_CREATE, node(i)))
    answers = {}
    while len(answers) < 5:
        event, data = client.until(Event.OPERATION_ACK, Event.OPERATION_REJECTED)
        answers[data["operationId"]] = (event, data)
    refused = [d for e, d in answers.values() if e == Event.OPERATION_REJECTED]
    assert len(refused) == 3
    assert all(d["code"] == "overloaded" and d["retryAfterMs"] == 1000 for d in refused)
    assert sorted(n["id"] for n in canvas_of(server, "c1")["nodes"]) == ["n0", "n1"]


def test_a_frame_over_the_transport_cap_closes_that_socket_only(start_server, ws_factory, tmp_path) -> None:
    from websockets.exceptions import ConnectionClosed

    profile = tmp_path / "small-frames.toml"
    profile.write_text('extends = "legacy"\nname = "small-frames"\n[limits]\nmax_frame_bytes = 200000\n')
    server = start_server(profile)
    victim, bystander = ws_factory(server), ws_factory(server)
    victim.join("c1")
    bystander.join("c1")
    victim.conn.send("x" * 300_000)
    with pytest.raises(ConnectionClosed) as closed:
        victim.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    event, _ = bystander.op("still", OpType.NODE_CREATE, node(1))
    assert event == Event.OPERATION_ACK
