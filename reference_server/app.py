"""The reference server composed: one Starlette app, HTTP and WebSocket on one port, under uvicorn.

``Server`` holds what one instance owns (profile, storage, stages, metrics, service);
``create_app`` turns it into routes plus two thin ASGI guards (metrics and the rate limit);
``serve`` runs it with uvicorn, whose WebSocket layer is the ``websockets`` package (sans-I/O).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import socketio
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bulkbench.auth import TokenAuthority
from bulkbench.profile import STAGE_NAMES, FileSweep, Overloaded, Profile
from bulkbench.protocol import ErrorCode, ProtocolError
from bulkbench.ratelimit import RateLimiter
from bulkbench.server_core import UploadDesk, unused
from reference_server import http
from reference_server.metrics import Metrics
from reference_server.service import CanvasService
from reference_server.stages import Stage
from reference_server.storage import Storage
from reference_server.ws import SOCKETIO_PATH, socketio_server, websocket_endpoint

log = logging.getLogger("bulkbench.server")

UNLIMITED_PATHS = ("/metrics", "/healthz")
"""Monitoring is never rate limited and needs no token."""
CANVAS_PATH = "/api/canvases/"
"""Reading a canvas needs a token that grants it; every other HTTP route, any valid token."""


class Server:
    """Everything one server instance owns."""

    def __init__(self, profile: Profile, data_dir: Path, auth: TokenAuthority | None = None) -> None:
        self.profile = profile
        self.auth = auth
        self.metrics = Metrics()
        self.storage = Storage(data_dir)
        self.stages = {
            name: Stage(
                name,
                profile.stage(name),
                self.metrics,
                emulate=profile.emulation,
                admission_control=profile.admission_control,
                retry_after_s=profile.retry_after_s,
            )
            for name in STAGE_NAMES
        }
        self.service = CanvasService(profile, self.storage, self.stages, self.metrics)
        self.rate_limiter = RateLimiter(profile.rate_limit) if profile.rate_limit else None
        self.uploads = UploadDesk(profile)
        """Admission, de-duplication and thumbnails owed: the upload rules, shared with the model."""
        self.metrics.thumbnails_owed.set_function(lambda: len(self.uploads.owed))
        self.closing = False
        self._background: set[asyncio.Task[Any]] = set()
        self.started_at = time.monotonic()
        self._sweeper: asyncio.Task[None] | None = None

    def start_sweeping(self) -> None:
        """The profile's file sweeps (``[file_sweep]``), timed from this server's start, until it closes."""
        if self.profile.file_sweep is not None:
            self._sweeper = asyncio.create_task(self._sweeps(self.profile.file_sweep))

    async def _sweeps(self, sweep: FileSweep) -> None:
        await asyncio.sleep(max(0.0, sweep.first_after_s - (time.monotonic() - self.started_at)))
        while True:
            self.sweep_unused()
            await asyncio.sleep(sweep.every_s)

    def sweep_unused(self) -> int:
        """Delete every stored upload no canvas's node uses (``server_core.sweep``); how many."""
        rooms = [room for canvas_id in self.storage.canvas_ids() if (room := self.service.find(canvas_id))]
        gone = unused(self.storage.upload_names(), (node for room in rooms for node in room.canvas.nodes.values()))
        for name in sorted(gone):
            self.storage.delete_upload(name)
        self.metrics.uploads_swept_total.inc(len(gone))
        if gone:
            log.info("file sweep: %d stored uploads no canvas uses deleted", len(gone))
        return len(gone)

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run work after the answer (async thumbnails), keeping a reference until it ends."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.uploads.backlog.clear()  # never started: nothing to wait for
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        self.storage.close()


def _route_label(path: str) -> str:
    for prefix in ("/api/upload", "/api/thumbnails", "/api/canvases", "/uploads", "/thumbnails", "/metrics",
                   "/healthz"):
        if path.startswith(prefix):
            return prefix
    return "other"


class HttpGuard:
    """Counts responses by route and status; checks tokens (when auth is on), then the rate limit."""

    def __init__(self, app: ASGIApp, server: Server) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics, path = self.server.metrics, scope["path"]
        route = _route_label(path)
        auth = self.server.auth
        if auth is not None and not path.startswith(UNLIMITED_PATHS):
            try:
                if path.startswith(CANVAS_PATH):
                    auth.authorize(http.scope_token(scope), path[len(CANVAS_PATH):], time.time())
                else:
                    auth.check(http.scope_token(scope), time.time())
            except ProtocolError as refused:
                metrics.http_responses_total.labels(route, str(refused.http_status)).inc()
                await http.error_response(refused)(scope, receive, send)
                return
        limiter = self.server.rate_limiter
        if limiter is not None and not path.startswith(UNLIMITED_PATHS):
            headers = dict(scope["headers"])
            client = headers.get(b"x-client-id", b"").decode("latin-1") or (scope.get("client") or ("?",))[0]
            wait_s = limiter.check(client, time.monotonic())
            if wait_s is not None:
                metrics.http_responses_total.labels(route, "429").inc()
                response = http.error_response(ProtocolError(
                    ErrorCode.RATE_LIMITED, f"rate limit exceeded; retry after {wait_s:.1f} s",
                    retry_after_s=wait_s if limiter.rule.retry_after_header else None))
                await response(scope, receive, send)
                return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                metrics.http_responses_total.labels(route, str(message["status"])).inc()
            await send(message)

        metrics.http_in_flight.inc()
        try:
            await self.app(scope, receive, counting_send)
        finally:
            metrics.http_in_flight.dec()


async def _protocol_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProtocolError)
    return http.error_response(exc)


async def _overloaded(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Overloaded)
    return http.error_response(ProtocolError(ErrorCode.OVERLOADED, str(exc), retry_after_s=exc.retry_after_s))


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.BAD_FRAME}.get(exc.status_code, ErrorCode.BAD_FRAME)
    return JSONResponse({"error": {"code": code.value, "message": str(exc.detail)}}, status_code=exc.status_code)


async def _internal(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return JSONResponse({"error": {"code": ErrorCode.INTERNAL.value, "message": "internal error"}}, status_code=500)


def create_app(profile: Profile, data_dir: Path, auth: TokenAuthority | None = None) -> ASGIApp:
    """The server's one ASGI app: Socket.IO on ``/socket.io/`` in front (it passes everything else on,
    and the HTTP guard never sees it: ImageCanvas's limiter does not count Socket.IO either), then the
    Starlette app with ``/ws`` and the HTTP routes."""
    server = Server(profile, data_dir, auth)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        if resumed := http.resume_thumbnails(server):
            log.info("thumbnails of %d stored files were never made: queued again", resumed)
        server.start_sweeping()
        yield
        await server.close()

    app = Starlette(
        routes=[
            WebSocketRoute("/ws", websocket_endpoint),
            Route("/api/upload", http.upload, methods=["POST"]),
            Route("/api/thumbnails/generate", http.generate_thumbnails, methods=["POST"]),
            Route("/api/canvases/{canvas_id}", http.get_canvas),
            Route("/api/sweep", http.sweep, methods=["POST"]),
            Route("/uploads/{name}", http.get_upload),
            Route("/thumbnails/{size}/{name}", http.get_thumbnail),
            Route("/metrics", http.metrics),
            Route("/metrics/samples", http.stage_samples),
            Route("/healthz", http.healthz),
        ],
        exception_handlers={
            ProtocolError: _protocol_error,
            Overloaded: _overloaded,
            HTTPException: _http_exception,
            Exception: _internal,
        },
        lifespan=lifespan,
    )
    app.state.server = server
    app.add_middleware(HttpGuard, server=server)
    return socketio.ASGIApp(socketio_server(server), other_asgi_app=app, socketio_path=SOCKETIO_PATH)


TCP_USER_TIMEOUT_MS = 60_000
"""A peer that acknowledges nothing for this long (one that stopped reading: zero window) is dropped
by the kernel; accepted sockets inherit it from the listener. Without it such a socket lives forever."""


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, TCP_USER_TIMEOUT_MS)
    sock.bind((host, port))
    return sock


def uvicorn_config(app: ASGIApp, profile: Profile, log_level: str = "warning") -> uvicorn.Config:
    return uvicorn.Config(
        app,
        ws="websockets-sansio",
        ws_max_size=profile.limits.max_frame_bytes,
        ws_per_message_deflate=profile.ws_compression,
        limit_concurrency=profile.limits.max_connections,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )


def serve(profile: Profile, data_dir: Path, host: str = "127.0.0.1", port: int = 8000,
          log_level: str = "warning", auth: TokenAuthority | None = None) -> None:
    """Run until SIGINT/SIGTERM. Prints one line with the URL once listening (port 0 picks a free one).

    The socket listens before the line is printed, so a client that reads the line can connect at
    once: the kernel queues its connection until uvicorn accepts it.
    """
    app = create_app(profile, data_dir, auth)
    sock = bind(host, port)
    sock.listen(2048)
    shown = f"[{host}]" if ":" in host else host
    print(f"bulkbench serving profile {profile.name!r} on http://{shown}:{sock.getsockname()[1]} "
          f"(data in {data_dir}; auth {'on' if auth else 'off'})", flush=True)
    uvicorn.Server(uvicorn_config(app, profile, log_level)).run(sockets=[sock])
