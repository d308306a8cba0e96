"""The HTTP transport: uploads, stored files, the canvas as the server holds it, metrics, health."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from PIL import Image
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.types import Scope

from bulkbench.auth import bearer_token
from bulkbench.profile import Overloaded
from bulkbench.protocol import ErrorCode, ProtocolError, loads, retry_after_header, thumbnail_url
from bulkbench.server_core import ThumbnailJob, upload_answer
from reference_server.uploads import (
    ReceivedUpload,
    check_upload,
    make_thumbnails,
    receive_upload,
    safe_name,
    stored_name,
)

if TYPE_CHECKING:
    from reference_server.app import Server

log = logging.getLogger("bulkbench.server")


def _server(request: Request) -> Server:
    return request.app.state.server


def scope_token(scope: Scope) -> str | None:
    """The token an HTTP request or WebSocket handshake carries (header, else ``?token=``)."""
    authorization = next((v for k, v in scope["headers"] if k == b"authorization"), b"").decode("latin-1")
    query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return bearer_token(authorization, query[0] if query else None)


def error_response(error: ProtocolError) -> JSONResponse:
    headers = {}
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(retry_after_header(error.retry_after_s))
    return JSONResponse({"error": error.to_json()}, status_code=error.http_status, headers=headers)


def _not_found(what: str) -> JSONResponse:
    return error_response(ProtocolError(ErrorCode.NOT_FOUND, f"{what} not found"))


async def upload(request: Request) -> Response:
    server = _server(request)
    desk = server.uploads
    desk.admit(server.stages["upload"].check_admission)  # refuse before reading a body we could not process
    try:
        length = request.headers.get("content-length")
        received = await receive_upload(
            request.headers.get("content-type", ""),
            int(length) if length and length.isdigit() else None,
            request.stream(),
            server.storage.incoming_dir,
            server.profile.limits,
        )
        server.metrics.upload_bytes_total.inc(received.size)
        try:
            return JSONResponse(await _store(server, received))
        finally:
            received.path.unlink(missing_ok=True)
    finally:
        desk.answered()


async def _store(server: Server, received: ReceivedUpload) -> dict[str, Any]:
    profile, storage, desk = server.profile, server.storage, server.uploads
    facts = await server.stages["upload"].run(
        lambda: check_upload(received, profile.limits), items=desk.check_items(received.size)
    )  # inline: it reads the header and the last KiB, not the file
    if existing := desk.existing(received.sha256, storage.upload_by_hash):
        return upload_answer(existing, received.sha256, deduplicated=True)
    name = stored_name(received.sha256, facts.extension)
    job = desk.thumbnails(name, facts.width, facts.height)
    if job is not None and desk.before_answer:
        await _thumbnails(server, received.path, job)
    os.replace(received.path, storage.uploads_dir / name)
    storage.record_upload(name, received.sha256, received.size, received.content_type)
    if job is not None and not desk.before_answer:
        desk.owe(job)
        server.spawn(_thumbnails_later(server, job))
    return upload_answer(name, received.sha256)


async def _thumbnails(server: Server, source: Path, job: ThumbnailJob) -> None:
    """One file's thumbnails, as one job of the thumbnail stage."""
    profile = server.profile
    try:
        await server.stages["thumbnail"].run(
            lambda: make_thumbnails(source, job.name, job.sizes, server.storage.thumbnails_dir,
                                    profile.thumbnail_quality, profile.thumbnail_decode),
            items=job.items,
            in_thread=True,
        )
    except (Overloaded, ProtocolError):
        raise
    except Exception as exc:
        raise ProtocolError(ErrorCode.INVALID_IMAGE, f"image could not be decoded: {exc}") from exc


async def _thumbnails_later(server: Server, job: ThumbnailJob) -> None:
    """After the answer: refused by a full stage, the job waits in the desk's backlog; every job that
    ends starts the oldest one waiting."""
    desk = server.uploads
    try:
        await _thumbnails(server, server.storage.uploads_dir / job.name, job)
    except Overloaded:
        server.metrics.operations_total.labels("thumbnail", "deferred").inc()
        desk.refused(job)
        return
    except Exception:
        log.exception("thumbnails for %s failed", job.name)
    following = desk.ended(job)
    if following is not None and not server.closing:
        server.spawn(_thumbnails_later(server, following))


def resume_thumbnails(server: Server) -> int:
    """After a restart: stored files whose after-the-answer thumbnails were never made (the backlog lives
    in memory) are owed again, oldest name first; returns how many."""
    storage, desk = server.storage, server.uploads
    if server.profile.thumbnails != "async":
        return 0
    owed = []
    for name in storage.upload_names():
        try:
            with Image.open(storage.uploads_dir / name) as image:  # the header only
                width, height = image.size
        except Exception:
            continue  # not an image we can make thumbnails of: it never had any
        job = desk.thumbnails(name, width, height)
        if job is not None and not all(_thumbnail_path(server, size, job.stem).is_file() for size in job.sizes):
            desk.owe(job)
            owed.append(job)
    workers = server.stages["thumbnail"].spec.workers
    for job in owed[:workers]:
        server.spawn(_thumbnails_later(server, job))
    for job in owed[workers:]:
        desk.refused(job)  # each job that ends starts the oldest of these
    return len(owed)


def _thumbnail_path(server: Server, size: int | str, stem: str) -> Path:
    return server.storage.thumbnails_dir / str(size) / f"{stem}.webp"


MAX_GENERATE_BODY_BYTES = 4096
"""Largest ``POST /api/thumbnails/generate`` body (a hash and a few sizes)."""
MAX_THUMBNAIL_PX = 8192


async def generate_thumbnails(request: Request) -> Response:
    """ImageCanvas's ``POST /api/thumbnails/generate {hash, sizes}`` (``index.js:573``), which its page calls
    before fetching each thumbnail: the first upload with that hash gets the sizes of the profile's plan
    it lacks; the answer lists every size asked for, made or not (as ImageCanvas's does, so a size the
    plan skips is then a 404)."""
    server = _server(request)
    body = await request.body()
    if len(body) > MAX_GENERATE_BODY_BYTES:
        raise ProtocolError(ErrorCode.PAYLOAD_TOO_LARGE, f"body over {MAX_GENERATE_BODY_BYTES} bytes")
    try:
        data = loads(body)
    except ValueError:
        raise ProtocolError(ErrorCode.BAD_JSON, "body is not JSON") from None
    image_hash, sizes = (data.get("hash"), data.get("sizes")) if isinstance(data, dict) else (None, None)
    if (not isinstance(image_hash, str) or not isinstance(sizes, list) or not 0 < len(sizes) <= 16
            or not all(type(size) is int and 0 < size <= MAX_THUMBNAIL_PX for size in sizes)):
        raise ProtocolError(ErrorCode.INVALID_PARAMS, "hash (a string) and sizes (1-16 pixel sizes) are needed")
    name = server.storage.upload_by_hash(image_hash)
    source = server.storage.uploads_dir / name if name else None
    if source is None or not source.is_file():
        return _not_found("file for hash")
    stem = Path(name).stem
    with Image.open(source) as image:  # the header only, as sharp's metadata()
        width, height = image.size
    plan = server.profile.thumbnail_plan(width, height)
    missing = tuple(size for size in sizes if size in plan and not _thumbnail_path(server, size, stem).is_file())
    if missing:
        await _thumbnails(server, source, ThumbnailJob(name, width, height, missing))
    return JSONResponse({"success": True, "generated": sizes,
                         "urls": {str(size): thumbnail_url(size, stem) for size in sizes}})


async def sweep(request: Request) -> Response:
    """The file sweep now, off its schedule (ImageCanvas's ``POST /database/cleanup``, the handler its
    timer calls); 404 where the profile has no sweep."""
    server = _server(request)
    if server.profile.file_sweep is None:
        return _not_found("file sweep")
    return JSONResponse({"deleted": server.sweep_unused()})


async def get_upload(request: Request) -> Response:
    name = request.path_params["name"]
    path = _server(request).storage.uploads_dir / name
    if not safe_name(name) or not path.is_file():
        return _not_found("upload")
    return FileResponse(path)


async def get_thumbnail(request: Request) -> Response:
    size, name = request.path_params["size"], request.path_params["name"]
    if not size.isdigit() or not safe_name(name):
        return _not_found("thumbnail")
    server = _server(request)
    path = server.storage.thumbnails_dir / size / name
    status = server.uploads.thumbnail_status(Path(name).stem, path.is_file())
    if status == 503:  # owed: come back, it will exist
        return error_response(ProtocolError(ErrorCode.OVERLOADED, "thumbnail not made yet",
                                            retry_after_s=server.profile.retry_after_s))
    if status == 404:
        return _not_found("thumbnail")
    return FileResponse(path, media_type="image/webp")


async def get_canvas(request: Request) -> Response:
    room = _server(request).service.find(request.path_params["canvas_id"])
    if room is None:
        return _not_found("canvas")
    return JSONResponse(room.canvas.to_json())


async def metrics(request: Request) -> Response:
    return Response(_server(request).metrics.render(), media_type="text/plain; version=0.0.4")


async def stage_samples(request: Request) -> Response:
    """Recent (items, seconds) of every stage's jobs: what ``bulkbench calibrate`` fits the model to."""
    return JSONResponse({name: stage.samples_json() for name, stage in _server(request).stages.items()})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})

