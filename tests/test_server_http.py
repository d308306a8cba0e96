"""HTTP against a real server process: uploads, stored files, limits, rate limit, errors as JSON."""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import httpx
import pytest

from bulkbench.protocol import Event, OpType
from tests.helpers import image_bytes, node, sha256_hex, upload


def _profile(tmp_path: Path, body: str, base: str = "legacy") -> Path:
    path = tmp_path / "custom.toml"
    path.write_text(f'extends = "{base}"\nname = "custom"\n{body}')
    return path


@pytest.fixture
def legacy(start_server):
    server = start_server("legacy")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield server, client


def test_legacy_upload_makes_its_thumbnails_before_answering(legacy) -> None:
    server, client = legacy
    data = image_bytes("JPEG", size=(1200, 800), seed=1)
    response = upload(client, data, "image/jpeg", name="photo.jpg")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["hash"] == sha256_hex(data)
    name = body["serverFilename"]
    assert client.get(body["url"]).content == data
    stem = Path(name).stem
    for size in (64, 128, 256, 512, 1024):  # already on disk: thumbnails are synchronous
        assert (server.data_dir / "thumbnails" / str(size) / f"{stem}.webp").is_file()
    # as ImageCanvas: a size over 512 only for an image that big (1200 px: no 2048)
    assert not (server.data_dir / "thumbnails" / "2048" / f"{stem}.webp").exists()
    thumb = client.get(f"/thumbnails/64/{stem}.webp")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"


def test_optimized_deduplicates_by_hash(start_server) -> None:
    server = start_server("optimized")
    data = image_bytes(seed=5)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        first, second = upload(client, data).json(), upload(client, data).json()
    assert first["serverFilename"] == second["serverFilename"] and second["deduplicated"]
    assert len(list((server.data_dir / "uploads").iterdir())) == 1


def test_legacy_stores_every_upload_even_with_the_same_hash(legacy) -> None:
    server, client = legacy
    data = image_bytes(seed=5)
    assert upload(client, data).json()["serverFilename"] != upload(client, data).json()["serverFilename"]


def _truncated_png() -> bytes:
    return image_bytes(seed=2)[:-40]


def _truncated_jpeg() -> bytes:
    return image_bytes("JPEG", seed=2)[:-200]


def _bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header declaring absurd dimensions (a decompression bomb's calling card)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b"just some text", "text/plain", 415, "unsupported_media_type"),
        (b"MZ\x90\x00 not an image", "image/png", 400, "invalid_image"),
        (_truncated_png(), "image/png", 400, "invalid_image"),
        (_truncated_jpeg(), "image/jpeg", 400, "invalid_image"),
        (_bomb_png(), "image/png", 413, "image_too_large"),
        (b"", "image/png", 400, "invalid_image"),
    ],
    ids=["text", "lying-content-type", "truncated-png", "truncated-jpeg", "bomb", "empty"],
)
def test_bad_uploads_get_a_clear_error_and_store_nothing(legacy, data, content_type, status, code) -> None:
    server, client = legacy
    response = upload(client, data, content_type)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert list((server.data_dir / "uploads").iterdir()) == []
    assert list((server.data_dir / "incoming").iterdir()) == []
    assert client.get("/healthz").status_code == 200


def test_a_hash_that_does_not_match_the_file_is_refused(legacy) -> None:
    _, client = legacy
    response = client.post("/api/upload", files={"file": ("a.png", image_bytes(), "image/png")},
                           data={"hash": "0" * 64})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_upload"


def test_broken_multipart_is_a_400(legacy) -> None:
    _, client = legacy
    response = client.post("/api/upload", content=b"--xyz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc",
                           headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_upload"


def test_a_non_multipart_upload_is_a_415(legacy) -> None:
    _, client = legacy
    response = client.post("/api/upload", content=b"{}", headers={"content-type": "application/json"})
    assert response.status_code == 415


def test_oversized_uploads_are_refused_while_streaming(start_server, tmp_path) -> None:
    server = start_server(_profile(tmp_path, "[limits]\nmax_upload_bytes = 50000\n"))
    big = image_bytes("PNG", size=(200, 200), seed=9, noise=True)
    assert len(big) > 50_000
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = upload(client, big)
        assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"

        def chunks():  # no Content-Length: the cap must hold while the body streams
            body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n"
                    b"Content-Type: image/png\r\n\r\n")
            yield body
            for _ in range(20):
                yield b"\0" * 10_000
        response = client.post("/api/upload", content=chunks(),
                               headers={"content-type": "multipart/form-data; boundary=b"})
        assert response.status_code == 413
    assert list((server.data_dir / "incoming").iterdir()) == []


@pytest.mark.parametrize("path", ["/uploads/..%2Fbulkbench.sqlite3", "/uploads/.hidden",
                                  "/thumbnails/64/..%2F..%2Fbulkbench.sqlite3", "/thumbnails/x/a.webp",
                                  "/api/canvases/nope", "/no/such/route"])
def test_unknown_or_unsafe_paths_are_json_404s(legacy, path) -> None:
    _, client = legacy
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_rate_limit_answers_429_with_retry_after_then_blocks(start_server, tmp_path) -> None:
    server = start_server(_profile(tmp_path, "[rate_limit]\nrequests = 5\nwindow_s = 60.0\nblock_s = 10.0\n"))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        statuses = [client.get("/api/canvases/x", headers={"x-client-id": "alice"}).status_code
                    for _ in range(7)]
        assert statuses == [404] * 5 + [429, 429]
        limited = client.get("/api/canvases/x", headers={"x-client-id": "alice"})
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 10
        # another client is not blocked, and monitoring never is
        assert client.get("/api/canvases/x", headers={"x-client-id": "bob"}).status_code == 404
        assert client.get("/healthz", headers={"x-client-id": "alice"}).status_code == 200


def test_admission_control_answers_503_with_retry_after_for_uploads(start_server, tmp_path) -> None:
    server = start_server(_profile(
        tmp_path, "[stages.upload]\nworkers = 1\nqueue_limit = 1\nservice_ms = 1500.0\n", base="optimized"))
    import concurrent.futures

    images = [image_bytes(seed=s) for s in range(5)]
    with httpx.Client(base_url=server.url, timeout=60) as client, \
            concurrent.futures.ThreadPoolExecutor(5) as pool:
        responses = list(pool.map(lambda d: upload(client, d), images))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) >= 2 and statuses.count(503) >= 1, statuses
    refused = next(r for r in responses if r.status_code == 503)
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "overloaded"


def test_metrics_are_prometheus_text(legacy) -> None:
    _, client = legacy
    upload(client, image_bytes())
    text = client.get("/metrics").text
    assert 'bulkbench_stage_queue_depth{stage="ops"}' in text
    assert 'bulkbench_stage_service_seconds_count{stage="thumbnail"} 1.0' in text
    assert 'bulkbench_http_responses_total{route="/api/upload",status="200"} 1.0' in text




def test_after_the_answer_thumbnails_a_full_stage_refuses_wait_their_turn_and_none_is_dropped(start_server,
                                                                                                tmp_path) -> None:
    """One thumbnail worker, one waiting place, 300 ms a job: six uploads answered at once leave four
    refused. They wait in the backlog, each started as one before it ends; meanwhile a GET of one is told
    to come back (503, Retry-After), and at the end every image has its thumbnails."""
    profile = _profile(tmp_path, "[stages.thumbnail]\nworkers = 1\nqueue_limit = 1\nservice_ms = 300.0\n",
                       base="optimized")
    server = start_server(profile)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        stems = [Path(upload(client, image_bytes(seed=40 + k)).json()["serverFilename"]).stem for k in range(6)]
        owed = _gauge(client.get("/metrics").text, "bulkbench_thumbnails_owed")
        assert 1 <= owed <= 6, owed
        waiting = client.get(f"/thumbnails/64/{stems[-1]}.webp")
        assert waiting.status_code == 503 and int(waiting.headers["Retry-After"]) >= 1
        assert client.get("/thumbnails/64/nothing-like-it.webp").status_code == 404
        deadline = 6 * 0.3 + 30.0
        assert _eventually(lambda: _all_made(client, stems), deadline), "a thumbnail job was dropped"
        assert _eventually(lambda: _gauge(client.get("/metrics").text, "bulkbench_thumbnails_owed") == 0, 30.0), \
            "every job ended (its emulated time too): nothing is owed any more"
        metrics = client.get("/metrics").text
    assert 'bulkbench_operations_total{outcome="deferred",type="thumbnail"}' in metrics


def _gauge(metrics: str, name: str) -> float:
    return next(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(name + " "))


def _all_made(client: httpx.Client, stems: list[str]) -> bool:
    return all(client.get(f"/thumbnails/64/{stem}.webp").status_code == 200 for stem in stems)


def _eventually(condition, within_s: float) -> bool:
    """Poll ``condition`` until it holds or ``within_s`` has passed (a wait for a state, not a timing)."""
    ends = time.monotonic() + within_s
    while time.monotonic() < ends:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_thumbnails_never_made_before_a_restart_are_made_after_it(start_server, tmp_path) -> None:
    """The backlog lives in memory: a server stopped with thumbnails still owed makes them when it starts
    again on the same data, and says 503 (not 404) for them until then."""
    profile = _profile(tmp_path, "[stages.thumbnail]\nworkers = 1\nqueue_limit = 1\nservice_ms = 300.0\n",
                       base="optimized")
    first = start_server(profile, data_dir=tmp_path / "data")
    with httpx.Client(base_url=first.url, timeout=60) as client:
        stems = [Path(upload(client, image_bytes(seed=60 + k)).json()["serverFilename"]).stem for k in range(6)]
    first.stop()  # at once: most of the six are still owed
    owed = [s for s in stems if not (tmp_path / "data" / "thumbnails" / "64" / f"{s}.webp").is_file()]
    assert owed, "the first server made every thumbnail before it stopped: nothing to resume"
    again = start_server(profile, data_dir=tmp_path / "data")
    with httpx.Client(base_url=again.url, timeout=60) as client:
        assert client.get(f"/thumbnails/64/{owed[-1]}.webp").status_code in (200, 503)
        assert _eventually(lambda: _all_made(client, stems), 6 * 0.3 + 30.0), \
            "a thumbnail owed before the restart was never made"


def _linked_and_unlinked(server, ws_factory) -> tuple[str, str]:
    """Two stored uploads on canvas c1: the first named by a node's ``image_upload_complete``, the second by no node."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        linked, unlinked = (upload(client, image_bytes(seed=90 + k)).json() for k in range(2))
    ws = ws_factory(server)
    ws.join("c1")
    assert ws.op("n", OpType.NODE_CREATE, node(1, linked["hash"]))[0] == Event.OPERATION_ACK
    item = {"hash": linked["hash"], "serverUrl": linked["url"], "serverFilename": linked["serverFilename"]}
    assert ws.op("u", OpType.IMAGE_UPLOAD_COMPLETE, item)[0] == Event.OPERATION_ACK
    return linked["url"], unlinked["url"]


def test_the_file_sweep_deletes_the_uploads_no_canvas_uses_and_keeps_the_linked(start_server, tmp_path,
                                                                                 ws_factory) -> None:
    """ImageCanvas's cleanup (``legacy``'s ``[file_sweep]``): an upload whose link has not come yet is
    deleted, with its thumbnails; one a node names stays."""
    profile = _profile(tmp_path, "[file_sweep]\nfirst_after_s = 1e9\n")  # no timed sweep in this test
    server = start_server(profile)
    linked, unlinked = _linked_and_unlinked(server, ws_factory)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        stem = Path(unlinked).stem
        assert client.get(f"/thumbnails/64/{stem}.webp").status_code == 200
        assert client.post("/api/sweep").json() == {"deleted": 1}
        assert client.get(unlinked).status_code == 404 and client.get(f"/thumbnails/64/{stem}.webp").status_code == 404
        assert client.get(linked).status_code == 200
        assert client.post("/api/sweep").json() == {"deleted": 0}
    assert server.metric("bulkbench_uploads_swept_total") == 1


def test_the_file_sweep_runs_on_its_schedule_and_not_without_one(start_server, tmp_path, ws_factory) -> None:
    swept = start_server(_profile(tmp_path, "[file_sweep]\nfirst_after_s = 0.0\nevery_s = 0.2\n"))
    linked, unlinked = _linked_and_unlinked(swept, ws_factory)
    with httpx.Client(base_url=swept.url, timeout=60) as client:
        assert _eventually(lambda: client.get(unlinked).status_code == 404, 30.0), "no sweep came"
    never = start_server(_profile(tmp_path, "file_sweep = false\n"), data_dir=tmp_path / "never")
    linked, unlinked = _linked_and_unlinked(never, ws_factory)
    with httpx.Client(base_url=never.url, timeout=60) as client:
        assert client.post("/api/sweep").status_code == 404
        assert client.get(unlinked).status_code == 200
