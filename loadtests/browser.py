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

from bulkbench.effects import BROWSER_CONNECTIONS_PER_HOST, HttpResult, parse_retry_after
from bulkbench.target import UploadSpec, fill
from bulkbench.truth import count_request


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
    def __init__(self, base_url: str, emulated_rtt_s: float = 0.0, headers: dict[str, str] | None = None,
                 source_address: str | None = None, upload: UploadSpec | None = None,
                 form_values: dict[str, Any] | None = None) -> None:
        """``source_address``: the loopback address this browser sends from (a per-IP limiter tells
        browsers apart by it); ``upload``: the target's upload route and form; ``form_values``: what
        its form-field templates are filled with."""
        parts = urlsplit(base_url)
        extra = {"source_address": (source_address, 0)} if source_address else {}
        self.pool = urllib3.HTTPConnectionPool(
            parts.hostname, parts.port, maxsize=BROWSER_CONNECTIONS_PER_HOST, block=True, retries=False, **extra
        )
        self.gate = FairGate(BROWSER_CONNECTIONS_PER_HOST)
        self.headers = dict(headers or {})
        self.upload_spec = upload or UploadSpec()
        self.form = {key: str(value) for key, value in fill(dict(self.upload_spec.fields), form_values or {}).items()}
        self.emulated_rtt_s = emulated_rtt_s
        self.requests = 0
        self.uploads = 0
        """Upload attempts (every POST of a file, refused or not)."""
        self.http: dict[str, dict[str, int]] = {"http_by_status": {}}
        """Answers by status ("0": none, a timeout or a broken connection), by route, by route and status."""
        self.bytes_uploaded = 0

    def _call(self, method: str, path: str, timeout_s: float, **kw: Any) -> tuple[HttpResult, int]:
        if self.emulated_rtt_s:
            gevent.sleep(self.emulated_rtt_s)
        self.requests += 1
        started = time.perf_counter()
        result, length = self._request(method, path, timeout_s, started, **kw)
        count_request(self.http, method, path, result.status)
        return result, length

    def _request(self, method: str, path: str, timeout_s: float, started: float,
                 **kw: Any) -> tuple[HttpResult, int]:
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
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return HttpResult(response.status, self._canonical(body), latency, retry_after_s=retry_after), \
            len(response.data)

    def _canonical(self, body: dict[str, Any]) -> dict[str, Any]:
        """An upload's answer with the target's field names as bulkbench's (``url``, ``serverFilename``)."""
        spec = self.upload_spec
        if spec.url_field not in body or spec.server_filename_field not in body:
            return body
        return {**body, "url": body[spec.url_field], "serverFilename": body[spec.server_filename_field]}

    def upload(self, data: bytes, filename: str, digest: str, timeout_s: float) -> tuple[HttpResult, int]:
        spec = self.upload_spec
        body, content_type = urllib3.encode_multipart_formdata(
            {**self.form, spec.hash_field: digest, spec.file_field: (filename, data, "image/png")})
        self.bytes_uploaded += len(data)
        self.uploads += 1
        return self._call("POST", spec.route, timeout_s, body=body, headers={"Content-Type": content_type})

    def get(self, path: str, timeout_s: float = 30.0) -> tuple[HttpResult, int]:
        return self._call("GET", path, timeout_s)

    def post_json(self, path: str, body: dict[str, Any], timeout_s: float = 30.0) -> tuple[HttpResult, int]:
        return self._call("POST", path, timeout_s, body=orjson.dumps(body),
                          headers={"Content-Type": "application/json"})

    def close(self) -> None:
        self.pool.close()
