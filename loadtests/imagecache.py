"""Workload images on disk: made once from their seed (``bulkbench.workload``), then reused."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from bulkbench.workload import ImageSpec, image_bytes

DEFAULT_DIR = Path(__file__).resolve().parent.parent / ".cache" / "images"


class ImageCache:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(os.environ.get("BULKBENCH_IMAGE_CACHE", folder or DEFAULT_DIR))
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, image: ImageSpec) -> Path:
        key = hashlib.sha256(f"{image.seed}|{image.size_bytes}|{image.width}x{image.height}".encode()).hexdigest()
        return self.folder / f"{key[:32]}.png"

    def bytes(self, image: ImageSpec) -> bytes:
        path = self.path(image)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            data = image_bytes(image)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_bytes(data)
            partial.replace(path)  # atomic: concurrent makers of one image agree
            return data

    def prepare(self, images: Iterable[ImageSpec]) -> int:
        """Make every missing image now (before a drop's clock starts); return how many were made."""
        made = 0
        for image in images:
            if not self.path(image).exists():
                self.bytes(image)
                made += 1
        return made
