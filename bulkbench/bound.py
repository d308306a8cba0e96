"""The physical bound of a run: the shortest drop time the scenario allows, whatever the client does.

A strategy is judged against it (``drop_seconds / bound_seconds``), so a report can say how much of
a drop was the link, the server's cores or the rate limit, and how much was the client's own waiting.
It is a *lower* bound: every term counts only work no client can avoid or overlap.

- the link: every upload's bytes (and its request's headers) over the link's goodput; one shared
  loopback carries every user's bytes (as in real runs), or each user has its own (``per_user_link``);
- the server's cores: the work each upload needs before its answer (the upload check, and the
  thumbnails when they are made before the answer), over ``server_cpus``; and each stage's emulated
  time over its workers;
- the rate limit: a per-address limiter lets ``requests`` through per ``window_s``; a user's uploads
  need ``ceil(uploads / requests) - 1`` whole windows whatever the pacing (its GETs could wait);
- what must be sequential: the first file's hash before any byte can leave; after the link's or the
  limit's last upload, the server's own work on it (the cheapest image's, as any may be the last).
  The cores' term needs no such tail: the last image's work may overlap the others' on another core;
- arrivals (``run --stages`` or ``--arrival-rate``): no user ends before it arrived and then did its
  own drop alone at the bound.

The costs are the measured ones the model uses: the profile's fitted stage work, the client's hashing
rate and request size from ``scenarios/model.toml``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from bulkbench.limits import MIB
from bulkbench.model_params import ModelParams, load_model_params, mean_work_s
from bulkbench.network import NetworkSpec
from bulkbench.profile import Profile
from bulkbench.results import RunSummary
from bulkbench.workload import ImageSpec


@dataclass(frozen=True, slots=True)
class Bound:
    seconds: float
    link_s: float
    cpu_s: float
    limit_s: float
    sequential_s: float
    binding: str
    """Which term is the largest: ``link``, ``cpu``, ``limit`` or ``arrivals``."""
    arrivals_s: float = 0.0
    """From the first user's arrival to the last's."""

    def to_json(self) -> dict[str, float | str]:
        """(``arrivals_s`` only where users arrived over time.)"""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()
                if k != "arrivals_s" or v}


def upload_work_s(profile: Profile, params: ModelParams, image: ImageSpec, link_mbit: float = 0.0) -> float:
    """The server's CPU on one upload before it can answer: the check (and receiving it over a link of
    ``link_mbit``), and thumbnails when synchronous."""
    work = mean_work_s(profile.stage("upload"), params, "upload", image.size_bytes / MIB, link_mbit)
    if profile.thumbnails == "sync":
        items = profile.thumbnail_items(image.width, image.height)
        work += mean_work_s(profile.stage("thumbnail"), params, "thumbnail", items)
    return work


def emulated_stage_s(profile: Profile, images: Sequence[ImageSpec]) -> float:
    """The busiest stage's emulated time over its workers (emulated time holds a worker, not a core)."""
    if not profile.emulation:
        return 0.0
    upload, thumbnail = profile.stage("upload"), profile.stage("thumbnail")
    per_stage = [sum(upload.emulated_s(i.size_bytes / MIB) for i in images) / max(1, upload.workers)]
    if profile.thumbnails == "sync":
        per_stage.append(sum(thumbnail.emulated_s(profile.thumbnail_items(i.width, i.height)) for i in images)
                         / max(1, thumbnail.workers))
    return max(per_stage)


def physical_bound(images_by_user: Sequence[Sequence[ImageSpec]], profile: Profile, network: NetworkSpec,
                   params: ModelParams, per_user_link: bool = False,
                   arrivals_s: Sequence[float] | None = None) -> Bound:
    """``arrivals_s``: when each user arrives (by default all at once)."""
    users = [list(images) for images in images_by_user if images]
    if not users:
        return Bound(0.0, 0.0, 0.0, 0.0, 0.0, "link")
    every = [image for images in users for image in images]

    def wire_bytes(images: Sequence[ImageSpec]) -> float:
        return sum(image.size_bytes + params.request_overhead_bytes for image in images)

    goodput = network.goodput_bytes_per_s
    carried = max(wire_bytes(images) for images in users) if per_user_link else wire_bytes(every)
    link_s = carried / goodput if network.shaped else 0.0
    link_mbit = network.uplink_mbit  # 0 when unshaped
    cpu_s = max(sum(upload_work_s(profile, params, image, link_mbit) for image in every) / max(1, params.server_cpus),
                emulated_stage_s(profile, every))
    limit_s = 0.0
    if profile.rate_limit is not None:
        rule = profile.rate_limit
        limit_s = max((math.ceil(len(images) / rule.requests) - 1) * rule.window_s for images in users)
    first_hash_s = min(images[0].size_bytes for images in users) / (params.hash_mb_per_s * 1e6)
    last_work_s = min(upload_work_s(profile, params, image, link_mbit) for image in every)
    sequential_s = first_hash_s + last_work_s
    ends = {"link": first_hash_s + link_s + last_work_s,  # the last byte, then the server's work on it
            "cpu": first_hash_s + cpu_s,  # the last image's work may overlap the others' on another core
            "limit": first_hash_s + limit_s + last_work_s}
    span_s = 0.0
    if arrivals_s and len(users) > 1 and max(arrivals_s) > min(arrivals_s):
        first = min(arrivals_s)
        span_s = max(arrivals_s) - first
        ends["arrivals"] = max(at - first + physical_bound([images], profile, network, params).seconds
                               for at, images in zip(arrivals_s, users, strict=True))
    binding = max(ends, key=ends.__getitem__)
    return Bound(ends[binding], link_s, cpu_s, limit_s, sequential_s, binding, span_s)


def add_bound(summary: RunSummary, images_by_user: Sequence[Sequence[ImageSpec]], profile: Profile,
              network: NetworkSpec, params: ModelParams | None = None, per_user_link: bool = False,
              arrivals_s: Sequence[float] | None = None) -> None:
    """Write the run's bound into its summary (``bound_seconds``; the terms in ``extra.bound``)."""
    bound = physical_bound(images_by_user, profile, network, params or load_model_params(), per_user_link,
                           arrivals_s)
    summary.bound_seconds = round(bound.seconds, 4)
    summary.extra["bound"] = bound.to_json()


def add_measured_cpu(summary: RunSummary, server_cpu_s: float, cores: int) -> None:
    """A real run of our server: its own CPU time over the run, over its cores (``extra.bound.cpu_measured_s``)
    and the bound with it (``measured_seconds``, ``extra.drop_over_measured_bound``). Where the cores bind,
    the fitted costs move with the machine's noise (the same 200-image legacy drop used 36-47 CPU-s over
    six runs); the run's own CPU says how close a strategy came to keeping the cores busy. Not a bound of
    the scenario: a client that makes the server work more (retries, extra GETs) raises it."""
    bound = summary.extra.get("bound")
    if bound is None or server_cpu_s <= 0:
        return
    measured = server_cpu_s / max(1, cores)
    bound["cpu_measured_s"] = round(measured, 4)
    bound["measured_seconds"] = round(max(summary.bound_seconds or 0.0, measured), 4)
    if summary.drop_seconds:
        summary.extra["drop_over_measured_bound"] = round(summary.drop_seconds / bound["measured_seconds"], 4)
