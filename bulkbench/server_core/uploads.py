"""The upload desk: which bodies are admitted, what checking and thumbnails cost, when a file is a
duplicate, and thumbnails owed after the answer (none dropped when the stage is full).

The driver's part is the body, the stages, the names and the disk: it asks ``admit`` before reading a
body, runs the ``upload`` stage for ``check_items``, asks ``existing`` (de-duplication), then
``thumbnails`` for the job: made before the answer (``before_answer``), or ``owe``d and made after it
(a refused job waits in ``refused``; each job that ``ended`` hands over the oldest waiting).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bulkbench.limits import MIB
from bulkbench.profile import Profile


@dataclass(frozen=True, slots=True)
class ThumbnailJob:
    """The thumbnails of one stored file: which sizes, and what making them costs."""

    name: str
    width: int
    height: int
    sizes: tuple[int, ...]

    @property
    def stem(self) -> str:
        """The name without its extension (as ``Path.stem``; stored names are never dot files)."""
        return self.name.rsplit(".", 1)[0]

    @property
    def items(self) -> float:
        """What the thumbnail stage's cost grows with: megapixels times the sizes made."""
        return self.width * self.height / 1e6 * len(self.sizes)


def upload_answer(name: str, digest: str, deduplicated: bool = False) -> dict[str, Any]:
    """The JSON body answering a stored upload."""
    return {"success": True, "url": f"/uploads/{name}", "serverFilename": name, "filename": name,
            "hash": digest, "deduplicated": deduplicated}


class UploadDesk:
    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.in_flight = 0
        """Upload bodies admitted and not yet answered (``Limits.max_uploads_in_flight``)."""
        self.owed: set[str] = set()
        """Stored files (by stem) whose after-the-answer thumbnails are not made yet."""
        self.backlog: deque[ThumbnailJob] = deque()
        """After-the-answer jobs a full stage refused, oldest first."""

    # ------------------------------------------------------------------ the body

    def admit(self, check_stage: Callable[[], None]) -> None:
        """Before a body is read: the upload stage's admission (``check_stage``) and the in-flight
        bodies; raises ``Overloaded`` (503 + Retry-After) rather than read what could not be processed.
        Every admitted upload is ``answered`` once."""
        check_stage()
        self.profile.check_upload_slots(self.in_flight)
        self.in_flight += 1

    def answered(self) -> None:
        self.in_flight -= 1

    @staticmethod
    def check_items(size_bytes: float) -> float:
        """What the upload stage's check costs grow with: the body's MiB."""
        return size_bytes / MIB

    def existing(self, digest: str, lookup: Callable[[str], str | None]) -> str | None:
        """The stored file this body duplicates, where the profile de-duplicates by hash."""
        return lookup(digest) if self.profile.dedup_by_hash else None

    # ------------------------------------------------------------------ thumbnails

    def thumbnails(self, name: str, width: int, height: int) -> ThumbnailJob | None:
        """The profile's thumbnail plan for a new stored file (``None``: thumbnails off)."""
        if self.profile.thumbnails == "off":
            return None
        return ThumbnailJob(name, width, height, self.profile.thumbnail_plan(width, height))

    @property
    def before_answer(self) -> bool:
        return self.profile.thumbnails == "sync"

    def owe(self, job: ThumbnailJob) -> None:
        """Answered without its thumbnails: a GET of one is 503 until the job has ended."""
        self.owed.add(job.stem)

    def refused(self, job: ThumbnailJob) -> None:
        """The stage's queue was full: the job waits for one that ends."""
        self.backlog.append(job)

    def ended(self, job: ThumbnailJob) -> ThumbnailJob | None:
        """A job is over (made, or failed and logged): the oldest waiting job, to start now."""
        self.owed.discard(job.stem)
        return self.backlog.popleft() if self.backlog else None

    def thumbnail_status(self, stem: str, exists: bool) -> int:
        """What a GET of one thumbnail answers: 200, 503 while it is owed (come back), else 404."""
        if exists:
            return 200
        return 503 if stem in self.owed else 404
