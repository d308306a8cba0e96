"""Fixtures: real servers (``bulkbench serve`` in child processes on loopback ports) and clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reference_server.process import ServerProcess
from tests.helpers import WsClient

ServerFactory = Callable[..., ServerProcess]


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
