"""Uploads: a multipart body streamed to disk while hashed, checked as an image, thumbnailed.

The body never sits whole in memory: python-multipart's streaming parser hands each chunk of the
``file`` part to a file in ``incoming/`` and to SHA-256 as it arrives. Limits are enforced while
streaming (the upload cap), then on the stored file (format, pixel count, truncation).
"""

from __future__ import annotations

import asyncio
import hashlib
import mmap
import os
import re
import time
import uuid
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from PIL import Image
from python_multipart.multipart import MultipartParser, parse_options_header

from bulkbench.limits import Limits
from bulkbench.profile import ThumbnailDecode
from bulkbench.protocol import ErrorCode, ProtocolError

MULTIPART_OVERHEAD_BYTES = 64 * 1024
"""Room for boundaries, part headers and the hash field on top of ``max_upload_bytes``."""
MAX_FIELD_BYTES = 1024
FLUSH_BYTES = 512 * 1024
"""Received file bytes are hashed and written in batches of this size, off the event loop."""
"""Largest non-file form field (the ``hash``)."""
IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif"}
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def safe_name(name: str) -> bool:
    """A stored file's name: no separators, no leading dot, nothing a path could climb with."""
    return bool(SAFE_NAME.match(name)) and ".." not in name


def _reject(code: ErrorCode, message: str) -> ProtocolError:
    return ProtocolError(code, message)


@dataclass(slots=True)
class ReceivedUpload:
    path: Path
    size: int
    sha256: str
    declared_hash: str | None
    client_filename: str
    content_type: str


class _Receiver:
    """python-multipart callbacks that stream the ``file`` part to disk and keep the ``hash`` field."""

    def __init__(self, target: Path, limits: Limits) -> None:
        self.target = target
        self.limits = limits
        self.error: ProtocolError | None = None
        self.file: IO[bytes] | None = None
        self.digest = hashlib.sha256()
        self.pending = bytearray()
        """File bytes received but not yet hashed and written (at most about FLUSH_BYTES)."""
        self.file_ended = False
        self.size = 0
        self.file_parts = 0
        self.content_type = ""
        self.client_filename = ""
        self.fields: dict[str, bytearray] = {}
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._part: str | None = None
        self._field_name = ""

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self._headers, self._part = {}, None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if "filename" in {k.decode() for k in options} or name == "file":
            if name != "file" or self.file_parts:
                self.error = self.error or _reject(
                    ErrorCode.INVALID_UPLOAD, "exactly one file part, named 'file', is expected"
                )
                self._part = "ignore"
                return
            self.file_parts += 1
            self._part = "file"
            self.client_filename = options.get(b"filename", b"").decode("utf-8", "replace")[:255]
            self.content_type = self._headers.get(b"content-type", b"").decode("latin-1").strip()
            self.file = open(self.target, "wb")  # noqa: SIM115 - closed in on_part_end / cleanup
        else:
            self._part = "field"
            self._field_name = name
            self.fields[name] = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = memoryview(data)[start:end]  # no copy until it joins ``pending``
        if self._part == "file" and self.file is not None:
            self.size += len(chunk)
            if self.size > self.limits.max_upload_bytes:
                self.error = self.error or _reject(
                    ErrorCode.PAYLOAD_TOO_LARGE,
                    f"file over max_upload_bytes={self.limits.max_upload_bytes}",
                )
                return
            self.pending += chunk
        elif self._part == "field":
            buffer = self.fields[self._field_name]
            if len(buffer) + len(chunk) > MAX_FIELD_BYTES:
                self.error = self.error or _reject(
                    ErrorCode.INVALID_UPLOAD, f"form field over {MAX_FIELD_BYTES} bytes"
                )
                return
            buffer += chunk

    def on_part_end(self) -> None:
        if self._part == "file":
            self.file_ended = True
        self._part = None

    def flush(self) -> None:
        """Hash and write what has arrived (in a worker thread: hashlib and write release the GIL)."""
        if self.file is not None and self.pending:
            self.digest.update(self.pending)
            self.file.write(self.pending)
        self.pending = bytearray()
        if self.file_ended and self.file is not None:
            self.file.close()
            self.file = None

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


async def paced(body: AsyncIterator[bytes], limits: Limits) -> AsyncIterator[bytes]:
    """The body's chunks, refusing a sender that stalls or trickles: it would hold a connection forever."""
    chunks = body.__aiter__()
    started, received = time.monotonic(), 0
    while True:
        try:
            chunk = await asyncio.wait_for(anext(chunks), limits.upload_idle_s)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise _reject(ErrorCode.UPLOAD_TOO_SLOW,
                          f"no body bytes for upload_idle_s={limits.upload_idle_s:g}") from None
        received += len(chunk)
        elapsed = time.monotonic() - started
        if elapsed > limits.upload_grace_s and received < elapsed * limits.min_upload_bytes_per_s:
            raise _reject(ErrorCode.UPLOAD_TOO_SLOW, f"body arriving at {received / elapsed:.0f} B/s, under "
                                                     f"min_upload_bytes_per_s={limits.min_upload_bytes_per_s}")
        yield chunk


async def receive_upload(
    content_type_header: str,
    content_length: int | None,
    body: AsyncIterator[bytes],
    incoming_dir: Path,
    limits: Limits,
) -> ReceivedUpload:
    """Stream a ``multipart/form-data`` body to ``incoming_dir``; raise ``ProtocolError`` if unusable."""
    budget = limits.max_upload_bytes + MULTIPART_OVERHEAD_BYTES
    if content_length is not None and content_length > budget:
        raise _reject(ErrorCode.PAYLOAD_TOO_LARGE, f"body over max_upload_bytes={limits.max_upload_bytes}")
    kind, options = parse_options_header(content_type_header)
    if kind != b"multipart/form-data":
        raise _reject(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "POST /api/upload takes multipart/form-data")
    boundary = options.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise _reject(ErrorCode.INVALID_UPLOAD, "multipart body without a usable boundary")
    target = incoming_dir / f"{uuid.uuid4().hex}.part"
    receiver = _Receiver(target, limits)
    parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in paced(body, limits):
            received += len(chunk)
            if received > budget:
                raise _reject(
                    ErrorCode.PAYLOAD_TOO_LARGE, f"body over max_upload_bytes={limits.max_upload_bytes}"
                )
            parser.write(chunk)
            if receiver.error:
                raise receiver.error
            if len(receiver.pending) >= FLUSH_BYTES:
                await asyncio.to_thread(receiver.flush)
        parser.finalize()
        if receiver.error:
            raise receiver.error
        await asyncio.to_thread(receiver.flush)
        if not receiver.file_parts:
            raise _reject(ErrorCode.INVALID_UPLOAD, "no 'file' part in the form")
        if not receiver.file_ended:
            raise _reject(ErrorCode.INVALID_UPLOAD, "multipart body ended inside the file part")
    except ProtocolError:
        receiver.close()
        target.unlink(missing_ok=True)
        raise
    except Exception as exc:  # the parser's own errors: a broken body, not a server fault
        receiver.close()
        target.unlink(missing_ok=True)
        raise _reject(ErrorCode.INVALID_UPLOAD, f"malformed multipart body: {exc}") from exc
    declared = receiver.fields.get("hash")
    return ReceivedUpload(
        path=target,
        size=receiver.size,
        sha256=receiver.digest.hexdigest(),
        declared_hash=declared.decode("ascii", "replace").strip().lower() if declared else None,
        client_filename=receiver.client_filename,
        content_type=receiver.content_type,
    )


@dataclass(frozen=True, slots=True)
class ImageFacts:
    extension: str
    width: int
    height: int


def check_upload(upload: ReceivedUpload, limits: Limits) -> ImageFacts:
    """Check a received file is a whole image within the limits; return what the server needs of it."""
    if not upload.content_type.startswith("image/"):
        raise _reject(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"only image/* uploads are accepted, not {upload.content_type or 'no content type'!r}",
        )
    if upload.declared_hash is not None and upload.declared_hash != upload.sha256:
        raise _reject(ErrorCode.INVALID_UPLOAD, "hash field does not match the file's SHA-256")
    if upload.size == 0:
        raise _reject(ErrorCode.INVALID_IMAGE, "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload.path) as image:
                width, height = image.size
                if width * height > limits.max_image_pixels:
                    raise _reject(
                        ErrorCode.IMAGE_TOO_LARGE,
                        f"{width}x{height} px over max_image_pixels={limits.max_image_pixels}",
                    )
                fmt = image.format or ""
                if fmt not in IMAGE_FORMATS:
                    raise _reject(ErrorCode.UNSUPPORTED_MEDIA_TYPE, f"image format {fmt!r} not accepted")
    except ProtocolError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _reject(ErrorCode.IMAGE_TOO_LARGE, str(exc)) from exc
    except Exception as exc:
        raise _reject(ErrorCode.INVALID_IMAGE, f"not a readable image: {exc}") from exc
    if not _complete(fmt, upload.path, upload.size):
        raise _reject(ErrorCode.INVALID_IMAGE, f"truncated {fmt} (its end marker is missing)")
    return ImageFacts(IMAGE_FORMATS[fmt], width, height)


def _complete(fmt: str, path: Path, size: int) -> bool:
    """Does the file end the way a whole image of its format ends? (Reads its last KiB, not all of it:
    a full decode happens where thumbnails are made; a corrupt but complete body is refused there.)"""
    with open(path, "rb") as handle:
        if fmt == "WEBP":
            head = handle.read(8)
            return head[:4] == b"RIFF" and int.from_bytes(head[4:8], "little") + 8 <= size
        if fmt == "GIF":  # a ';' ends a GIF, but LZW data holds ';' bytes too: walk the blocks to it
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _gif_reaches_trailer(data)
        handle.seek(max(0, size - 1024))
        tail = handle.read()
    if fmt == "PNG":
        return tail.endswith(b"IEND\xaeB`\x82")
    return b"\xff\xd9" in tail  # JPEG


def _gif_reaches_trailer(data: mmap.mmap) -> bool:
    """Whether a GIF's blocks, each skipped by its sizes (one step per 255-byte sub-block), end in its
    trailer. A file cut anywhere runs out before it."""
    def color_table(packed: int) -> int:
        return 3 << ((packed & 7) + 1) if packed & 0x80 else 0
    size = len(data)
    at = 13 + color_table(data[10]) if size >= 13 else size  # header, screen descriptor, global colours
    while at < size:
        kind = data[at]
        if kind == 0x3B:
            return True
        if kind == 0x21:  # extension: introducer, label, sub-blocks
            at += 2
        elif kind == 0x2C and at + 10 <= size:  # image: descriptor, local colours, LZW code size, sub-blocks
            at += 10 + color_table(data[at + 9]) + 1
        else:
            return False
        while at < size and data[at]:
            at += data[at] + 1
        at += 1
    return False


def stored_name(sha256: str, extension: str) -> str:
    """A fresh, safe name for a stored upload (the reference names files by time and randomness)."""
    return f"{uuid.uuid4().hex[:12]}-{sha256[:16]}{extension}"


def make_thumbnails(source: Path, name: str, sizes: tuple[int, ...], out_dir: Path, quality: int = 80,
                    decode: ThumbnailDecode = "chained") -> int:
    """Write a WebP thumbnail per size (never enlarged) to ``out_dir/SIZE/NAME.webp``; return how many.
    Each is written beside its place and renamed into it: a GET served while it is written (its length
    read before the last bytes) would break its connection.
    ``decode`` (a profile's ``thumbnail_decode``) says what each size is cut from, which sets the CPU."""
    stem = Path(name).stem
    decoded: Image.Image | None = None
    previous: Image.Image | None = None
    for size in sorted(sizes, reverse=True):
        if decoded is None or decode == "per_size":
            with Image.open(source) as image:
                if decode != "once":
                    image.draft("RGB", (size, size))
                decoded = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
        base = previous if decode == "chained" and previous is not None else decoded
        thumb = base if decode == "per_size" else base.copy()
        thumb.thumbnail((size, size))
        folder = out_dir / str(size)
        folder.mkdir(exist_ok=True)
        partial = folder / f".{stem}.webp.partial"  # a GET sees the whole file or none of it
        thumb.save(partial, "WEBP", quality=quality)
        os.replace(partial, folder / f"{stem}.webp")
        previous = thumb
    return len(sizes)
