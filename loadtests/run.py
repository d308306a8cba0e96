"""``bulkbench run``: one real run, from nothing to a results directory.

Makes the workload's images (once, cached), makes the shaped network if the scenario has one,
starts the reference server on a free loopback port (unless ``--target``), runs Locust headless
with one drop per user, then judges, sums and writes: ``summary.json``, ``images.jsonl``, Locust's
CSVs, ``server_metrics.csv`` (queue depths and connections over time) and ``drops/``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson

from bulkbench.arrivals import STAGES_ENV, arrival_plan, arrival_times, ends_s, total_users
from bulkbench.bound import add_bound, add_measured_cpu
from bulkbench.config import ConfigError
from bulkbench.lifeline import die_with_parent, exit_on_sigterm, wait_for
from bulkbench.model_params import load_model_params
from bulkbench.network import load_network
from bulkbench.profile import load_profile
from bulkbench.results import RunSummary, table
from bulkbench.strategies import STRATEGY_NEEDS, base_strategy, strategy_params
from bulkbench.target import APP_TARGETS, REFERENCE, Target, TargetError, load_target, with_socket
from bulkbench.thresholds import EXIT_THRESHOLDS_FAILED, load_gates
from bulkbench.truth import DropResult, TruthError, drop_figures, summarize
from bulkbench.workload import draw_images, load_workload
from loadtests.imagecache import ImageCache
from loadtests.imagecanvas import ImageCanvasApp, uploads_swept
from loadtests.network import ShapedNamespace
from reference_server.process import ServerProcess

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
LOCUST_OK_EXITS = (0, 1)
"""Locust's exit codes of a run that went through: 1 says some requests failed (a 429, a timeout), which
a run measures rather than fails on; anything else is the load generator failing."""
JUDGE_GRACE_S = 300.0
"""Time beyond a drop's cap for judging it (a limiter can make the truth reads wait)."""


@dataclasses.dataclass(frozen=True, slots=True)
class RunOptions:
    strategy: str = "individual"
    strategy_layer: str = ""
    """A strategies layer (TOML) read over ``scenarios/strategies.toml`` (``bulkbench calibrate --page``)."""
    images: int = 200
    users: int = 1
    profile: str = "legacy"
    seed: int = 1
    out: Path = Path("results/run")
    target: str = ""
    network: str = "loopback"
    uplink_mbit: float | None = None
    emulated_rtt_ms: float | None = None
    canvas: str = "own"
    processes: int = 0
    workload: str = ""
    emulation: bool = True
    max_seconds: float = 1800.0
    quiet: bool = False
    auth_secret_file: str = ""
    """Start the server with token auth on; each simulated user mints a token for its own canvas."""
    token: str = ""
    """A token every user sends (for a ``--target`` server with auth on)."""
    target_profile: str = REFERENCE
    """The target description (``scenarios/targets/``): how to drive the server and read its truth."""
    start_app: str = ""
    """Start the real ImageCanvas (``today`` or ``as-reported``) for the run, fresh, and drive it."""
    drop_cap_s: float = 0.0
    """Stop a drop still going after this long (its open images: ``unfinished``), as ``browser-run``'s
    hard cap does; 0: drops run to their end (within ``max_seconds``)."""
    transport: str = ""
    """Our server's socket when ``run`` starts it: ``websocket`` (default) or ``socketio``."""
    thresholds: str = ""
    """A thresholds TOML: those marked ``abort_on_fail`` are watched during the run (``loadtests.watch``)."""
    arrival_rate: float = 0.0
    """Users arriving per second (Locust's spawn rate); 0: all at once."""
    stages: str = ""
    """Users arriving in stages (``bulkbench.arrivals``), by the locustfile's ``LoadTestShape``."""


def _say(options: RunOptions, text: str) -> None:
    if not options.quiet:
        print(text, flush=True)


def check_target(options: RunOptions) -> Target:
    """The run's target, refused before anything starts if it cannot serve the strategy."""
    strategy_params(options.strategy, layer=options.strategy_layer)  # an unknown strategy, set or layer: refused here
    if options.start_app:
        if options.start_app not in APP_TARGETS:
            raise TargetError(f"--start-app {options.start_app!r}: one of {sorted(APP_TARGETS)}")
        if options.target:
            raise TargetError("--start-app starts the real ImageCanvas; --target points at a running server: "
                              "not both")
    target = load_target(options.target_profile)
    if options.transport:
        if options.target and target.name != REFERENCE:
            raise TargetError(f"--transport chooses our own server's socket; target {target.name!r} has its own")
        target = with_socket(target, options.transport)  # type: ignore[arg-type]
    missing = target.operations.missing(STRATEGY_NEEDS[base_strategy(options.strategy)])
    if missing:
        raise TargetError(f"strategy {options.strategy!r} needs operations target {target.name!r} does not have: "
                          f"{', '.join(missing)} (it supports {', '.join(target.operations.supported)}); "
                          f"a run would lose every image to it. Choose a strategy that uses only those.")
    if options.canvas == "shared" and target.canvas.create != "join":
        raise TargetError(f"--canvas shared: target {target.name!r} makes a canvas per browser (POST "
                          f"{target.canvas.route}); one canvas for every user is not supported there")
    if not options.target and not options.start_app and target.name != REFERENCE:
        raise TargetError(f"--target-profile {target.name}: give the server's address with --target URL")
    return target


def run(options: RunOptions) -> RunSummary:
    exit_on_sigterm()
    if options.start_app and options.target_profile in ("", REFERENCE):
        options = dataclasses.replace(options, target_profile=APP_TARGETS.get(options.start_app, options.start_app))
    if options.thresholds:
        load_gates(Path(options.thresholds))  # a bad file is refused before anything starts
    plan = arrival_plan(options.users, options.arrival_rate, options.stages)
    if plan is not None and options.processes:
        raise ConfigError("users arriving over time run in one Locust process: drop --processes (each process "
                          "would count its own arrivals)")
    if options.stages:
        options = dataclasses.replace(options, users=total_users(plan))
    target = check_target(options)
    if target.name != REFERENCE:  # not our server: the client is built for the profile that stands for it
        options = dataclasses.replace(options, profile=target.model_profile)
    profile = load_profile(options.profile)
    label = profile.name if target.name == REFERENCE else target.name
    network = load_network(options.network, options.uplink_mbit, options.emulated_rtt_ms)
    if network.shaped and options.target:  # (--start-app starts the real app inside the namespace)
        raise ConfigError("a shaped network runs the server and Locust in one namespace: it cannot use --target; "
                          "shape the path to your server yourself, or drop --uplink-mbit/--network")
    workload = dataclasses.replace(load_workload(options.workload or None), images=options.images, seed=options.seed)
    out = fresh_dir(Path(options.out))

    cache = ImageCache()
    wanted = [image for user in range(options.users) for image in draw_images(workload, user=user)]
    made = cache.prepare(wanted)
    _say(options, f"[bulkbench] workload: {len(wanted)} images, "
                  f"{sum(i.size_bytes for i in wanted) / 1e6:.1f} MB ({made} made, the rest cached)")

    with ExitStack() as stack:
        prefix: list[str] = []
        if network.shaped:
            namespace = stack.enter_context(ShapedNamespace(network))
            prefix = namespace.prefix
            _say(options, f"[bulkbench] network: namespace {namespace.name}, lo MTU {network.mtu}, "
                          f"tbf {network.uplink_mbit:g} Mbit/s, queue {network.queue_ms:g} ms")
        else:
            _say(options, "[bulkbench] network: unshaped loopback")
        url = options.target
        server_cpu: Any = None
        server_memory: Any = None
        swept: Any = None  # how many uploads the server's file sweep deleted, read after the run
        if options.start_app:
            app = stack.enter_context(ImageCanvasApp(options.start_app, prefix=prefix, log_path=out / "app.log"))
            url, server_cpu = app.url, app.cpu_seconds
            swept = functools.partial(uploads_swept, out / "app.log")
            _say(options, f"[bulkbench] server: the real ImageCanvas ({options.start_app}), fresh, at {url}")
        elif not url:
            server = stack.enter_context(ServerProcess(
                options.profile, out / "server-data", emulation=options.emulation, prefix=prefix,
                auth_secret_file=options.auth_secret_file or None))
            url, server_cpu, server_memory = server.url, server.cpu_seconds, server.memory_mib
            swept = functools.partial(server.metric, "bulkbench_uploads_swept_total")
            _say(options, f"[bulkbench] server: profile {profile.name!r} at {url} (pid {server.pid})")
        arriving_s = ends_s(plan)
        run_time_s = max(options.max_seconds, options.drop_cap_s + JUDGE_GRACE_S) + arriving_s
        command = [*prefix, sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
                   "-u", str(options.users), "-r", f"{options.arrival_rate or options.users:g}", "--host", url,
                   "--run-time", f"{int(run_time_s)}s", "--stop-timeout", "30",
                   "--csv", str(out / "locust"), "--html", str(out / "locust.html"), "--only-summary",
                   "--loglevel", "WARNING",
                   "--bb-strategy", options.strategy, "--bb-images", str(options.images),
                   "--bb-profile", options.profile, "--bb-seed", str(options.seed),
                   "--bb-canvas", options.canvas, "--bb-out", str(out),
                   "--bb-run-id", f"{options.strategy}-{int(time.time() * 1000)}",
                   "--bb-emulated-rtt-ms", str(network.emulated_rtt_ms)]
        if options.workload:
            command += ["--bb-workload", options.workload]
        if options.strategy_layer:
            command += ["--bb-strategy-layer", options.strategy_layer]
        if options.auth_secret_file:
            command += ["--bb-auth-secret-file", options.auth_secret_file]
        if options.token:
            command += ["--bb-token", options.token]
        command += ["--bb-target-profile", options.target_profile]
        if options.drop_cap_s:
            command += ["--bb-drop-cap-s", str(options.drop_cap_s)]
        if options.transport:
            command += ["--bb-transport", options.transport]
        if options.thresholds:
            command += ["--bb-thresholds", str(Path(options.thresholds).resolve())]
        if options.processes:
            command += ["--processes", str(options.processes)]
        arriving = (f", arriving in stages {options.stages}" if options.stages else
                    f", arriving {options.arrival_rate:g}/s" if options.arrival_rate else ", all at once")
        _say(options, f"[bulkbench] locust: {options.users} user(s){arriving}, strategy {options.strategy!r}, "
                      f"{options.images} images each")
        started = time.perf_counter()
        cpu_before = server_cpu() if server_cpu else 0.0
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(LOCUSTFILE.parent.parent),
                                                                         os.environ.get("PYTHONPATH", "")]))}
        env.pop(STAGES_ENV, None)
        if options.stages:
            env[STAGES_ENV] = options.stages
        with (open(out / "locust.log", "w") as log,  # quiet: Locust's own output goes to a file
              subprocess.Popen(command, env=env, preexec_fn=die_with_parent, stdout=log if options.quiet else None,
                               stderr=log if options.quiet else None) as locust):
            try:
                locust_exit = wait_for(locust, run_time_s + 120)
            except BaseException:  # SIGTERM, Ctrl-C or the time cap: no Locust left loading the server
                locust.kill()
                raise
        server_cpu_s = round(server_cpu() - cpu_before, 2) if server_cpu else None
        server_rss_peak_mib = round(server_memory("VmHWM"), 1) if server_memory else None
        swept_n = int(swept()) if swept else None
        _say(options, f"[bulkbench] locust finished in {time.perf_counter() - started:.1f} s "
                      f"(exit {locust_exit})")

    if locust_exit not in LOCUST_OK_EXITS:
        raise RuntimeError(f"the load generator failed (Locust exit {locust_exit}): no figures; "
                           f"see {out}/locust.log")
    errors = [p.read_text().strip() for p in sorted((out / "drops").glob("*.error"))]
    if errors:
        raise TruthError(f"{len(errors)} of {options.users} drops could not be judged: {errors[0]}"
                         f"{' (and more)' if len(errors) > 1 else ''}; see {out}/drops")
    results = [DropResult.from_json(orjson.loads(p.read_bytes())) for p in sorted((out / "drops").glob("*.json"))]
    if len(results) != options.users:
        raise RuntimeError(f"{len(results)} of {options.users} drops reported; see {out}/locust.log")
    summary = summarize("real", options.strategy, label, options.seed, results, extra={
        "network": network.to_json(), "canvas": options.canvas, "target": options.target or "spawned",
        **({"strategy_layer": options.strategy_layer} if options.strategy_layer else {}),
        "target_profile": target.name, "model_profile": profile.name, "transport": target.socket.transport,
        "server_cpu_s": server_cpu_s, "server_rss_peak_mib": server_rss_peak_mib,
        "locust_exit_code": locust_exit,
        **({"uploads_swept": swept_n} if swept_n else {}),
        **drop_figures(results),
        "processes": options.processes, "emulation": options.emulation,
        "workload": {"median_bytes": workload.median_bytes, "sigma": workload.sigma},
        "aborted": next((r.extra["aborted"] for r in results if r.extra.get("aborted")), None),
    })
    add_bound(summary, [draw_images(workload, user=user) for user in range(options.users)], profile, network,
              arrivals_s=arrival_times(plan) if plan else None)
    if server_cpu_s and target.name == REFERENCE and not options.target:  # the server we started and measured
        add_measured_cpu(summary, server_cpu_s, load_model_params().server_cpus)
    write_results(out, [summary], results)
    return summary


def fresh_dir(out: Path) -> Path:
    """A results directory, emptied: a run's files never mix with an earlier run's."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return out


def write_results(out: Path, summaries: list[RunSummary], results: list[DropResult]) -> None:
    (out / "summary.json").write_bytes(orjson.dumps([s.to_json() for s in summaries], option=orjson.OPT_INDENT_2))
    with open(out / "images.jsonl", "wb") as handle:
        for result in results:
            for record in result.records:
                handle.write(orjson.dumps({"user": result.user, **record.to_json()}) + b"\n")


def main(args: Any) -> int:
    options = RunOptions(
        strategy=args.strategy, strategy_layer=args.strategy_layer, images=args.images, users=args.users,
        profile=args.profile, seed=args.seed, out=Path(args.out), target=args.target or "", network=args.network,
        uplink_mbit=args.uplink_mbit,
        emulated_rtt_ms=args.emulated_rtt_ms, canvas=args.canvas, processes=args.processes,
        workload=args.workload or "", emulation=not args.no_emulation, max_seconds=args.max_seconds,
        auth_secret_file=args.auth_secret_file or "", token=args.token or "",
        target_profile=args.target_profile or REFERENCE, transport=args.transport or "", start_app=args.start_app or "",
        drop_cap_s=args.drop_cap_s, thresholds=args.thresholds or "", arrival_rate=args.arrival_rate,
        stages=args.stages,
    )
    summary = run(options)
    print()
    print(table([summary]))
    print(f"\nresults in {options.out}/")
    if (aborted := summary.extra.get("aborted")) is not None:
        print(f"aborted at {aborted['at_s']} s: {aborted['threshold']} crossed (measured {aborted['measured']:g})")
    if not options.thresholds:
        return 0
    from reports.gate import gate, markdown  # the run's thresholds, as k6 checks them when a test ends
    code, checks = gate(options.out, Path(options.thresholds))
    print(markdown(checks))
    return EXIT_THRESHOLDS_FAILED if aborted is not None else code
