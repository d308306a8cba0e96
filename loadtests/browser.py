"""The browser's HTTP side: one pool of 6 connections per host, shared by uploads and GETs.

HTTP/1.1 browsers open at most 6 connections to one host; a seventh request waits for a free one,
and waiting requests are served in turn. ``urllib3``'s blocking pool alone is not fair under gevent:
a greenlet that returns a connection and asks again at once takes it back before any waiter wakes,
so with 12 uploaders 6 of them starved for the whole drop (uploads of 30-120 s, timeouts at 120 s).
``FairGate`` puts requests in line before the pool, as the browser does.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import gevent
import gevent.event
import orjson
import urllib3
from urllib3.exceptions import HTTPError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from bulkbench.effects import BROWSER_CONNECTIONS_PER_HOST, HttpResult


class FairGate:
    """At most ``places`` holders, served first come, first served: a freed place is handed to the
    longest waiter, never back to the one that freed it."""

    def __init__(self, places: int) -> None:
        self.free = places
        self.waiting: deque[gevent.event.Event] = deque()

    def acquire(self, timeout_s: float) -> bool:
        """Wait for a place at most ``timeout_s``; False if none came."""
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return True
        turn = gevent.event.Event()
        self.waiting.append(turn)
        if turn.wait(timeout_s) or turn.is_set():
            return True
        self.waiting.remove(turn)
        return False

    def release(self) -> None:
        if self.waiting:
            self.waiting.popleft().set()  # the place passes to the head of the line
        else:
            self.free += 1


class Browser:
    def __init__(self, base_url: str, client_id: str, emulated_rtt_s: float = 0.0,
                 headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self.pool = urllib3.HTTPConnectionPool(
            parts.hostname, parts.port, maxsize=BROWSER_CONNECTIONS_PER_HOST, block=True, retries=False
        )
        self.gate = FairGate(BROWSER_CONNECTIONS_PER_HOST)
        self.headers = {**(headers or {}), "X-Client-Id": client_id}
        self.emulated_rtt_s = emulated_rtt_s
        self.requests = 0
        self.bytes_uploaded = 0

    def _call(self, method: str, path: str, timeout_s: float, **kw: Any) -> tuple[HttpResult, int]:
        if self.emulated_rtt_s:
            gevent.sleep(self.emulated_rtt_s)
        self.requests += 1
        started = time.perf_counter()
        if not self.gate.acquire(timeout_s):  # the browser's timeout counts from send(), queueing included
            return HttpResult(0, latency_s=time.perf_counter() - started, timed_out=True), 0
        try:
            left_s = max(0.001, timeout_s - (time.perf_counter() - started))
            response = self.pool.request(method, path, headers={**self.headers, **kw.pop("headers", {})},
                                         timeout=urllib3.Timeout(connect=left_s, read=left_s),
                                         pool_timeout=left_s, preload_content=True, **kw)
        except (Urllib3Timeout, urllib3.exceptions.EmptyPoolError):
            return HttpResult(0, latency_s=time.perf_counter() - started, timed_out=True), 0
        except HTTPError:
            return HttpResult(0, latency_s=time.perf_counter() - started), 0
        finally:
            self.gate.release()
        latency = time.perf_counter() - started
        body: dict[str, Any] = {}
        if response.headers.get("content-type", "").startswith("application/json"):
            try:
                body = orjson.loads(response.data)
            except orjson.JSONDecodeError:
                body = {}
        retry_after = response.headers.get("retry-after")
        return HttpResult(response.status, body, latency,
                          retry_after_s=float(retry_after) if retry_after else None), len(response.data)

    def upload(self, data: bytes, filename: str, digest: str, timeout_s: float) -> tuple[HttpResult, int]:
        body, content_type = urllib3.encode_multipart_formdata(
            {"hash": digest, "file": (filename, data, "image/png")})
        self.bytes_uploaded += len(data)
        return self._call("POST", "/api/upload", timeout_s, body=body, headers={"Content-Type": content_type})

    def get(self, path: str, timeout_s: float = 30.0) -> tuple[HttpResult, int]:
        return self._call("GET", path, timeout_s)

    def close(self) -> None:
        self.pool.close()
