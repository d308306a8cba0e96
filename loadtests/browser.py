"""The browser's HTTP side: one pool of 6 connections per host, shared by uploads and GETs.

HTTP/1.1 browsers open at most 6 connections to one host; a seventh request waits for a free one.
``urllib3``'s blocking pool of 6 behaves the same, under gevent.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import orjson
import urllib3
from urllib3.exceptions import HTTPError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from bulkbench.effects import BROWSER_CONNECTIONS_PER_HOST, HttpResult


class Browser:
    def __init__(self, base_url: str, client_id: str, emulated_rtt_s: float = 0.0,
                 headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self.pool = urllib3.HTTPConnectionPool(
            parts.hostname, parts.port, maxsize=BROWSER_CONNECTIONS_PER_HOST, block=True, retries=False
        )
        self.headers = {**(headers or {}), "X-Client-Id": client_id}
        self.emulated_rtt_s = emulated_rtt_s
        self.requests = 0
        self.bytes_uploaded = 0

    def _call(self, method: str, path: str, timeout_s: float, **kw: Any) -> tuple[HttpResult, int]:
        if self.emulated_rtt_s:
            import gevent

            gevent.sleep(self.emulated_rtt_s)
        self.requests += 1
        started = time.perf_counter()
        try:
            response = self.pool.request(method, path, headers={**self.headers, **kw.pop("headers", {})},
                                         timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
                                         pool_timeout=timeout_s, preload_content=True, **kw)
        except (Urllib3Timeout, urllib3.exceptions.EmptyPoolError):
            return HttpResult(0, latency_s=time.perf_counter() - started, timed_out=True), 0
        except HTTPError:
            return HttpResult(0, latency_s=time.perf_counter() - started), 0
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
