"""Fingerprints: the model's summaries for a fixed set of scenarios, and the reference server's answers
to a fixed script, must not change unless we mean it.

They guard work on the inside of both (speed, a server core shared by the server and the model): a change
that moves any number of any scenario, or any frame or answer of the script, shows here with its place.
A change meant to move them is recorded again, and the diff of ``tests/fingerprints/`` is part of its
commit:

    .venv/bin/python -m tests.test_fingerprints --record
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from bulkbench.protocol import Event, OpType
from reference_server.process import ServerProcess
from sim.fingerprints import SCENARIOS, fingerprint
from tests.helpers import WsClient, image_bytes, node, sha256_hex, upload

RECORDED = Path(__file__).parent / "fingerprints" / "model.json"
RECORDED_SERVER = Path(__file__).parent / "fingerprints" / "server.json"
SERVER_PROFILES = ("legacy", "legacy-ratelimit", "optimized")
RANDOM_NAME = re.compile(r"[0-9a-f]{12}-(?=[0-9a-f]{16}\.)")
"""The random part of a stored file's name: the only thing the script's answers may vary in."""
def recorded() -> dict[str, Any]:
    return json.loads(RECORDED.read_text())


def test_the_recording_covers_every_scenario() -> None:
    assert sorted(recorded()) == sorted(SCENARIOS), "record again: python -m tests.test_fingerprints --record"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_model_answers_as_recorded(name: str) -> None:
    want = recorded()[name]
    got = fingerprint(name)
    moved = {key: (want.get(key), got.get(key)) for key in sorted(set(want) | set(got))
             if want.get(key) != got.get(key)}
    assert not moved, f"{name}: (recorded, now) {moved}"


def server_fingerprint(profile: str) -> dict[str, Any]:
    """Two clients on one canvas; one sends every kind of operation (good, repeated, duplicate, without an
    id, malformed, unknown, batched with bad items), uploads (twice the same, without a hash, not an
    image) and completions; both end with a full sync. Each step waits for its answer, so the frames
    come in one order."""
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(profile, Path(tmp) / "data").start()
        alice, bob = WsClient(server.ws_url), WsClient(server.ws_url)
        http = httpx.Client(base_url=server.url, timeout=30)
        try:
            a, b = image_bytes(seed=1), image_bytes(seed=2)
            alice.join("c1")
            bob.join("c1")
            for op in (("o1", OpType.NODE_CREATE, node(1, sha256_hex(a))),
                       ("o1", OpType.NODE_CREATE, node(1, sha256_hex(a))),
                       ("o2", OpType.NODE_CREATE, node(1)),
                       ("o3", OpType.NODE_CREATE, {"type": "media/image", "pos": [0, 0]}),
                       ("o4", OpType.NODE_CREATE, {"id": "x"}),
                       ("o5", "node_explode", {}),
                       ("o6", OpType.BATCH_NODE_CREATE, {"nodes": [node(2, sha256_hex(b)), {"id": "y"}, node(1),
                                                                   node(3)]})):
                alice.op(*op)
            uploads = [upload(http, a), upload(http, a), upload(http, b, with_hash=False),
                       http.post("/api/upload", files={"file": ("x.txt", b"not an image", "text/plain")})]
            stored = {"serverUrl": uploads[0].json()["url"], "serverFilename": uploads[0].json()["serverFilename"]}
            alice.op("o7", OpType.IMAGE_UPLOAD_COMPLETE, {"hash": sha256_hex(a), **stored})
            alice.op("o8", OpType.BATCH_UPLOAD_COMPLETE, {"items": [{"hash": sha256_hex(b), **stored},
                                                                     {"hash": "0" * 64}]})
            for client in (alice, bob):
                client.send(Event.REQUEST_FULL_SYNC, {"canvasId": "c1"})
                client.until(Event.FULL_STATE_SYNC)
            answers = {"alice": alice.seen, "bob": bob.seen,
                       "uploads": [[r.status_code, r.json()] for r in uploads],
                       "truth": http.get("/api/canvases/c1").json(),
                       "stored": http.head(stored["serverUrl"]).status_code}
        finally:
            alice.close()
            bob.close()
            http.close()
            server.stop()
    return json.loads(RANDOM_NAME.sub("<random>-", json.dumps(answers)))


def test_the_server_recording_covers_every_profile() -> None:
    assert sorted(json.loads(RECORDED_SERVER.read_text())) == sorted(SERVER_PROFILES)


@pytest.mark.parametrize("profile", SERVER_PROFILES)
def test_the_server_answers_the_script_as_recorded(profile: str) -> None:
    want = json.loads(RECORDED_SERVER.read_text())[profile]
    got = server_fingerprint(profile)
    for part in want:
        assert got[part] == want[part], f"{profile}: {part} moved"


def record() -> None:
    RECORDED.parent.mkdir(exist_ok=True)
    RECORDED.write_text(json.dumps({name: fingerprint(name) for name in sorted(SCENARIOS)}, indent=1,
                                   sort_keys=True) + "\n")
    RECORDED_SERVER.write_text(json.dumps({p: server_fingerprint(p) for p in SERVER_PROFILES}, indent=1,
                                          sort_keys=True) + "\n")
    print(f"recorded {len(SCENARIOS)} model scenarios in {RECORDED}, {len(SERVER_PROFILES)} servers in "
          f"{RECORDED_SERVER}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python -m tests.test_fingerprints --record")
    record()
