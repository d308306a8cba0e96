"""State survives a restart (and a kill -9): what was acknowledged is on disk before the ack."""

from __future__ import annotations

import httpx
import pytest

from bulkbench.protocol import Event, OpType
from reference_server.process import ServerProcess
from tests.helpers import WsClient, canvas_of, image_bytes, node, sha256_hex, upload


def _write_some_state(server: ServerProcess) -> tuple[dict, dict]:
    data = image_bytes(seed=11)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        stored = upload(http, data).json()
    client = WsClient(server.ws_url)
    try:
        client.join("c1")
        for i in range(4):
            client.op(f"single{i}", OpType.NODE_CREATE, node(i, sha256_hex(data) if i == 0 else None))
        client.op("batch", OpType.BATCH_NODE_CREATE, {"nodes": [node(i) for i in range(4, 40)]})
        client.op("dup", OpType.NODE_CREATE, node(1))  # rejected, and that answer is kept too
        _, ack = client.op("attach", OpType.IMAGE_UPLOAD_COMPLETE, {
            "hash": sha256_hex(data), "serverUrl": stored["url"], "serverFilename": stored["serverFilename"]})
    finally:
        client.close()
    return canvas_of(server, "c1"), ack


@pytest.mark.parametrize("how", ["stop", "kill"])
@pytest.mark.parametrize("persistence", ["legacy", "delta-small-snapshots"])
def test_state_and_answers_survive_a_restart(start_server, tmp_path, persistence, how) -> None:
    profile = "legacy"
    if persistence == "delta-small-snapshots":  # snapshots at versions 3 and 6, a log tail after them
        profile = tmp_path / "delta.toml"
        profile.write_text('extends = "optimized"\nname = "delta"\nsnapshot_every_ops = 3\n')
    data_dir = tmp_path / "data"
    first = start_server(profile, data_dir=data_dir)
    before, attach_ack = _write_some_state(first)
    assert len(before["nodes"]) == 40 and before["version"] == 6
    first.stop() if how == "stop" else first.kill()

    second = start_server(profile, data_dir=data_dir)
    assert canvas_of(second, "c1") == before
    client = WsClient(second.ws_url)
    try:
        client.join("c1")
        assert client.op("attach", OpType.IMAGE_UPLOAD_COMPLETE, {
            "hash": "x", "serverUrl": "/uploads/x", "serverFilename": "x"})[1] == attach_ack
        event, rejected = client.op("dup", OpType.NODE_CREATE, node(1))
        assert event == Event.OPERATION_REJECTED and rejected["code"] == "duplicate_node"
        event, _ = client.op("next", OpType.NODE_CREATE, node(99))
        assert event == Event.OPERATION_ACK
    finally:
        client.close()
    after = canvas_of(second, "c1")
    assert after["version"] == 7 and len(after["nodes"]) == 41
    url = next(n for n in after["nodes"] if n["id"] == "n0")["properties"]["serverUrl"]
    assert httpx.get(second.url + url, timeout=10).status_code == 200
