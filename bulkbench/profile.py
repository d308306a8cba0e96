"""Server profiles: which costs and policies the reference server (and the model) has.

A profile is a TOML file in ``scenarios/`` (see ``scenarios/legacy.toml`` for every key, documented).
It may ``extends = "other"`` and override single keys, so each knob switches on its own:
``legacy-ratelimit`` is ``legacy`` plus one table. Unknown keys are errors, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from bulkbench.canvas import Linking
from bulkbench.config import ConfigError, from_table, read_extended, scenarios_dir
from bulkbench.limits import Limits

STAGE_NAMES = ("ops", "persist", "upload", "thumbnail")
"""The server's named costs. ``ops`` applies operations (one worker, like a Node event loop),
``persist`` writes them to SQLite, ``upload`` validates and stores files, ``thumbnail`` makes WebP
thumbnails."""

PersistenceMode = Literal["full_rewrite", "delta"]
ThumbnailMode = Literal["sync", "async", "off"]
ThumbnailDecode = Literal["per_size", "once", "chained"]
THUMBNAIL_DECODES = ("per_size", "once", "chained")


class Overloaded(Exception):
    """A stage's queue is full and admission control turns the job away (503 / ``overloaded``)."""

    def __init__(self, stage: str, retry_after_s: float, why: str = "at its queue limit") -> None:
        super().__init__(f"stage {stage!r} is {why}; retry after {retry_after_s:g} s")
        self.stage = stage
        self.retry_after_s = retry_after_s


ProfileError = ConfigError
"""A profile that cannot be used (the name the command line and tests know)."""


@dataclass(frozen=True, slots=True)
class StageSpec:
    """One stage: its worker pool, its queue, and the service time a profile adds to its real work."""

    workers: int = 1
    queue_limit: int = 0
    """Jobs that may wait for a worker; 0 means unbounded (silent queueing, as the reference does)."""
    service_ms: float = 0.0
    """Emulated time per job, on top of the real work (only while emulation is enabled)."""
    per_item_ms: float = 0.0
    """Emulated time per item of a job: per node rewritten, per batch item, per thumbnail size."""
    work_ms: float = 0.0
    """Model only: what the server's real work costs per job (fitted by ``bulkbench calibrate``)."""
    work_per_item_ms: float = 0.0
    """Model only: the real work's cost per item (the same items as ``per_item_ms``)."""
    work_cv: float = 0.0
    """Model only: spread of the real work's cost (coefficient of variation); 0: the model's default."""

    def refuses(self, admission_control: bool, busy: int, waiting: int) -> bool:
        """Admission control's rule, the same in the server and the model: every worker busy and
        ``queue_limit`` jobs already waiting (never when the queue is unbounded)."""
        return admission_control and self.queue_limit > 0 and busy >= self.workers and waiting >= self.queue_limit

    def emulated_s(self, items: float = 0) -> float:
        return (self.service_ms + self.per_item_ms * items) / 1000.0

    def work_s(self, items: float = 0) -> float:
        return (self.work_ms + self.work_per_item_ms * items) / 1000.0


NO_STAGE = StageSpec()
"""A stage a profile does not name: one worker, no queue limit, no cost."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Per-client HTTP limit: ``requests`` per ``window_s``; over it, blocked ``block_s`` with 429."""

    requests: int = 500
    window_s: float = 60.0
    block_s: float = 10.0
    retry_after_header: bool = True
    """Say when to come back (``Retry-After``); ImageCanvas's plain-text 429 does not."""


@dataclass(frozen=True, slots=True)
class FileSweep:
    """When the server deletes the uploads no canvas uses, in seconds since it started (the rule:
    ``server_core.sweep``). ImageCanvas: 30 min after its start, then every 6 h."""

    first_after_s: float = 1800.0
    every_s: float = 21600.0

    def next_after(self, uptime_s: float) -> float:
        """The first sweep at or after ``uptime_s`` seconds since the server started."""
        if uptime_s <= self.first_after_s:
            return self.first_after_s
        return self.first_after_s + math.ceil((uptime_s - self.first_after_s) / self.every_s) * self.every_s


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str = ""
    persistence: PersistenceMode = "full_rewrite"
    """full_rewrite: re-serialise the whole canvas into one row per operation (the reference).
    delta: append the operation to a log, snapshot every ``snapshot_every_ops``."""
    snapshot_every_ops: int = 200
    thumbnails: ThumbnailMode = "sync"
    """sync: before the upload answer (the reference); async: after it; off: none."""
    thumbnail_sizes: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
    thumbnail_quality: int = 80
    """WebP quality of every thumbnail (ImageCanvas: 85)."""
    thumbnail_decode: ThumbnailDecode = "chained"
    """How the sizes are cut, which sets their CPU (one 1024-1600 px PNG, 5 sizes, Pillow, this machine):
    ``per_size`` decodes the original again for each size, as ImageCanvas's ``sharp(file)`` per size
    does (~133 ms); ``once`` decodes it once and cuts every size from it (~108 ms); ``chained`` cuts
    each size from the one before (~93 ms). ``python -m benchmarks.validation.upload_cost`` holds the
    choice to the real app's CPU per upload."""
    thumbnail_always_up_to: int = 0
    """Sizes up to this many pixels are always made; a larger one only when the image's longest side
    reaches it (ImageCanvas: 512, ``index.js:2457``). 0: every size is made, never enlarged."""
    dedup_by_hash: bool = False
    admission_control: bool = False
    """When a stage queue is full, refuse with 503/overloaded + Retry-After instead of queueing."""
    retry_after_s: float = 1.0
    rate_limit: RateLimit | None = None
    linking: Linking = field(default_factory=Linking)
    """How ``image_upload_complete`` links an upload to its nodes (``bulkbench.canvas.Linking``)."""
    file_sweep: FileSweep | None = None
    """When the server deletes uploads no canvas uses (``server_core.sweep``); None: never."""
    undo_push: bool = False
    """Push ``undo_state_update`` after every operation, as the reference server does."""
    ws_compression: bool = True
    """Offer permessage-deflate (Socket.IO deflates frames above 1 KiB)."""
    emulation: bool = True
    """Master switch for every stage's emulated service time."""
    limits: Limits = field(default_factory=Limits)
    stages: dict[str, StageSpec] = field(default_factory=dict)

    def stage(self, name: str) -> StageSpec:
        return self.stages.get(name, NO_STAGE)

    def thumbnail_plan(self, width: int, height: int) -> tuple[int, ...]:
        """The thumbnail sizes an upload of this many pixels gets (the server makes them, the model prices them)."""
        if not self.thumbnail_always_up_to:
            return self.thumbnail_sizes
        longest = max(width, height)
        return tuple(s for s in self.thumbnail_sizes if s <= self.thumbnail_always_up_to or longest >= s)

    def thumbnail_items(self, width: int, height: int) -> float:
        """What a thumbnail job's cost grows with: megapixels times the sizes made."""
        return width * height / 1e6 * len(self.thumbnail_plan(width, height))

    def check_upload_slots(self, uploads_in_flight: int) -> None:
        """Admission control's rule for one more upload body, the same in the server and the model."""
        if self.admission_control and uploads_in_flight >= self.limits.max_uploads_in_flight:
            raise Overloaded("upload", self.retry_after_s,
                             f"at {uploads_in_flight} uploads in flight (max_uploads_in_flight)")

    def without_emulation(self) -> Profile:
        return dataclasses.replace(self, emulation=False)


def profile_from_dict(raw: dict[str, Any], where: str = "profile") -> Profile:
    raw = dict(raw)
    limits = from_table(Limits, raw.pop("limits", {}), f"{where} [limits]")
    stages_raw = raw.pop("stages", {})
    unknown = sorted(set(stages_raw) - set(STAGE_NAMES))
    if unknown:
        raise ProfileError(f"{where}: unknown stage(s) {unknown}; stages are {list(STAGE_NAMES)}")
    stages = {n: from_table(StageSpec, s, f"{where} [stages.{n}]") for n, s in stages_raw.items()}
    for name, spec in stages.items():
        if spec.workers < 1 or spec.queue_limit < 0:
            raise ProfileError(f"{where} [stages.{name}]: workers >= 1 and queue_limit >= 0")
    rate = raw.pop("rate_limit", None)
    if rate is not None:
        rate = from_table(RateLimit, rate, f"{where} [rate_limit]")
    linking = from_table(Linking, raw.pop("linking", {}), f"{where} [linking]")
    sweep = raw.pop("file_sweep", None)
    if sweep is not None:
        sweep = from_table(FileSweep, sweep, f"{where} [file_sweep]")
        if sweep.first_after_s < 0 or sweep.every_s <= 0:
            raise ProfileError(f"{where} [file_sweep]: first_after_s >= 0 and every_s > 0")
    if "thumbnail_sizes" in raw:
        raw["thumbnail_sizes"] = tuple(raw["thumbnail_sizes"])
    profile = from_table(Profile, {**raw, "limits": limits, "stages": stages, "rate_limit": rate,
                                  "linking": linking, "file_sweep": sweep}, where)
    if profile.persistence not in ("full_rewrite", "delta"):
        raise ProfileError(f"{where}: persistence must be 'full_rewrite' or 'delta'")
    if profile.thumbnails not in ("sync", "async", "off"):
        raise ProfileError(f"{where}: thumbnails must be 'sync', 'async' or 'off'")
    if profile.thumbnail_decode not in THUMBNAIL_DECODES:
        raise ProfileError(f"{where}: thumbnail_decode must be one of {list(THUMBNAIL_DECODES)}")
    return profile


def load_profile(name_or_path: str | os.PathLike[str]) -> Profile:
    """A profile by name (``legacy``) or by path (``my.toml``); it may ``extends`` another and change
    single keys (``rate_limit = false`` takes its parent's rate limit away)."""
    return profile_from_dict(read_extended(name_or_path, scenarios_dir(), "profile"), where=str(name_or_path))
