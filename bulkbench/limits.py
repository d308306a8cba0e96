"""Every limit the protocol enforces, named once, with the reference system's values as defaults.

A profile may override any of them (``[limits]`` in its TOML); everything else imports them
from here. Sizes are in bytes, counts are plain integers.
"""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True, slots=True)
class Limits:
    """What one message, batch or upload may be before the server refuses it."""

    max_message_bytes: int = 100 * KIB
    """Largest ``execute_operation`` frame; the reference rejects bigger ones ("Operation too large")."""
    max_frame_bytes: int = 16 * MIB
    """Transport cap: a bigger WebSocket frame closes the socket (1009); below it, errors are frames."""
    max_batch_items: int = 1000
    """Most nodes or items in one ``batch_node_create`` / ``batch_upload_complete``."""
    max_upload_bytes: int = 500 * MIB
    """Largest ``POST /api/upload`` body (the reference's multer cap)."""
    max_image_pixels: int = 100_000_000
    """Largest width x height an upload may declare (decompression-bomb guard)."""
    max_id_chars: int = 128
    """Longest canvas id, node id, operation id or hash string."""
    max_canvas_nodes: int = 100_000
    """Most nodes one canvas may hold."""
    max_pending_frames: int = 10_000
    """Frames queued to one slow WebSocket reader before the server closes it (1008)."""
    max_pending_bytes: int = 8 * MIB
    """Bytes queued to one slow WebSocket reader before the server closes it (1008); one frame always fits."""
    send_stall_s: float = 60.0
    """Longest one WebSocket frame may wait for the reader to take the previous ones; then the socket is dropped."""
    upload_idle_s: float = 30.0
    """Longest pause inside an upload body before it is refused (408); Node's own timeouts are longer."""
    upload_grace_s: float = 10.0
    """Time an upload body may take before its average rate is checked."""
    min_upload_bytes_per_s: int = 1024
    """Slowest average rate an upload body may arrive at after ``upload_grace_s`` (408 below it)."""
    max_uploads_in_flight: int = 256
    """Uploads being received or stored at once; with admission control on, more are answered 503 + Retry-After
    before their body is read (each holds a connection, a partial file and CPU while it streams)."""
    max_connections: int = 1000
    """Open connections (HTTP and WebSocket) the server takes; more are answered 503 at once."""


DEFAULT_LIMITS = Limits()
