"""Crash safety, a few kills: ``kill -9`` during ``batched`` and ``pipelined`` drops; nothing acknowledged is lost.

The benchmark (``python -m benchmarks.hardening.crash_bench``) does the killing and its own checks after every
restart; this test runs it small and then checks the end state again itself, on a server it starts on
the same data directory: every image of every drop on the canvas once, with its server URL and file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerFactory

IMAGES, KILLS = 40, 3


@pytest.mark.parametrize("strategy", ["batched", "pipelined"])
def test_kill_9_during_drops_of_the_batch_protocol_loses_nothing(tmp_path: Path, start_server: ServerFactory,
                                                                 strategy: str) -> None:
    out = tmp_path / "crash"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.hardening.crash_bench", "--strategy", strategy, "--images", str(IMAGES),
         "--kills", str(KILLS),
         "--seed", "3", "--pause", "0.3", "1.5", "--out", str(out)],
        capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((out / "crash.json").read_text())
    assert report["kills"] >= KILLS
    assert report["violations"] == {"acked_lost": 0, "half_applied": 0, "duplicates": 0}

    assert report["kills_in_batches"] >= 1
    server = start_server(report["profile_file"], data_dir=Path(report["data_dir"]), emulation=False)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for drop in report["drops"]:
            nodes = client.get(f"/api/canvases/{drop['canvas']}").json()["nodes"]
            props = [node["properties"] for node in nodes]
            assert len(nodes) == IMAGES
            assert max(Counter(p["hash"] for p in props).values()) == 1
            assert all(p.get("serverUrl") for p in props)
            for p in props:
                assert client.head(f"/uploads/{p['serverFilename']}").status_code == 200


def test_a_process_that_raises_ends_its_drop_at_once_with_its_exception() -> None:
    """A drop's processes feed each other through queues: one that dies (a connection lost in a way the
    socket did not expect) must not leave another waiting for it for ever (the pipelined crash run that
    hung for 240 s until its test gave up). The driver ends every process and raises the first error."""
    import gevent

    from bulkbench.effects import Put, Spawn, Take
    from loadtests.driver import GeventDriver

    class Broken(Exception):
        pass

    def feeder() -> object:
        yield Put("q", 1)
        raise Broken("the connection went in a way nobody caught")

    def consumer() -> object:
        while (yield Take("q", None)) is not None:  # waits for an end the feeder never puts
            pass

    def drop() -> object:
        yield Spawn(consumer(), "consumer")
        yield Spawn(feeder(), "feeder")

    driver = GeventDriver(None, None, bytes)  # type: ignore[arg-type]  # the effects here use neither
    with gevent.Timeout(10), pytest.raises(Broken):
        driver.run(drop())
    assert all(greenlet.dead for greenlet in driver.greenlets)  # none left waiting
