"""Fixtures: real servers (``bulkbench serve`` in child processes on loopback ports) and clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reference_server.process import ServerProcess
from tests.helpers import WsClient

ServerFactory = Callable[..., ServerProcess]
SMALL_WORKLOAD = """kind = "workload"
[workload]
median_bytes = 60000
sigma = 0.3
min_bytes = 20000
max_bytes = 200000
dimensions = [[320, 240], [240, 320]]
"""


@pytest.fixture
def small_workload(tmp_path: Path) -> str:
    """Small images (about 60 KB, 320 x 240): real runs of a few seconds."""
    path = tmp_path / "small.toml"
    path.write_text(SMALL_WORKLOAD)
    return str(path)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start real servers (``bulkbench serve`` in a child process); all are stopped at the end."""
    started: list[ServerProcess] = []

    def factory(profile: str | Path = "optimized", data_dir: Path | None = None, **kw: Any) -> ServerProcess:
        server = ServerProcess(profile, data_dir or tmp_path / "data", **kw).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def ws_factory() -> Iterator[Callable[[ServerProcess], WsClient]]:
    clients: list[WsClient] = []

    def factory(server: ServerProcess) -> WsClient:
        client = WsClient(server.ws_url)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()
