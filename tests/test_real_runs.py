"""Short real runs: a real server, Locust headless, the results directory judged against the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bulkbench.auth import TokenAuthority
from bulkbench.network import NetworkSpec
from loadtests.network import ShapedNamespace, namespace_exists, namespaces_allowed, sweep_stale_namespaces
from loadtests.run import RunOptions, run
from tests.helpers import ends_within, needs, processes_naming

NO_NAMESPACES = "needs CAP_NET_ADMIN for ip netns / tc (root); shaped runs fall back to loopback without it"
SUMMARY_FIELDS = {
    "engine", "strategy", "profile", "images", "users", "images_ok", "images_failed", "failure_rate",
    "failures_by_cause", "ws_messages_sent", "ws_messages_received", "http_requests", "bytes_uploaded",
    "drop_seconds", "op_ack_ms", "upload_ms", "seed", "version",
}
def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@pytest.mark.parametrize("strategy", ["individual", "batched", "chunked"])
def test_a_run_writes_the_schema_and_counts_what_the_server_saw(start_server, tmp_path, small_workload, strategy):
    server = start_server("legacy")
    out = tmp_path / "out"
    summary = run(RunOptions(strategy=strategy, images=12, users=1, profile="legacy", out=out,
                             target=server.url, workload=small_workload, quiet=True, max_seconds=300))
    record = json.loads((out / "summary.json").read_text())[0]
    assert set(record) >= SUMMARY_FIELDS
    assert record["engine"] == "real" and record["images"] == 12 and record["images_ok"] == 12
    lines = (out / "images.jsonl").read_text().splitlines()
    assert len(lines) == 12 and all(json.loads(line)["outcome"] == "ok" for line in lines)
    assert (out / "locust_stats.csv").exists() and (out / "server_metrics.csv").exists()
    assert record["op_ack_ms"]["p50"] is not None and record["upload_ms"]["max"] is not None

    metrics = httpx.get(f"{server.url}/metrics").text
    assert _metric(metrics, "bulkbench_ws_frames_total", direction="in") == summary.ws_messages_sent
    assert _metric(metrics, "bulkbench_ws_frames_total", direction="out") == summary.ws_messages_received
    drop_requests = (_metric(metrics, "bulkbench_http_responses_total", route="/api/upload")
                     + _metric(metrics, "bulkbench_http_responses_total", route="/thumbnails"))
    assert drop_requests == summary.http_requests
    if strategy == "batched":
        assert summary.ws_messages_sent <= 10
    if strategy == "individual":  # join, then per image: node_create, completion, two undo-state requests
        assert summary.ws_messages_sent == 1 + 4 * 12


def test_a_strategies_layer_reaches_every_locust_user(start_server, tmp_path, small_workload):
    """A layer that stops the undo-state requests: Locust's users run it, and the summary names it."""
    server = start_server("legacy")
    layer = tmp_path / "layer.toml"
    layer.write_text("[individual]\nrequest_undo_state = false\n")
    summary = run(RunOptions(strategy="individual", strategy_layer=str(layer), images=6, users=2, profile="legacy",
                             out=tmp_path / "out", target=server.url, workload=small_workload, quiet=True,
                             max_seconds=300))
    assert summary.images_ok == 12 and summary.extra["strategy_layer"] == str(layer)
    assert summary.ws_messages_sent == 2 * (1 + 2 * 6)  # join, then node_create and completion per image


def _rate_limited(start_server, tmp_path, requests: int, block_s: float):
    """Our legacy server with a per-IP limit of ``requests`` a minute, then ``block_s`` blocked."""
    profile = tmp_path / "tight.toml"
    profile.write_text(f'extends = "legacy"\nname = "tight"\n[rate_limit]\nrequests = {requests}\n'
                       f'window_s = 60.0\nblock_s = {block_s}\n')
    return start_server(profile), profile


def test_a_refused_upload_is_a_failed_image_with_its_cause(start_server, tmp_path, small_workload):
    server, profile = _rate_limited(start_server, tmp_path, requests=5, block_s=10.0)
    summary = run(RunOptions(strategy="individual", images=10, profile=str(profile), out=tmp_path / "out",
                             target=server.url, workload=small_workload, quiet=True, max_seconds=300))
    assert summary.images_ok == 5
    assert summary.failures_by_cause == {"http_429": 5}
    canvas_id = json.loads((tmp_path / "out" / "drops" / "user-0.json").read_text())["extra"]["canvas_id"]
    nodes = httpx.get(f"{server.url}/api/canvases/{canvas_id}").json()["nodes"]
    assert sum(1 for n in nodes if n["properties"].get("serverUrl")) == 5  # the server agrees


def test_batched_waits_out_the_rate_limit_and_loses_nothing(start_server, tmp_path, small_workload):
    profile = tmp_path / "tight.toml"
    profile.write_text('extends = "legacy"\nname = "tight"\n[rate_limit]\nrequests = 5\nwindow_s = 60.0\n'
                       'block_s = 1.0\n')
    server = start_server(profile)
    summary = run(RunOptions(strategy="batched", images=10, profile=str(profile), out=tmp_path / "out",
                             target=server.url, workload=small_workload, quiet=True, max_seconds=300))
    assert summary.images_ok == 10 and summary.images_failed == 0


def test_users_share_one_canvas_and_each_judges_its_own_images(start_server, tmp_path, small_workload):
    server = start_server("legacy")
    summary = run(RunOptions(strategy="batched", images=8, users=3, canvas="shared", out=tmp_path / "out",
                             target=server.url, workload=small_workload, quiet=True, max_seconds=300))
    assert summary.users == 3 and summary.images == 8 and summary.images_ok == 24
    # each user hears the others' state_updates in a shared canvas
    drops = [json.loads(p.read_text()) for p in (tmp_path / "out" / "drops").glob("*.json")]
    assert all(d["extra"]["frames_received"].get("state_update", 0) >= 3 * 2 for d in drops)


def test_distributed_mode_runs_the_same_locustfile(start_server, tmp_path, small_workload):
    server = start_server("optimized")
    summary = run(RunOptions(strategy="batched", images=6, users=2, processes=2, profile="optimized",
                             out=tmp_path / "out", target=server.url, workload=small_workload, quiet=True,
                             max_seconds=300))
    assert summary.users == 2 and summary.images_ok == 12


def test_runs_against_a_server_with_auth_on_send_tokens(start_server, tmp_path, small_workload):
    """Auth on, the server refuses joins and uploads without a token: every image ok means tokens were sent."""
    secret = tmp_path / "secret"
    secret.write_text("a-run-secret-of-enough-bytes")
    minted = run(RunOptions(strategy="batched", images=6, users=2, profile="optimized", out=tmp_path / "minted",
                            workload=small_workload, quiet=True, max_seconds=300, auth_secret_file=str(secret)))
    assert minted.images_ok == 12  # a spawned server; each user minted a token for its own canvas
    server = start_server("optimized", auth_secret_file=secret)
    token = TokenAuthority(secret.read_bytes()).mint(["*"], time.time() + 600)
    given = run(RunOptions(strategy="individual", images=4, users=1, profile="optimized", out=tmp_path / "given",
                           target=server.url, token=token, workload=small_workload, quiet=True, max_seconds=300))
    assert given.images_ok == 4
    assert httpx.get(f"{server.url}/api/canvases/anything", timeout=10).status_code == 401


def test_a_shaped_run_happens_in_a_namespace_that_is_removed_after(tmp_path, small_workload):
    needs(None if namespaces_allowed() else NO_NAMESPACES)
    summary = run(RunOptions(strategy="batched", images=8, profile="optimized", out=tmp_path / "out",
                             uplink_mbit=20, workload=small_workload, quiet=True, max_seconds=300))
    assert summary.images_ok == 8
    assert summary.extra["network"]["uplink_mbit"] == 20
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "bulkbench-" not in listing


def test_a_sweep_between_upload_and_link_loses_the_image_and_the_run_counts_it(tmp_path, small_workload):
    """``legacy``'s file sweep every 50 ms, less than any upload's wait for its ``image_upload_complete``
    (the merge window and the idle callback): every image loses its file, every frame is acked, and the
    run reads the server's count from inside the shaped namespace."""
    needs(None if namespaces_allowed() else NO_NAMESPACES)
    profile = tmp_path / "sweeping.toml"
    profile.write_text('extends = "legacy"\nname = "sweeping"\n[file_sweep]\nfirst_after_s = 0.0\nevery_s = 0.05\n')
    summary = run(RunOptions(strategy="individual", images=6, profile=str(profile), out=tmp_path / "out",
                             uplink_mbit=20, workload=small_workload, quiet=True, max_seconds=300))
    assert summary.failures_by_cause == {"not_on_server": 6}
    assert summary.extra["uploads_swept"] >= 6


def test_the_namespace_is_removed_even_when_the_run_fails():
    needs(None if namespaces_allowed() else NO_NAMESPACES)
    spec = NetworkSpec(uplink_mbit=10)
    with pytest.raises(RuntimeError), ShapedNamespace(spec) as namespace:
        assert "tbf" in namespace.qdisc() and "rate 10Mbit" in namespace.qdisc()
        name = namespace.name
        raise RuntimeError("boom")
    assert not namespace_exists(name)


def test_a_drop_cap_stops_a_drop_where_it_is_and_judges_what_the_server_holds(start_server, tmp_path,
                                                                              small_workload):
    """As browser-run's hard cap: the strategy is stopped mid-drop (single flight: 40 operations take
    over 6 s), the images it had not settled are 'unfinished', the ones it had are judged ok by the server."""
    server = start_server("legacy")
    summary = run(RunOptions(strategy="individual", images=20, out=tmp_path / "out", target=server.url,
                             workload=small_workload, quiet=True, max_seconds=120, drop_cap_s=2.0))
    assert 0 < summary.images_ok < 20
    assert summary.failures_by_cause == {"unfinished": 20 - summary.images_ok}
    assert summary.drop_seconds < 4.0


def test_a_real_client_comes_back_when_retry_after_says(start_server, tmp_path, small_workload):
    """Two requests allowed, then blocked 3 s with Retry-After 3 (the client's own backoff is 1 s): the
    refused upload goes through on its retry, 3 s after its first try and not much later."""
    server, profile = _rate_limited(start_server, tmp_path, requests=2, block_s=3.0)
    summary = run(RunOptions(strategy="batched", images=3, profile=str(profile), out=tmp_path / "out",
                             target=server.url, workload=small_workload, quiet=True, max_seconds=120))
    assert summary.images_ok == 3
    records = [json.loads(line) for line in (tmp_path / "out" / "images.jsonl").read_text().splitlines()]
    waits = sorted(r["timings"]["upload_done_at"] - r["timings"]["upload_started_at"] for r in records)
    assert 3.0 <= waits[-1] < 3.0 + 1.0


def test_namespaces_left_by_dead_runs_are_swept_and_live_ones_kept():
    needs(None if namespaces_allowed() else NO_NAMESPACES)
    gone = subprocess.Popen(["true"])
    gone.wait()  # a run that died: its pid is free
    stale, live = f"bulkbench-{gone.pid}-1", f"bulkbench-{os.getpid()}-77"
    for name in (stale, live):
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        sweep_stale_namespaces()
        assert not namespace_exists(stale) and namespace_exists(live)
    finally:
        for name in (stale, live):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_a_run_stopped_by_sigterm_removes_its_namespace(tmp_path, small_workload):
    needs(None if namespaces_allowed() else NO_NAMESPACES)
    command = [sys.executable, "-m", "bulkbench.cli", "run", "--strategy", "individual", "--images", "400",
               "--uplink-mbit", "5", "--workload", small_workload, "--out", str(tmp_path / "o")]
    run_cli = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert run_cli.stdout is not None
    said = []
    for line in run_cli.stdout:  # wait until the run has made its namespace and started
        said.append(line)
        if "[bulkbench] locust:" in line:
            break
    reader = threading.Thread(target=lambda: said.extend(run_cli.stdout), daemon=True)  # a full pipe stalls a run
    reader.start()
    name = f"bulkbench-{run_cli.pid}-"
    assert any(n.startswith(name) for n in _namespaces())
    run_cli.send_signal(signal.SIGTERM)
    try:
        run_cli.wait(60)
    except subprocess.TimeoutExpired:
        run_cli.send_signal(signal.SIGUSR1)  # where its threads are, to its output
        tree = subprocess.run(["ps", "-e", "-o", "pid,ppid,stat,wchan:30,etime,args"], capture_output=True,
                              text=True).stdout
        run_cli.kill()
        run_cli.wait()
        reader.join(10)
        pytest.fail(f"the run went on for 60 s after SIGTERM; it said:\n{''.join(said)}\nprocesses:\n{tree}")
    assert not any(n.startswith(name) for n in _namespaces())
    left = processes_naming(str(tmp_path / "o"))  # no server or Locust of the run left behind
    assert all(ends_within(pid, 10) for pid in left), left



def _namespaces() -> list[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in listing.splitlines() if line.strip()]


def test_pipelined_completes_in_batches_as_it_goes_and_settles_before_the_end(start_server, tmp_path):
    """A real server, a real Locust run: batches only, every image settled, half of them well before the
    last, and the run's bound in its summary. The default workload (about 400 KB an image): thumbnails
    make the drop last seconds, long enough to see it settle as it goes."""
    server = start_server("legacy")
    out = tmp_path / "out"
    summary = run(RunOptions(strategy="pipelined", images=60, users=1, profile="legacy", out=out,
                             target=server.url, quiet=True, max_seconds=300))
    assert summary.images_ok == 60 and summary.images_failed == 0
    ops = summary.extra["ops_by_type"]
    assert set(ops) == {"batch_node_create", "batch_upload_complete"}
    assert ops["batch_upload_complete"] >= 3  # 25 at a time, or what waited 1 s
    lines = (out / "images.jsonl").read_text().splitlines()
    settled = sorted(json.loads(line)["timings"]["settled_at"] for line in lines)
    assert len(settled) == 60 and settled[len(settled) // 2] < 0.8 * settled[-1]
    assert 0 < summary.time_to_first_settled_s < summary.settled_p50_s < summary.drop_seconds
    assert summary.bound_seconds > 0 and summary.extra["bound"]["binding"] == "cpu"


def test_users_arrive_at_the_arrival_rate_or_all_at_once(start_server, tmp_path, small_workload):
    """Locust's spawn rate: two users at 0.5 a second start their drops about 2 s apart; by default at once."""
    server = start_server("optimized")
    gaps = {}
    for rate in (0.5, 0.0):
        out = tmp_path / f"rate-{rate}"
        summary = run(RunOptions(strategy="batched", images=4, users=2, profile="optimized", out=out,
                                 target=server.url, workload=small_workload, quiet=True, max_seconds=300,
                                 arrival_rate=rate))
        assert summary.images_ok == 8
        starts = sorted(json.loads(p.read_text())["started_at"] for p in (out / "drops").glob("*.json"))
        gaps[rate] = starts[1] - starts[0]
    assert 1.5 <= gaps[0.5] <= 4.0
    assert gaps[0.0] < 1.0


def test_users_arrive_in_stages_through_a_load_test_shape(start_server, tmp_path, small_workload):
    """``--stages 0s:1,3s:3``: one user at once, then two more over 3 s (Locust ticks each second):
    three drops, started in that order and spread over about 3 s, as the model starts them."""
    server = start_server("optimized")
    out = tmp_path / "staged"
    summary = run(RunOptions(strategy="batched", images=4, profile="optimized", out=out, target=server.url,
                             workload=small_workload, quiet=True, max_seconds=300, stages="0s:1,3s:3"))
    assert summary.users == 3 and summary.images_ok == 12
    starts = sorted(json.loads(p.read_text())["started_at"] for p in (out / "drops").glob("*.json"))
    assert 1.0 <= starts[1] - starts[0] <= 3.5 and 2.0 <= starts[2] - starts[0] <= 5.0, starts


def test_a_run_of_the_server_it_started_has_a_bound_from_the_servers_own_cpu(tmp_path):
    """Where the cores bind, the fitted costs move with the machine: the run's own server CPU over the two
    cores is written beside the fitted bound (and the drop against it); a --target server is not ours to
    measure, so it has none."""
    summary = run(RunOptions(strategy="pipelined", images=30, profile="legacy", out=tmp_path / "out", quiet=True,
                             max_seconds=300))
    assert summary.images_ok == 30 and summary.extra["target"] == "spawned"
    bound, cpu_s = summary.extra["bound"], summary.extra["server_cpu_s"]
    assert cpu_s > 0 and bound["cpu_measured_s"] == pytest.approx(cpu_s / 2, abs=1e-3)
    assert bound["measured_seconds"] == pytest.approx(max(summary.bound_seconds, cpu_s / 2), abs=1e-3)
    assert summary.extra["drop_over_measured_bound"] == pytest.approx(
        summary.drop_seconds / bound["measured_seconds"], abs=1e-3)
