"""The images of a drop: sizes and dimensions drawn from a seed, bytes made on demand.

Every image is a real PNG that Pillow decodes (a smooth picture of the drawn dimensions), padded
with a private ancillary chunk (``bbPd``, ignored by decoders) to the drawn size exactly. So the
model knows each image's bytes without making them, the load test sends exactly those bytes, and
the server's thumbnails cost what the drawn dimensions cost.
"""

from __future__ import annotations

import io
import math
import random
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from bulkbench.config import ConfigError, from_table, scenarios_dir, table_of

PAD_CHUNK = b"bbPd"
"""Ancillary (lowercase first letter), private (lowercase second), safe to copy: decoders skip it."""


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """How a drop's images are drawn. ``[workload]`` in a scenario TOML sets any of these."""

    images: int = 200
    seed: int = 1
    median_bytes: int = 400_000
    """Median file size; sizes are log-normal around it."""
    sigma: float = 0.6
    """Spread of the log-normal (0 = every image the median size)."""
    min_bytes: int = 40_000
    max_bytes: int = 4_000_000
    dimensions: tuple[tuple[int, int], ...] = ((1024, 768), (768, 1024), (1600, 1200), (1200, 1600))
    """Pixel sizes to draw from, uniformly."""


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """One image of one user's drop."""

    index: int
    id: str
    size_bytes: int
    width: int
    height: int
    seed: str

    @property
    def filename(self) -> str:
        return f"{self.id}.png"


def draw_images(spec: WorkloadSpec, user: int | str = 0, count: int | None = None) -> list[ImageSpec]:
    """The drop of user ``user``: deterministic in (seed, user); distinct images for distinct users."""
    out = []
    for index in range(spec.images if count is None else count):
        key = f"{spec.seed}:{user}:{index}"
        rng = random.Random(key)
        size = spec.median_bytes * math.exp(spec.sigma * rng.gauss(0.0, 1.0))
        width, height = rng.choice(spec.dimensions)
        out.append(ImageSpec(
            index=index,
            id=f"u{user}-img{index:05d}",
            size_bytes=int(min(spec.max_bytes, max(spec.min_bytes, size))),
            width=width,
            height=height,
            seed=key,
        ))
    return out


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def image_bytes(image: ImageSpec) -> bytes:
    """The PNG for ``image``: its dimensions, its exact size (or the bare PNG if that is bigger)."""
    rng = random.Random(image.seed)

    def colour() -> tuple[int, int, int]:
        return (rng.randrange(256), rng.randrange(256), rng.randrange(256))

    picture = Image.new("RGB", (image.width, image.height), colour())
    draw = ImageDraw.Draw(picture)
    for _ in range(12):  # flat shapes: tiny once compressed, so the padding sets the size
        x0, y0 = rng.randrange(image.width), rng.randrange(image.height)
        x1, y1 = x0 + rng.randrange(1, image.width // 2), y0 + rng.randrange(1, image.height // 2)
        draw.ellipse((x0, y0, x1, y1), fill=colour())
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", compress_level=6)
    png = buffer.getvalue()
    pad = image.size_bytes - len(png) - 12
    if pad <= 0:
        return png
    return png[:-12] + _chunk(PAD_CHUNK, rng.randbytes(pad)) + png[-12:]


def load_workload(path: str | None = None) -> WorkloadSpec:
    """The ``[workload]`` of a TOML file (default ``scenarios/workload.toml``)."""
    source = Path(path) if path else scenarios_dir() / "workload.toml"
    if path and not source.exists():
        raise ConfigError(f"workload file {source} does not exist")
    table = table_of(source, "workload")
    if "dimensions" in table:
        table["dimensions"] = tuple(tuple(d) for d in table["dimensions"])
    return from_table(WorkloadSpec, table, f"{source} [workload]")
