"""Targets: descriptions read strictly, strategies refused where they cannot work, both transports of our
server give the same drop, each browser its own address, a failed truth read is an error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bulkbench.config import ConfigError
from bulkbench.target import LOOPBACK_JUDGE, TargetError, browser_address, dig, fill, load_target
from bulkbench.truth import TruthError, server_nodes
from loadtests.browser import Browser
from loadtests.run import RunOptions, check_target, run


def test_the_shipped_targets_load_and_say_what_they_support() -> None:
    reference, real = load_target("reference"), load_target("imagecanvas")
    assert reference.batch and reference.socket.transport == "websocket"
    assert not real.batch and real.socket.transport == "socketio" and real.canvas.create == "http"
    as_reported = load_target("imagecanvas-as-reported")  # extends imagecanvas, one key changed
    assert as_reported.model_profile == "legacy" and as_reported.socket == real.socket


def test_a_target_file_with_an_unknown_key_or_choice_is_refused(tmp_path: Path) -> None:
    bad_key = tmp_path / "a.toml"
    bad_key.write_text('kind = "target"\n[truth]\nroute = "/x"\nnodez = "nodes"\n')
    with pytest.raises(ConfigError, match="nodez"):
        load_target(bad_key)
    bad_choice = tmp_path / "b.toml"
    bad_choice.write_text('kind = "target"\n[socket]\ntransport = "carrier-pigeon"\n')
    with pytest.raises(TargetError, match="socket.transport"):
        load_target(bad_choice)
    unjudgeable = tmp_path / "c.toml"
    unjudgeable.write_text('kind = "target"\n[operations]\nnode_id = "server"\n')
    with pytest.raises(TargetError, match="node_key"):
        load_target(unjudgeable)
    one_beat = tmp_path / "d.toml"
    one_beat.write_text('kind = "target"\n[app]\nheartbeat = ["ping"]\n')
    with pytest.raises(TargetError, match="heartbeat names two events"):
        load_target(one_beat)
    assert load_target("imagecanvas").app.heartbeat == ("ping", "pong")
    assert load_target("imagecanvas-as-reported").app.heartbeat == ("ping", "pong")  # extends today's


def test_templates_keep_a_whole_fields_type_and_fill_text() -> None:
    values = {"canvas": 7, "user": "user-0"}
    assert fill({"canvasId": "{canvas}", "name": "c-{canvas}", "list": ["{user}"]}, values) == \
        {"canvasId": 7, "name": "c-7", "list": ["user-0"]}
    with pytest.raises(TargetError, match="nope"):
        fill("{nope}", values)


def test_truth_is_read_where_the_target_keeps_it() -> None:
    real = load_target("imagecanvas").truth
    answer = {"success": True, "canvas_data": {"nodes": [{"id": "a", "properties": {"serverUrl": "/u/x"}}]}}
    assert dig(server_nodes(answer, real)["a"], real.server_url) == "/u/x"
    assert server_nodes({"success": True, "canvas_data": {}}, real) == {}  # a canvas never saved to
    with pytest.raises(TruthError, match="canvas_data.nodes"):
        server_nodes({"error": "Canvas not found"}, real)


def test_batched_against_a_target_without_batch_operations_is_refused_before_it_starts(tmp_path: Path) -> None:
    options = RunOptions(strategy="batched", target="http://127.0.0.1:9", target_profile="imagecanvas",
                         out=tmp_path / "out")
    with pytest.raises(TargetError, match="batch_node_create, batch_upload_complete"):
        check_target(options)
    done = subprocess.run([sys.executable, "-m", "bulkbench.cli", "run", "--target", "http://127.0.0.1:9",
                           "--target-profile", "imagecanvas", "--strategy", "batched", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "needs operations" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "o").exists()  # refused before anything was made


def test_each_browser_has_its_own_address_and_a_per_ip_limiter_tells_them_apart(start_server, tmp_path) -> None:
    profile = tmp_path / "tight.toml"
    profile.write_text('extends = "legacy"\nname = "tight"\n[rate_limit]\nrequests = 3\nwindow_s = 60.0\n')
    server = start_server(profile)
    first, second = (Browser(server.url, source_address=browser_address(user)) for user in (0, 1))
    assert browser_address(0) != browser_address(1) != LOOPBACK_JUDGE
    statuses = [first.get("/no-route-here")[0].status for _ in range(4)]
    assert statuses == [404, 404, 404, 429]  # the first browser used up its bucket
    assert second.get("/no-route-here")[0].status == 404  # the second has its own


@pytest.mark.parametrize("strategy", ["individual", "batched"])
def test_one_drop_over_raw_websocket_and_over_socketio_gives_the_same_outcome_and_counts(
        start_server, tmp_path, small_workload, strategy) -> None:
    server = start_server("legacy")
    summaries = {}
    for transport in ("websocket", "socketio"):
        out = tmp_path / transport
        summaries[transport] = run(RunOptions(strategy=strategy, images=10, profile="legacy", out=out,
                                              target=server.url, transport=transport, workload=small_workload,
                                              quiet=True, max_seconds=300))
        assert summaries[transport].extra["transport"] == transport
    raw, sio = summaries["websocket"], summaries["socketio"]
    assert raw.images_ok == sio.images_ok == 10
    assert raw.extra["frames_sent"] == sio.extra["frames_sent"]
    assert raw.extra["frames_received"] == sio.extra["frames_received"]
    assert raw.ws_messages_sent == sio.ws_messages_sent and raw.http_requests == sio.http_requests


def test_a_truth_endpoint_that_answers_404_stops_the_run_with_an_error(start_server, tmp_path,
                                                                       small_workload) -> None:
    server = start_server("legacy")
    target = tmp_path / "lying.toml"
    target.write_text('extends = "reference"\nname = "lying"\n[truth]\nroute = "/api/no-such-route/{canvas}"\n')
    with pytest.raises(TruthError, match="404"):
        run(RunOptions(strategy="individual", images=3, out=tmp_path / "out", target=server.url,
                       target_profile=str(target), workload=small_workload, quiet=True, max_seconds=120))
    assert not (tmp_path / "out" / "summary.json").exists()  # no figures from a run nobody could judge
    done = subprocess.run([sys.executable, "-m", "bulkbench.cli", "run", "--strategy", "individual", "--images", "3",
                           "--target", server.url, "--target-profile", str(target), "--workload", small_workload,
                           "--out", str(tmp_path / "cli")], capture_output=True, text=True, timeout=180)
    assert done.returncode == 3 and "could not be read" in done.stderr and "404" in done.stderr
