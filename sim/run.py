"""``bulkbench sim``: the model's run, written in the same results schema as a real run.

Each replication is one SimPy environment with its own seed (``seed * 1000 + r``): the same
users, images and strategies as ``bulkbench run`` with the same options, against ``ModelWorld``.
``summary.json`` holds the replications' means, with 95 % confidence intervals (Student's t) in
``extra.ci95``; ``images.jsonl`` and ``server_metrics.csv`` are replication 0's.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import gc
import math
import random
import statistics
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import orjson
import scipy.stats
import simpy

from bulkbench.arrivals import arrival_plan, arrival_times, total_users
from bulkbench.bound import add_bound
from bulkbench.course import step_times
from bulkbench.model_params import ModelParams, load_model_params
from bulkbench.network import NetworkSpec, load_network
from bulkbench.profile import Profile, load_profile
from bulkbench.results import Cause, RunSummary, table
from bulkbench.strategies import Drop, start, strategy_params
from bulkbench.truth import DropResult, drop_figures, judge, last_settled_s, summarize
from bulkbench.workload import ImageSpec, WorkloadSpec, draw_images, load_workload
from sim.components import Link
from sim.driver import SimClient
from sim.events import Environment, events_scheduled
from sim.model import ModelWorld

SAMPLE_EVERY_S = 0.5



@dataclasses.dataclass(frozen=True, slots=True)
class SimOptions:
    strategy: str = "individual"
    images: int = 200
    users: int = 1
    profile: str = "legacy"
    seed: int = 1
    replications: int = 1
    out: Path | None = None
    uplink_mbit: float = 0.0
    queue_ms: float = 200.0
    canvas: str = "own"
    workload: str = ""
    emulation: bool = True
    model: str | None = None
    link_per_user: bool = False
    """Each user on an uplink of its own (capacity planning); real runs share one shaped loopback."""
    arrival_rate: float = 0.0
    stages: str = ""
    """When users arrive (``bulkbench.arrivals``): by default all at once."""
    strategy_overrides: tuple[tuple[str, Any], ...] = ()
    strategy_layer: str = ""
    """A strategies layer (TOML) read over ``scenarios/strategies.toml`` (``bulkbench calibrate --page``)."""
    horizon_s: float = 0.0
    """Stop simulating at this time (0: when every drop has ended): images still open are ``unfinished``,
    so the drop time is a lower bound and the failure rate an upper one. A sweep that only needs to know
    a cell missed its drop-time target need not simulate past it (``plan``). Not with arrivals."""
    gets_as_bursts: bool = False
    """A node's thumbnail GETs as bursts on one connection (``ModelWorld._burst``): ``plan``'s coarser form,
    validated against the full one on the default sweep (the note of #15)."""
    stop_at_censored: bool = False
    """Run no more replications once one has been stopped (``horizon_s``, ``give_up_limit``): the cell has
    missed its targets whatever the others would do (``plan``); its mean and interval are of those run."""
    server_uptime_s: float = 0.0
    """How long the server has run when the first drop starts: where the profile's file sweeps fall in
    the drop. 0: started with it, as every real run here starts its server fresh (a drop longer than
    30 min then meets ImageCanvas's first sweep; on a server up for hours, a drop of D s meets one with
    chance D / 6 h, wherever it falls)."""
    give_up_limit: float = 0.0
    """Stop simulating once the clients have given up on this share of their images (0: never): the open
    ones are ``unfinished``, as at the horizon. ``plan`` sets it to replications x its failure-rate
    target, past which the cell's mean misses the target whatever its other replications do."""


@dataclasses.dataclass(slots=True)
class Replication:
    summary: RunSummary
    results: list[DropResult]
    series: list[dict[str, float]]
    events: int


def t95(df: int) -> float:
    """Student's t for a two-sided 95 % interval with ``df`` degrees of freedom (scipy's, exact)."""
    return float(scipy.stats.t.ppf(0.975, df)) if df > 0 else math.nan


def simulate_once(options: SimOptions, replication: int, profile: Profile, workload: WorkloadSpec,
                  params: ModelParams, record_series: bool = True, sample_every_s: float = SAMPLE_EVERY_S,
                  keep: dict[str, Any] | None = None, strategy_args: Any = None) -> Replication:
    """One replication. ``keep`` (for tests) receives the world, to look inside it afterwards;
    ``strategy_args``: the strategy's parameters, when the caller has read them already."""
    env = Environment()
    rng = random.Random(options.seed * 1000 + replication)
    network = NetworkSpec(uplink_mbit=options.uplink_mbit, queue_ms=options.queue_ms)
    link = Link(env, network.goodput_bytes_per_s if network.shaped else 0.0, options.queue_ms / 1000.0,
                standing_bytes_per_flow=params.standing_bytes_per_flow, standing_fraction=params.standing_fraction,
                queue_occupancy=queue_occupancy(params, options.seed, replication), link_mbit=network.uplink_mbit)
    world = ModelWorld(env, profile, link, params, rng, link_per_user=options.link_per_user,
                       gets_as_bursts=options.gets_as_bursts, server_uptime_s=options.server_uptime_s)
    if strategy_args is None:
        strategy_args = strategy_params(options.strategy, dict(options.strategy_overrides),
                                        layer=options.strategy_layer)
    runs: list[tuple[SimClient, Drop, simpy.Process]] = []
    ended: dict[int, float] = {}
    give_ups = GiveUpCount(math.ceil(options.give_up_limit * options.images * options.users), env.event())

    def arrive(user: int) -> simpy.Process:
        canvas_id = "shared" if options.canvas == "shared" else f"u{user}"
        client = SimClient(env, world, user=user, canvas_id=canvas_id)
        world.join(client)
        drop = Drop(canvas_id, list(_images(workload, user)), profile.limits, client_id=f"user-{user}",
                    seed=options.seed * 1000 + replication)
        if options.give_up_limit > 0:
            drop.watch_give_ups(give_ups.one_more)
        process = client.run(start(options.strategy, drop, strategy_args))
        process.callbacks.append(lambda _e: ended.__setitem__(client.user, client.now))
        runs.append((client, drop, process))
        return process

    plan = arrival_plan(options.users, options.arrival_rate, options.stages)
    arrivals = arrival_times(plan) if plan is not None else None
    if arrivals is None:
        dropping = [arrive(user) for user in range(options.users)]
    else:
        dropping = [env.process(_later(env, at, lambda user=user: arrive(user))) for user, at in enumerate(arrivals)]
    series: list[dict[str, float]] = []
    if record_series:
        env.process(_monitor(env, world, series, len(dropping), sample_every_s))
    over = env.all_of(dropping)
    stops = [over]
    if options.give_up_limit > 0:
        stops.append(give_ups.reached)
    if options.horizon_s > 0:
        stops.append(env.timeout(options.horizon_s))
    with gc_paused():
        env.run(until=env.any_of(stops) if len(stops) > 1 else over)
    censored = not over.triggered
    results = []
    for client, drop, _process in runs:
        client.count_frames_until(env.now)
        if censored:
            for track in drop.log.tracks.values():
                if track.settled_at is None and track.failure is None:
                    track.fail(Cause.UNFINISHED, client.now)  # a drop's times are its user's own
    world.server.sweeps_due()  # the server's state as the judge reads it, at the run's end
    for client, drop, _process in runs:
        room = world.server.room(client.canvas_id)
        records = judge(drop, room.canvas.to_json(), world.server.stored.__contains__)
        results.append(DropResult(
            user=client.user, records=records, ws_messages_sent=client.ws_messages_sent,
            ws_messages_received=client.ws_messages_received, http_requests=client.http_requests,
            bytes_uploaded=client.bytes_uploaded, started_at=client.started_at,
            first_byte_s=(client.first_byte_at or 0.0) - client.started_at,
            last_settled_s=last_settled_s(drop, ended.get(client.user, client.now)),
            op_ack_s=drop.log.op_ack_s, upload_s=drop.log.upload_s,
            extra={"answers": drop.log.answers, "http_by_status": client.http_by_status,
                   "upload_attempts": client.upload_attempts, **drop.log.heartbeat_extra()}))
    summary = summarize("sim", options.strategy, profile.name, options.seed, results,
                        extra=drop_figures(results))
    if options.strategy_layer:
        summary.extra["strategy_layer"] = options.strategy_layer
    add_bound(summary, [drop.images for _c, drop, _p in runs], profile, network, params,
              per_user_link=options.link_per_user, arrivals_s=arrivals)
    if world.server.swept:
        summary.extra["uploads_swept"] = world.server.swept
    if censored:
        summary.extra["censored_at_s"] = env.now
    if keep is not None:
        keep["world"] = world
    return Replication(summary, results, series, events_scheduled(env))


@dataclasses.dataclass(slots=True)
class GiveUpCount:
    """The images the clients of a replication have given up on, all users together; ``reached``
    succeeds at the ``limit``-th (a limit of 0 never does)."""

    limit: int
    reached: simpy.Event
    count: int = 0

    def one_more(self) -> None:
        self.count += 1
        if self.count == self.limit:
            self.reached.succeed()


def queue_occupancy(params: ModelParams, seed: int, replication: int) -> float:
    """This replication's share of the shaped queue the standing queue can fill: drawn from a stream of
    its own, so a spread of 0 leaves every other draw of the run as it was."""
    if params.queue_occupancy_spread <= 0:
        return params.queue_occupancy
    draw = random.Random(f"occupancy-{seed}-{replication}").uniform(-1.0, 1.0)
    return min(1.0, max(0.0, params.queue_occupancy + params.queue_occupancy_spread * draw))


def _later(env: simpy.Environment, at_s: float, begin: Callable[[], simpy.Process]) -> Generator[Any, Any, None]:
    """A user who arrives at ``at_s``: nothing of theirs exists before."""
    if at_s > 0:
        yield env.timeout(at_s)
    yield begin()


@functools.lru_cache(maxsize=256)
def _images(workload: WorkloadSpec, user: int) -> tuple[ImageSpec, ...]:
    """A user's images: the same in every replication (drawn from the workload's seed), drawn once."""
    return tuple(draw_images(workload, user=user))


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a replication runs: it allocates millions of short-lived
    objects, and each collection walks every live one (about a fifth of the run's time). The cycles
    it leaves (processes and their callbacks) are collected as usual once it is over."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _monitor(env: simpy.Environment, world: ModelWorld, series: list[dict[str, float]],
             users: int, every_s: float) -> Generator[simpy.Event, Any, None]:
    while True:
        row: dict[str, float] = {"t": round(env.now, 3)}
        for name, stage in world.server.stages.items():
            row[f"queue_depth.{name}"] = stage.queue_depth
        for name, stage in world.server.stages.items():
            row[f"busy_workers.{name}"] = stage.busy
        row["ws_connections"] = users
        row["http_in_flight"] = world.http_in_flight
        series.append(row)
        yield env.timeout(every_s)


NUMERIC_FIELDS = ("images_ok", "images_failed", "ws_messages_sent", "ws_messages_received", "http_requests",
                  "bytes_uploaded", "drop_seconds")
SETTLED_FIELDS = ("time_to_first_settled_s", "settled_p50_s")


def combine(replications: list[Replication]) -> RunSummary:
    """The replications' means in the schema's fields; their 95 % intervals in ``extra.ci95``."""
    first = replications[0].summary
    n = len(replications)
    ci: dict[str, list[float]] = {}

    def mean_and_ci(name: str, values: list[float]) -> float:
        mean = statistics.fmean(values)
        half = t95(n - 1) * statistics.stdev(values) / math.sqrt(n) if n > 1 else 0.0
        ci[name] = [mean - half, mean + half]
        return mean

    fields: dict[str, Any] = {}
    for name in NUMERIC_FIELDS:
        fields[name] = mean_and_ci(name, [getattr(r.summary, name) for r in replications])
    for name in SETTLED_FIELDS:
        values = [v for r in replications if (v := getattr(r.summary, name)) is not None]
        fields[name] = mean_and_ci(name, values) if values else None
    mean_and_ci("failure_rate", [r.summary.failure_rate for r in replications])
    for series_name in ("op_ack_ms", "upload_ms"):
        merged = {}
        for key in ("p50", "p95", "p99", "max"):
            values = [getattr(r.summary, series_name)[key] for r in replications]
            values = [v for v in values if v is not None]
            merged[key] = mean_and_ci(f"{series_name}.{key}", values) if values else None
        fields[series_name] = merged
    causes: dict[str, float] = {}
    for r in replications:
        for cause, count in r.summary.failures_by_cause.items():
            causes[cause] = causes.get(cause, 0) + count / n
    statuses = sorted({s for r in replications for s in r.summary.extra.get("http_by_status", {})})
    by_status = {s: mean_and_ci(f"http_by_status.{s}", [r.summary.extra["http_by_status"].get(s, 0)
                                                         for r in replications]) for s in statuses}
    attempts = mean_and_ci("upload_attempts", [r.summary.extra.get("upload_attempts", 0) for r in replications])
    extra = {**first.extra, "http_by_status": by_status, "upload_attempts": attempts, "replications": n, "ci95": ci}
    if "sockets_reopened" in first.extra:  # the pages whose heartbeat found their socket dead, on average
        extra["sockets_reopened"] = mean_and_ci("sockets_reopened", [r.summary.extra.get("sockets_reopened", 0)
                                                                      for r in replications])
    extra.pop("censored_at_s", None)  # a replication's own: the run's is ``censored``, below
    censored = sum(1 for r in replications if "censored_at_s" in r.summary.extra)
    if censored:  # replications stopped at the horizon: their drop time is a lower bound, and so the mean's
        extra["censored"] = censored
    return dataclasses.replace(first, **fields, failures_by_cause=dict(sorted(causes.items())), extra=extra)


def _inputs(options: SimOptions,
            profile_override: Profile | None = None) -> tuple[Profile, WorkloadSpec, ModelParams, Any]:
    """What ``options`` name, read from their files: the profile, the workload, the model's parameters and the
    strategy's."""
    profile = profile_override or load_profile(options.profile)
    if not options.emulation:
        profile = profile.without_emulation()
    workload = dataclasses.replace(load_workload(options.workload or None), images=options.images, seed=options.seed)
    params = load_model_params(options.model)
    return profile, workload, params, strategy_params(options.strategy, dict(options.strategy_overrides),
                                                      layer=options.strategy_layer)


def course_of(options: SimOptions) -> dict[str, list[float]]:
    """One run's (replication 0 of ``options.seed``) step times over all its users' images
    (``bulkbench.course``): the model's course of a drop, to set beside a real page's."""
    profile, workload, params, strategy_args = _inputs(options)
    once = simulate_once(options, 0, profile, workload, params, record_series=False, strategy_args=strategy_args)
    return step_times(record.timings for result in once.results for record in result.records)


def run_sim(options: SimOptions, profile_override: Profile | None = None) -> RunSummary:
    """``profile_override``: a profile object to use instead of loading ``options.profile`` (knob sweeps)."""
    plan = arrival_plan(options.users, options.arrival_rate, options.stages)  # bad stages refused before anything
    if plan is not None and (options.horizon_s > 0 or options.give_up_limit > 0):
        raise ValueError("horizon_s or give_up_limit with arrivals: a user not arrived when the run stops would "
                         "have no drop to judge")
    if plan is not None:
        options = dataclasses.replace(options, users=total_users(plan))
    profile, workload, params, strategy_args = _inputs(options, profile_override)
    replications = []
    for r in range(options.replications):
        replications.append(simulate_once(options, r, profile, workload, params, record_series=(r == 0),
                                          strategy_args=strategy_args))
        if options.stop_at_censored and "censored_at_s" in replications[-1].summary.extra:
            break
    summary = combine(replications)
    summary.extra.update({"network": {"uplink_mbit": options.uplink_mbit, "queue_ms": options.queue_ms},
                          "canvas": options.canvas, "emulation": options.emulation,
                          "events": sum(r.events for r in replications)})
    if options.out is not None:
        write(Path(options.out), summary, replications[0])
    return summary


def write(out: Path, summary: RunSummary, first: Replication) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_bytes(orjson.dumps([summary.to_json()], option=orjson.OPT_INDENT_2))
    with open(out / "images.jsonl", "wb") as handle:
        for result in first.results:
            for record in result.records:
                handle.write(orjson.dumps({"user": result.user, **record.to_json()}) + b"\n")
    drops = out / "drops"
    drops.mkdir(exist_ok=True)
    for result in first.results:
        (drops / f"user-{result.user}.json").write_bytes(orjson.dumps(result.to_json()))
    if first.series:
        with open(out / "server_metrics.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(first.series[0]))
            writer.writeheader()
            writer.writerows(first.series)


def main(args: Any) -> int:
    network = load_network(args.network, args.uplink_mbit)
    options = SimOptions(
        strategy=args.strategy, strategy_layer=args.strategy_layer, images=args.images, users=args.users,
        profile=args.profile, seed=args.seed,
        replications=args.replications, out=Path(args.out), uplink_mbit=network.uplink_mbit,
        queue_ms=network.queue_ms, canvas=args.canvas, workload=args.workload or "",
        emulation=not args.no_emulation, model=args.model or None, arrival_rate=args.arrival_rate,
        stages=args.stages, server_uptime_s=args.server_uptime_s,
    )
    summary = run_sim(options)
    print(table([summary]))
    ci = summary.extra["ci95"]["failure_rate"]
    if summary.extra["replications"] > 1:
        print(f"\nfailure rate 95 % CI over {summary.extra['replications']} replications: "
              f"[{ci[0]:.3f}, {ci[1]:.3f}]")
    print(f"results in {options.out}/")
    return 0
