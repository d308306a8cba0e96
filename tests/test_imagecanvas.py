"""The real ImageCanvas as a target: a live drop judged by the app's own state, its wire counted.

Needs the app's fixture (``../shared/imagecanvas``) and Node; set up once into ``.cache/imagecanvas``
(about 1.5 minutes). Skipped with the reason where it is missing; in CI it must run.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess

import httpx
import orjson
import pytest

from loadtests.imagecanvas import READY_MARK, ImageCanvasApp, free_port, install, missing_reason, uploads_swept
from loadtests.pageserver import LISTEN_BACKLOG
from loadtests.run import RunOptions, run
from tests.helpers import image_bytes, needs, upload


@pytest.fixture
def real_app():
    """A fresh instance for each test: an empty database, and a limiter that has counted nobody yet."""
    needs(missing_reason())
    with ImageCanvasApp("today") as app:
        yield app


def test_a_live_drop_on_the_real_app_is_judged_by_its_own_state(real_app, tmp_path, small_workload) -> None:
    summary = run(RunOptions(strategy="individual", images=20, out=tmp_path / "out", target=real_app.url,
                             target_profile="imagecanvas", workload=small_workload, quiet=True, max_seconds=300))
    assert summary.profile == "imagecanvas" and summary.extra["model_profile"] == "legacy-ratelimit"
    assert summary.images_ok == 20 and summary.images_failed == 0
    extra = summary.extra
    assert extra["transport"] == "socketio"
    # per image: node_create, image_upload_complete, and one request_undo_state after each ack
    assert extra["frames_sent"] == {"join_canvas": 1, "request_full_sync": 1, "execute_operation": 40,
                                    "request_undo_state": 40}
    assert extra["frames_received"]["operation_ack"] == 40 and extra["frames_received"]["state_update"] == 40
    assert extra["upload_attempts"] == 20 and extra["http_by_status"] == {"200": 20 * 20}
    # counted by route as the browser engine counts its page's: one upload and 19 thumbnail GETs an image
    assert extra["http_by_route_status"] == {"POST /api/upload 200": 20, "GET /thumbnails/[size]/[name] 200": 19 * 20}
    assert not (tmp_path / "out" / "server_metrics.csv").exists()  # no /metrics polled: the app has none

    # the app's database agrees with the judgement: every node carries its stored file's URL
    drop = orjson.loads((tmp_path / "out" / "drops" / "user-0.json").read_bytes())
    db = sqlite3.connect(real_app.dir / "server" / "database" / "canvas.db")
    try:
        (data,) = db.execute("SELECT canvas_data FROM canvases WHERE id = ?", (drop["extra"]["canvas_id"],)).fetchone()
        files = {row[0] for row in db.execute("SELECT filename FROM files")}
    finally:
        db.close()
    nodes = orjson.loads(data)["nodes"]
    assert sorted(n["id"] for n in nodes) == sorted(r["id"] for r in drop["records"])
    assert all(n["properties"]["serverFilename"] in files for n in nodes)
    assert {n["properties"]["hash"] for n in nodes} == {n["properties"]["hash"] for n in nodes if
                                                        n["properties"].get("serverUrl")}


def test_each_browser_is_its_own_address_to_the_real_apps_limiter(real_app, tmp_path, small_workload) -> None:
    """Two users at 24 images each: 481 requests each (the canvas POST and 20 per image), under the
    limiter's 500 per address; from one address the 962 would be refused from the 501st on."""
    summary = run(RunOptions(strategy="individual", images=24, users=2, out=tmp_path / "out", target=real_app.url,
                             target_profile="imagecanvas", workload=small_workload, quiet=True, max_seconds=300))
    assert summary.extra["http_by_status"] == {"200": 2 * 24 * 20}
    assert summary.images_ok == 48
    drops = (tmp_path / "out" / "drops").glob("*.json")
    addresses = {orjson.loads(path.read_bytes())["extra"]["source_address"] for path in drops}
    assert len(addresses) == 2


def test_the_page_is_served_with_a_listen_queue_two_browsers_do_not_overflow() -> None:
    """``python3 -m http.server`` listens with a backlog of 5: two Chromiums overflowed it in every
    two-browser run (5-7 TcpExtListenOverflows), and a page whose scripts wait out SYN retries may never
    join its canvas. The page server's queue, as the kernel reports it (``ss``: Send-Q of a listener)."""
    needs(missing_reason())
    port = free_port()
    with ImageCanvasApp("today", client_port=port):
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True,
                                   check=True).stdout.split()
    assert int(listening[2]) == LISTEN_BACKLOG, listening


def test_the_apps_cleanup_deletes_an_upload_no_node_names_yet(real_app) -> None:
    """What ``legacy``'s ``[file_sweep]`` stands for: the handler the app's timer calls 30 min after its start
    (``POST /database/cleanup``) deletes an upload no canvas node names, and keeps one a node names."""
    with httpx.Client(base_url=real_app.url, timeout=60) as client:
        linked, unlinked = (upload(client, image_bytes(seed=70 + k)).json() for k in range(2))
        canvas = client.post("/canvases", json={"name": "sweep", "ownerId": "sweep"}).json()["id"]
        node = {"id": "n1", "type": "media/image", "pos": [0, 0], "size": [64, 64],
                "properties": {"hash": linked["hash"], "serverUrl": linked["url"],
                               "serverFilename": linked["serverFilename"]}}
        state = {"canvas_data": {"nodes": [node], "version": 1}}
        client.put(f"/canvases/{canvas}/state", json=state).raise_for_status()
        assert client.head(unlinked["url"]).status_code == 200
        answer = client.post("/database/cleanup", params={"dryRun": "false"}).json()
        assert answer["fileCleanup"]["deletedFiles"] == 1, answer
        assert client.head(unlinked["url"]).status_code == 404 and client.head(linked["url"]).status_code == 200
    assert real_app.dir is not None and uploads_swept(real_app.dir / "server.log") == 1  # what the runs read


def test_the_state_set_up_second_takes_the_first_ones_packages_and_skips_npm(tmp_path) -> None:
    """Both states have one ``package.json``: the second setup copies the first's ``node_modules`` (a CI
    machine's better-sqlite3 build is about 150 s) and is still the state it names, and it runs."""
    needs(missing_reason())
    built = install("today")
    (tmp_path / "today").mkdir()
    shutil.copytree(built / "node_modules", tmp_path / "today" / "node_modules", symlinks=True)
    (tmp_path / "today" / READY_MARK).write_text("seeded from the repository's cache")
    dest = install("as-reported", cache=tmp_path)
    assert (dest / READY_MARK).exists() and not (dest / "npm-install.log").exists()  # npm never ran
    assert "(rate limiter removed: as reported)" in (dest / "server" / "index.js").read_text()
    loads = subprocess.run(["node", "-e", "new (require('better-sqlite3'))(':memory:'); require('sharp')"],
                           cwd=dest, capture_output=True, text=True)
    assert loads.returncode == 0, loads.stderr
