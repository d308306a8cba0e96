"""What the model assumes beyond the server profile (``scenarios/model.toml``): the client's hashing
rate, the sizes of frames and answers, the server's cores, the link's standing queue.

In the core, not in ``sim``, because the physical bound of a run (``bulkbench.bound``) prices a drop
with the same measured figures, whichever engine ran it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bulkbench.config import from_table, scenarios_dir, table_of
from bulkbench.profile import StageSpec


@dataclass(frozen=True, slots=True)
class ModelParams:
    """What the model assumes beyond the profile (``scenarios/model.toml``)."""

    hash_mb_per_s: float = 300.0
    """The client's SHA-256 rate (file read included)."""
    request_overhead_bytes: int = 400
    """HTTP request line and headers."""
    answer_bytes: int = 80
    result_item_bytes: int = 40
    node_json_bytes: int = 260
    thumbnail_response_bytes: int = 1450
    upload_response_bytes: int = 250
    get_service_ms: float = 0.0
    """The server's time to answer one GET of a stored file (a thumbnail), rate limiter and logging
    included; a connection serves a burst of GETs one after another."""
    service_cv: float = 0.0
    """Spread of service times (coefficient of variation, gamma); 0: every job its mean."""
    server_cpus: int = 2
    """Cores the server's CPU-bound stages (upload checks, thumbnails) share: this machine's 2."""
    receive_cpu_ms: float = 0.0
    receive_cpu_ms_per_mb: float = 0.0
    """The event loop's CPU to receive and parse an upload's body (per upload, per MB): on the
    server's cores, with the upload stage's own work (no stage sample sees it)."""
    standing_bytes_per_flow: float = 40_000.0
    standing_fraction: float = 0.45
    """Bytes each upload keeps in the shaped link's queue (fitted: 6 uploads hold about 160 KB)."""
    queue_occupancy: float = 1.0
    """The share of the shaped link's queue (``queue_ms``) the standing queue can fill: TCP fills it to
    a loss, halves its window and fills it again, so on average it holds less than all of it."""
    queue_occupancy_spread: float = 0.0
    """Where in that sawtooth a run sits differs from one real run to the next: each replication draws
    its occupancy uniformly within +- this much (0: every replication the same)."""


def load_model_params(path: str | None = None) -> ModelParams:
    source = Path(path) if path else scenarios_dir() / "model.toml"
    return from_table(ModelParams, table_of(source, "model"), f"{source} [model]")


def mean_work_s(spec: StageSpec, params: ModelParams, stage: str, items: float) -> float:
    """One job's real work at its fitted mean: the stage's own cost, and on an upload the event loop's
    receive CPU (which no stage sample sees). The model draws around it; the bound adds it up."""
    mean = spec.work_s(items)
    if stage == "upload":
        mean += (params.receive_cpu_ms + params.receive_cpu_ms_per_mb * items) / 1000.0
    return mean
