"""A target's set-up and truth over HTTP: making a drop's canvas, reading what the server holds.

Both go through pools of their own (not the browser's 6 connections: they are not the drop's
traffic), from the browser's address for the canvas (as the page would) and from the judge's own
address for the truth, so the judge's reads never use up a browser's rate-limit bucket. A truth read
that fails is a ``TruthError``: the run stops with its reason, it never becomes a loss figure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
import urllib3
from urllib3.exceptions import HTTPError

from bulkbench.effects import parse_retry_after
from bulkbench.target import LOOPBACK_JUDGE, Target, TargetError, dig, fill
from bulkbench.truth import TruthError, server_nodes

HTTP_TIMEOUT_S = 30.0
READ_PATIENCE_S = 120.0
"""How long one truth read may wait out 429/503 answers (a limiter's block is 10 s) before it fails."""
RETRY_PAUSE_S = (0.5, 8.0)


def is_loopback(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")


def pool(base_url: str, source_address: str | None) -> urllib3.HTTPConnectionPool:
    parts = urlsplit(base_url)
    extra = {"source_address": (source_address, 0)} if source_address else {}
    return urllib3.HTTPConnectionPool(parts.hostname, parts.port or 80, maxsize=4, retries=False,
                                      timeout=urllib3.Timeout(HTTP_TIMEOUT_S), **extra)


def patient(request: Callable[[], urllib3.BaseHTTPResponse], what: str) -> urllib3.BaseHTTPResponse:
    """``request()`` again while the server says 429/503 or cannot be reached, within READ_PATIENCE_S."""
    deadline, pause = time.monotonic() + READ_PATIENCE_S, RETRY_PAUSE_S[0]
    while True:
        try:
            response = request()
            if response.status not in (429, 503):
                return response
            wait = parse_retry_after(response.headers.get("retry-after")) or pause
        except HTTPError as exc:
            response, wait = None, pause
            if time.monotonic() + wait > deadline:
                raise TruthError(f"{what}: {exc}") from exc
        if time.monotonic() + wait > deadline:
            status = response.status if response is not None else "no answer"
            raise TruthError(f"{what}: still {status} after {READ_PATIENCE_S:g} s")
        time.sleep(wait)
        pause = min(pause * 2, RETRY_PAUSE_S[1])


def create_canvas(target: Target, base_url: str, name: str, username: str, headers: dict[str, str],
                  source_address: str | None) -> Any:
    """The drop's canvas id: ``name`` itself where joining makes a canvas, else the id the server gives."""
    spec = target.canvas
    if spec.create == "join":
        return name
    http = pool(base_url, source_address)
    body = orjson.dumps(fill(dict(spec.body), {"canvas": name, "user": username}))
    try:
        response = patient(lambda: http.request("POST", spec.route, body=body,
                                                headers={**headers, "Content-Type": "application/json"}),
                           f"POST {spec.route}")
    except TruthError as exc:
        raise TargetError(f"could not make a canvas: {exc}") from exc
    finally:
        http.close()
    try:
        canvas_id = dig(orjson.loads(response.data), spec.id_field)
    except orjson.JSONDecodeError:
        canvas_id = None
    if response.status >= 300 or canvas_id is None:
        raise TargetError(f"POST {spec.route} answered {response.status} without an id at {spec.id_field!r}: "
                          f"{response.data[:200]!r}")
    return canvas_id


class Truth:
    """What the target holds for one canvas: its nodes (as read once) and whether a file is stored."""

    def __init__(self, target: Target, base_url: str, canvas_id: Any, headers: dict[str, str],
                 canvas: dict[str, Any] | None = None, judge_address: str | None = None) -> None:
        """``judge_address``: where the judge reads from (default: its own loopback address)."""
        self.target, self.canvas_id = target, canvas_id
        self.headers = {key: value for key, value in headers.items() if key.lower() != target.clients.header.lower()}
        if target.clients.identity == "header":
            self.headers[target.clients.header] = "judge"
        self.http = pool(base_url, judge_address or (LOOPBACK_JUDGE if is_loopback(base_url) else None))
        self.canvas = canvas if canvas is not None else self._read_canvas()
        server_nodes(self.canvas, target.truth)  # a malformed answer stops here, before any judgement
        self._stored: dict[str, bool] = {}

    def _read_canvas(self) -> dict[str, Any]:
        route = fill(self.target.truth.route, {"canvas": quote(str(self.canvas_id), safe="")})
        response = patient(lambda: self.http.request("GET", route, headers=self.headers), f"GET {route}")
        if response.status != 200:
            raise TruthError(f"GET {route} answered {response.status}: {response.data[:200]!r}")
        try:
            return orjson.loads(response.data)
        except orjson.JSONDecodeError as exc:
            raise TruthError(f"GET {route} did not answer JSON: {response.data[:200]!r}") from exc

    def stored(self, server_filename: str) -> bool:
        if server_filename not in self._stored:
            truth = self.target.truth
            route = fill(truth.file_route, {"server_filename": quote(server_filename, safe="")})
            response = patient(lambda: self.http.request(truth.file_check, route, headers=self.headers,
                                                         preload_content=truth.file_check == "GET"),
                               f"{truth.file_check} {route}")
            if response.status not in (200, 404):
                raise TruthError(f"{truth.file_check} {route} answered {response.status}")
            self._stored[server_filename] = response.status == 200
        return self._stored[server_filename]

    def close(self) -> None:
        self.http.close()
