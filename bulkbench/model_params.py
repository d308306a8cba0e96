"""What the model assumes beyond the server profile (``scenarios/model.toml``): the client's hashing
rate, the sizes of frames and answers, the server's cores, the link's standing queue.

In the core, not in ``sim``, because the physical bound of a run (``bulkbench.bound``) prices a drop
with the same measured figures, whichever engine ran it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bulkbench.config import ConfigError, from_table, scenarios_dir, table_of
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
    cpu_sharing: str = "first_come"
    """How jobs share those cores: ``first_come`` (a job holds a core until its work is done; the
    others wait) or ``processor_sharing`` (every job runs at once, each at cores/jobs of a core, as the
    OS time-slices threads: a short upload check is not held up behind long thumbnail jobs)."""
    receive_cpu_ms: float = 0.0
    receive_cpu_ms_per_mb: float = 0.0
    """The event loop's CPU to receive and parse an upload's body (per upload, per MB): on the
    server's cores, with the upload stage's own work (no stage sample sees it)."""
    receive_knee_mbit: float = 0.0
    """Above this link rate the per-MB receive CPU falls as knee / rate: a faster link hands the loop
    bigger reads, and an unshaped loopback the biggest (none of the per-MB cost). 0: the per-MB cost
    whatever the link."""
    standing_bytes_per_flow: float = 40_000.0
    standing_fraction: float = 0.45
    """Bytes each upload keeps in the shaped link's queue (fitted: 6 uploads hold about 160 KB)."""
    queue_occupancy: float = 1.0
    """The share of the shaped link's queue (``queue_ms``) the standing queue can fill: TCP fills it to
    a loss, halves its window and fills it again, so on average it holds less than all of it."""
    queue_occupancy_spread: float = 0.0
    """Where in that sawtooth a run sits differs from one real run to the next: each replication draws
    its occupancy uniformly within +- this much (0: every replication the same)."""


CPU_SHARING = ("first_come", "processor_sharing")


def load_model_params(path: str | None = None) -> ModelParams:
    source = Path(path) if path else scenarios_dir() / "model.toml"
    params = from_table(ModelParams, table_of(source, "model"), f"{source} [model]")
    if params.cpu_sharing not in CPU_SHARING:
        raise ConfigError(f"{source} [model] cpu_sharing = {params.cpu_sharing!r}: one of {list(CPU_SHARING)}")
    return params


def receive_share(params: ModelParams, link_mbit: float) -> float:
    """How much of ``receive_cpu_ms_per_mb`` an upload over a link of ``link_mbit`` costs (0: unshaped)."""
    if params.receive_knee_mbit <= 0:
        return 1.0
    if link_mbit <= 0:
        return 0.0
    return min(1.0, params.receive_knee_mbit / link_mbit)


def mean_work_s(spec: StageSpec, params: ModelParams, stage: str, items: float, link_mbit: float = 0.0) -> float:
    """One job's real work at its fitted mean: the stage's own cost, and on an upload the event loop's
    receive CPU (which no stage sample sees) for a body that came over a link of ``link_mbit``. The model
    draws around it; the bound adds it up."""
    mean = spec.work_s(items)
    if stage == "upload":
        per_mb = params.receive_cpu_ms_per_mb * receive_share(params, link_mbit)
        mean += (params.receive_cpu_ms + per_mb * items) / 1000.0
    return mean
