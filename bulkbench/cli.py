"""The ``bulkbench`` command line: one parser, each command handed to the package that does it.

The CLI is the composition root: the one module of ``bulkbench`` that imports the engines
(``reference_server``, ``loadtests``, ``realclient``, ``sim``, ``reports``). It imports each inside the
command that needs it, so ``bulkbench --help`` starts fast and a command loads only its engine; the rest
of the core imports none of them (``make lint`` checks it: ``.importlinter``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bulkbench import __version__
from bulkbench.auth import DEFAULT_TTL_S, TokenAuthority, read_secret
from bulkbench.profile import ProfileError, load_profile
from bulkbench.target import APP_TARGETS, load_target
from bulkbench.truth import TruthError

EXIT_USAGE = 2
EXIT_NO_TRUTH = 3
"""A run whose images could not be judged (a truth read failed): it has no figures."""


def cmd_serve(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    if args.no_emulation:
        profile = profile.without_emulation()
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    auth = None
    if args.auth_secret_file:
        try:
            auth = TokenAuthority(read_secret(args.auth_secret_file))
        except ValueError as exc:
            raise ProfileError(f"{args.auth_secret_file}: {exc}") from exc
    from reference_server.app import serve
    serve(profile, data_dir, host=args.host, port=args.port, log_level=args.log_level, auth=auth)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    try:
        authority = TokenAuthority(read_secret(args.secret_file))
    except ValueError as exc:
        raise ProfileError(f"{args.secret_file}: {exc}") from exc
    print(authority.mint(args.canvas, time.time() + args.ttl))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from loadtests.run import main
    return main(args)


def cmd_browser_run(args: argparse.Namespace) -> int:
    from realclient.run import main
    return main(args)


def cmd_sim(args: argparse.Namespace) -> int:
    from sim.run import main
    return main(args)


def cmd_calibrate(args: argparse.Namespace) -> int:
    if args.heartbeat:
        from sim.heartbeat_fit import main as heartbeat
        return heartbeat(args)
    if args.page:
        from bulkbench.page_calibration import main as page
        if args.feedback_from:
            from sim.page_feedback import fit_feedback
            return page(args, fit_feedback)
        return page(args)
    from sim.calibrate import main
    return main(args)


def cmd_validate(args: argparse.Namespace) -> int:
    from sim.validate import main
    return main(args)


def cmd_report(args: argparse.Namespace) -> int:
    from reports.render import main
    return main(args)


def cmd_gate(args: argparse.Namespace) -> int:
    from reports.gate import main
    return main(args)


def cmd_compare(args: argparse.Namespace) -> int:
    """The main job: each strategy for real and in the model, side by side, one report. The real side
    may be a target (``--target URL`` or ``--app``); the model then runs the profile that stands for it."""
    from bulkbench.network import load_network as network_of
    from bulkbench.results import table
    from loadtests.network import namespaces_allowed
    from loadtests.run import RunOptions as run_options
    from loadtests.run import check_target, run
    from reports.render import build
    from sim.run import SimOptions as sim_options
    from sim.run import run_sim
    network = network_of(args.network, args.uplink_mbit)
    if network.shaped and args.target:
        print(f"bulkbench: --target {args.target} is outside any namespace bulkbench makes; comparing on unshaped "
              "loopback", file=sys.stderr)
        network = network_of("loopback")
    if network.shaped and not namespaces_allowed():
        print("bulkbench: no permission for network namespaces here; comparing on unshaped loopback", file=sys.stderr)
        network = network_of("loopback")
    target_profile = args.target_profile
    if args.start_app and target_profile == "reference":
        target_profile = APP_TARGETS[args.start_app]
    target = load_target(target_profile)
    model_profile = args.model_profile or (args.profile if target.name == "reference" else target.model_profile)
    out = Path(args.out)
    summaries, dirs = [], []
    strategies = args.strategies.split(",")
    for strategy in strategies:  # refuse what the target cannot serve before anything runs
        check_target(run_options(strategy=strategy, strategy_layer=args.strategy_layer, target=args.target,
                                 start_app=args.start_app, target_profile=target_profile, canvas=args.canvas,
                                 transport=args.transport))
    for images, strategy in ((n, s) for n in args.images for s in strategies):
        common = dict(strategy=strategy, strategy_layer=args.strategy_layer, images=images, users=args.users,
                      seed=args.seed, workload=args.workload, canvas=args.canvas)
        size = f"-n{images}" if len(args.images) > 1 else ""  # a folder per size (n: not a repeat's number)
        for number in range(1, args.real_runs + 1):  # the same drop again: what the real system varies by
            name = f"real-{strategy}{size}" + ("" if number == 1 else f"-{number}")
            print(f">>> {strategy}, {images} images: real run {number}/{args.real_runs} ({network.name}) ...",
                  flush=True)
            summaries.append(run(run_options(**common, profile=args.profile, out=out / name,
                                             uplink_mbit=network.uplink_mbit, quiet=True,
                                             max_seconds=args.max_seconds, target=args.target, start_app=args.start_app,
                                             target_profile=target_profile, transport=args.transport)))
            dirs.append(out / name)
        print(f">>> {strategy}, {images} images: model of {model_profile} ({args.replications} replications) ...",
              flush=True)
        summaries.append(run_sim(sim_options(**common, profile=model_profile, out=out / f"sim-{strategy}{size}",
                                             uplink_mbit=network.uplink_mbit, queue_ms=network.queue_ms,
                                             replications=args.replications)))
        dirs.append(out / f"sim-{strategy}{size}")
    against = target.name if target.name != "reference" else f"{args.profile} profile"
    sizes = ", ".join(str(n) for n in args.images)
    report = build(dirs, out / "report", f"bulkbench compare: {sizes} images, {against}, {network.name}")
    print()
    print(table(summaries))
    print(f"\nreport: {report['html']}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    verify = None
    if args.verify:
        from loadtests.run import RunOptions as run_options
        from loadtests.run import run

        def verify(spec: dict) -> dict:
            out = Path(args.out) / f"verify-{spec['strategy']}-{spec['profile']}-{spec['images']}x{spec['users']}"
            return run(run_options(out=out, quiet=True, max_seconds=1500, **spec)).to_json()

    if args.tune:
        return _tune(args)
    from reports.plan_page import write
    from sim.plan import plan_from_args
    result = plan_from_args(args, verify)
    pages = write(Path(args.out), result)
    print(pages["markdown"].read_text().split("\n![")[0])
    print(f"plan: {pages['html']}, {pages['json']}")
    return 0 if result["plans"] else 2


def _tune(args: argparse.Namespace) -> int:
    from sim.plan import progress_bar, sweep
    from sim.tune import parse_grid, table, tune
    result = tune(args.tune, parse_grid(args.grid, args.tune), args.profiles.split(","), args.images_at, args.seed,
                  sweep, args.processes, progress_bar)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tune.json").write_text(json.dumps(result, indent=1, default=list) + "\n")
    print(table(result))
    print(f"tune: {out / 'tune.json'}")
    return 0


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _substitute(text: str) -> str:
    name, equals, path = text.partition("=")
    if not (name and equals and path):
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=PROFILE.toml")
    return text


def _image_counts(text: str) -> list[int]:
    """``200`` or ``200,500,1000``: the drop sizes ``compare`` runs, each of them (the scaling figure)."""
    try:
        counts = [_positive_int(part) for part in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"images: {exc}") from exc
    if len(set(counts)) != len(counts):
        raise argparse.ArgumentTypeError(f"images: {text} names a size twice")
    return counts


def _add_scenario_options(command: argparse.ArgumentParser, several_sizes: bool = False) -> None:
    """The options a scenario is made of, shared by ``run`` (and the model's ``sim``)."""
    command.add_argument("--strategy", default="individual",
                         help="individual | batched | chunked | probe (one thing at a time, for calibrate); "
                              "NAME:SET: a parameter set of scenarios/strategies.toml (individual:fc1316b)")
    command.add_argument("--strategy-layer", default="", metavar="FILE",
                         help="a strategies layer read over scenarios/strategies.toml: its keys replace the same "
                              "table's and set's (bulkbench calibrate --page writes one for this machine's page)")
    if several_sizes:
        command.add_argument("--images", type=_image_counts, default=[200],
                             help="images per drop; several, comma-separated, make a scaling figure")
    else:
        command.add_argument("--images", type=_positive_int, default=200, help="images per drop")
    command.add_argument("--users", type=_positive_int, default=1, help="users dropping at once")
    command.add_argument("--profile", default="legacy", help="server profile name in scenarios/ or a TOML path")
    command.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    command.add_argument("--workload", default="", help="workload TOML (default scenarios/workload.toml)")
    command.add_argument("--network", default="loopback", help="network in scenarios/networks.toml")
    command.add_argument("--uplink-mbit", type=float, default=None, help="shape the uplink to this rate (0: none)")
    command.add_argument("--emulated-rtt-ms", type=float, default=None, help="client-emulated base round trip")
    command.add_argument("--canvas", choices=["own", "shared"], default="own",
                         help="each user drops into its own canvas, or all into one")
    command.add_argument("--no-emulation", action="store_true", help="no emulated service times in the server")


def _add_arrival_options(command: argparse.ArgumentParser) -> None:
    """When users arrive (``bulkbench.arrivals``), the same in ``run`` and ``sim``."""
    command.add_argument("--arrival-rate", type=_positive_float, default=0.0, metavar="USERS_PER_S",
                         help="users arrive at this rate (Locust's spawn rate), each starting its drop as it "
                              "arrives; default: all at once")
    command.add_argument("--stages", default="", metavar="DURATION:USERS,...",
                         help="users arriving in stages, k6-style ramps of users arrived so far (10s:5,30s:20: "
                              "5 over the first 10 s, 15 more over the next 30 s); a Locust LoadTestShape")


def _add_target_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--target-profile", default="reference", metavar="NAME|FILE",
                         help="how to drive the server: a target description in scenarios/targets/ "
                              "(reference, imagecanvas) or a TOML path")
    command.add_argument("--transport", choices=["websocket", "socketio"], default="",
                         help="our own server's socket when run starts it (default websocket)")
    command.add_argument("--start-app", choices=["today", "as-reported"], default="",
                         help="start the real ImageCanvas (../shared/imagecanvas) fresh for the run and drive it: "
                              "today's code, or as reported (without its rate limiter)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bulkbench",
        description="Simulate and load-test bulk image uploads to a collaborative canvas server.",
    )
    parser.add_argument("--version", action="version", version=f"bulkbench {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the reference server (HTTP and WebSocket on one port)")
    serve.add_argument("--profile", default="optimized", help="profile name in scenarios/ or a TOML path")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed at start)")
    serve.add_argument("--data-dir", default="data", help="SQLite database and stored files")
    serve.add_argument("--no-emulation", action="store_true", help="turn every emulated service time off")
    serve.add_argument("--log-level", default="warning")
    serve.add_argument("--auth-secret-file", metavar="FILE",
                       help="turn token auth on: tokens are signed with this file's secret (>= 16 bytes); "
                            "mint them with `bulkbench token`")
    serve.set_defaults(func=cmd_serve)

    token = commands.add_parser("token", help="mint a token granting named canvases (for a server with auth on)")
    token.add_argument("--secret-file", required=True, metavar="FILE", help="the server's --auth-secret-file")
    token.add_argument("--canvas", action="append", required=True,
                       help="a canvas id the token grants (repeat; '*' grants every canvas)")
    token.add_argument("--ttl", type=float, default=DEFAULT_TTL_S, help="seconds until the token expires")
    token.set_defaults(func=cmd_token)

    run = commands.add_parser("run", help="a real run: server, shaped network, Locust; writes a results directory")
    _add_scenario_options(run)
    run.add_argument("--out", default="results/run", help="results directory (replaced)")
    run.add_argument("--target", default="", help="use this server (URL) instead of starting one")
    run.add_argument("--processes", type=int, default=0, help="Locust worker processes (distributed mode)")
    run.add_argument("--max-seconds", type=float, default=1800.0, help="hard bound on the run's duration")
    run.add_argument("--drop-cap-s", type=float, default=0.0,
                     help="stop a drop still going after this long: its open images are 'unfinished' (as "
                          "browser-run's --max-seconds)")
    _add_arrival_options(run)
    run.add_argument("--thresholds", default="", metavar="FILE",
                     help="gate the run by these thresholds when it ends (exit 99 if one fails), and stop it early "
                          "when one marked abort_on_fail is crossed (k6's abortOnFail)")
    run.add_argument("--auth-secret-file", metavar="FILE",
                     help="start the server with token auth; each user mints a token for its own canvas")
    run.add_argument("--token", help="a token every user sends (a --target server with auth on)")
    _add_target_options(run)
    run.set_defaults(func=cmd_run)

    browser = commands.add_parser(
        "browser-run", help="the real client: drop N files into a web app in headless Chromium (engine browser)")
    browser.add_argument("--app", default="", help="the page's URL (default: the target's [app] url)")
    browser.add_argument("--drop-on", default="", metavar="CSS", help="element to drop on (default: the target's)")
    browser.add_argument("--target", default="", help="the app's server, for its truth (default: port 3000 of the "
                                                      "page's host)")
    browser.add_argument("--target-profile", default="imagecanvas", metavar="NAME|FILE",
                         help="target description: how to open the app, when it is ready and idle, its truth")
    browser.add_argument("--start-app", choices=["today", "as-reported"], default="",
                         help="start the real ImageCanvas and its page (../shared/imagecanvas), fresh, for the run")
    browser.add_argument("--images", type=_positive_int, default=50, help="files dropped at once")
    browser.add_argument("--users", type=_positive_int, default=1, help="browsers, each dropping its own files")
    browser.add_argument("--seed", type=int, default=1)
    browser.add_argument("--workload", default="", help="workload TOML (default scenarios/workload.toml)")
    browser.add_argument("--network", default="loopback", help="network in scenarios/networks.toml")
    browser.add_argument("--uplink-mbit", type=float, default=None, help="shape the uplink (needs --start-app)")
    browser.add_argument("--max-seconds", type=float, default=900.0, help="hard cap on the drop")
    browser.add_argument("--quiet-s", type=float, default=3.0, help="the page idle this long: the drop settled")
    browser.add_argument("--out", default="results/browser")
    browser.set_defaults(func=cmd_browser_run)

    sim = commands.add_parser("sim", help="the SimPy model of the same scenario; writes the same schema")
    _add_scenario_options(sim)
    sim.add_argument("--replications", type=int, default=1, help="independent replications (95 %% CI)")
    sim.add_argument("--out", default="results/sim", help="results directory")
    sim.add_argument("--model", default="", help="model parameters TOML (default scenarios/model.toml)")
    sim.add_argument("--server-uptime-s", type=_non_negative_float, default=0.0,
                     help="how long the server has run when the drop starts: where its file sweeps fall (0: fresh, "
                          "as real runs start it)")
    _add_arrival_options(sim)
    sim.set_defaults(func=cmd_sim)

    calibrate = commands.add_parser("calibrate", help="fit the model's stage costs to a real run's server (--page: "
                                                    "a client's page costs to a browser's machine)")
    calibrate.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                           help="results directories of `bulkbench run` (several runs of one profile are pooled; "
                                "a target's: one probe run)")
    calibrate.add_argument("--out", required=True, help="the profile TOML to write")
    calibrate.add_argument("--black-box", action="store_true",
                           help="fit a probe run from the client's side even where server samples exist")
    calibrate.add_argument("--page", action="store_true",
                           help="RUN_DIRs are browser runs (browser-run's results, or recordings with a matrix.jsonl): "
                                "scale a client stand-in's page costs to the machine they ran on; --out is then a "
                                "strategies layer (--strategy-layer)")
    calibrate.add_argument("--strategy", default="individual:fc1316b",
                           help="with --page: the parameter set to scale (default individual:fc1316b)")
    calibrate.add_argument("--fitted-on", nargs="+", default=["examples/validation/browser"], metavar="DIR",
                           help="with --page: the browser runs the set was fitted on (default %(default)s)")
    calibrate.add_argument("--feedback-from", nargs="+", default=[], metavar="DIR",
                           help="with --page: browser runs of one bigger drop (200 images) on the same machine: the "
                                "page's frame feedback is fitted to their drop time with the model, not scaled")
    calibrate.add_argument("--thread-from", nargs="+", default=[], metavar="DIR",
                           help="with --page, instead of --feedback-from: browser runs on the same machine whose busy "
                                "series give the page's thread (its mean long task against the drop's clock), "
                                "one task at a time")
    calibrate.add_argument("--heartbeat", action="store_true",
                           help="RUN_DIRs are recordings with a heartbeats.jsonl (their pages' pings): fit how late "
                                "the stand-in page's heartbeat tasks run around its canvas load; --out is a layer")
    calibrate.set_defaults(func=cmd_calibrate)

    validate = commands.add_parser(
        "validate", help="recorded runs held to each other: the model to real runs (default), our server to "
                         "the real app (--servers), our client to the real one (--engines), a scenario's real "
                         "spread to the model's (--spread); exit 1 on a miss")
    validate.add_argument("matrix_dir", help="a folder with matrix.jsonl (python -m benchmarks.validation.matrix)")
    validate.add_argument("--profile", action="append", default=[], metavar="NAME=PROFILE.toml", type=_substitute,
                          help="simulate profile NAME with this file instead")
    validate.add_argument("--replications", type=_positive_int, default=5)
    validate.add_argument("--processes", type=_non_negative_int, default=0,
                          help="worker processes for the model's runs (default: every core; 1: in this process)")
    validate.add_argument("--out", default="", help="write the rows as JSON here")
    validate.add_argument("--model", default="", help="model parameters TOML (default scenarios/model.toml)")
    validate.add_argument("--strategy-layer", default="", metavar="FILE",
                          help="the model's client strategies under this layer instead of the folder's own "
                               "strategies.toml (bulkbench calibrate --page)")
    how = validate.add_mutually_exclusive_group()
    how.add_argument("--servers", action="store_true",
                     help="hold our server's rows to the real app's rows of the same matrix (no model)")
    how.add_argument("--engines", action="store_true",
                     help="hold the protocol-level client's rows to the browser's rows of the same matrix "
                          "(a scenario run several times, rows differing only in repeat: to the browser runs' spread)")
    how.add_argument("--spread", action="store_true",
                     help="scenarios run several times (rows differing only in seed): every real run inside the "
                          "model's 95 %% interval for one run, over --replications")
    how.add_argument("--course", action="store_true",
                     help="the browser rows' course (course.jsonl): nodes sent, uploads done, completions sent and "
                          "answered from 60 s to the cap, real pages beside --replications model runs (shown, not "
                          "judged)")
    validate.set_defaults(func=cmd_validate)

    report = commands.add_parser("report", help="results directories -> report.html and report.md")
    report.add_argument("run_dirs", nargs="+", help="results directories of run and/or sim")
    report.add_argument("--out", default="results/report", help="folder for report.html, report.md, figures")
    report.add_argument("--title", default="bulkbench report")
    report.set_defaults(func=cmd_report)

    gate = commands.add_parser(
        "gate", help="k6-style thresholds on a results directory; exit 0 pass, 99 fail, 2 unusable input")
    gate.add_argument("run_dir")
    gate.add_argument("--thresholds", default="scenarios/thresholds.toml")
    gate.add_argument("--baseline", default="", help="a previous results directory to compare with")
    gate.add_argument("--max-regression", type=float, default=None, help="percent a metric may grow over baseline")
    gate.set_defaults(func=cmd_gate)

    compare = commands.add_parser("compare", help="the main job: strategies real and modelled, one report")
    _add_scenario_options(compare, several_sizes=True)
    compare.set_defaults(network="uplink-10")  # where a 200-image drop starts to lose images (issue 3)
    compare.add_argument("--strategies", default="individual,batched,pipelined", help="comma-separated")
    compare.add_argument("--replications", type=int, default=5)
    compare.add_argument("--real-runs", type=_positive_int, default=1,
                         help="real runs of each strategy, one after another (near the orphan cliff one run "
                              "can land on either side)")
    compare.add_argument("--out", default="results/compare")
    compare.add_argument("--target", default="", help="compare against this running server (URL) instead")
    compare.add_argument("--model-profile", default="", help="the model's profile (default: the target's own, "
                                                             "e.g. a calibrated one)")
    _add_target_options(compare)
    compare.add_argument("--max-seconds", type=float, default=900.0)
    compare.set_defaults(func=cmd_compare)

    plan = commands.add_parser("plan", help="capacity sweep with the model, verified by a few real runs")
    plan.add_argument("--strategies", default="individual,batched")
    plan.add_argument("--profiles", default="legacy,optimized")
    plan.add_argument("--uplink-mbit", type=float, default=20.0)
    plan.add_argument("--images-at", type=int, default=200, help="drop size at which 'most users' is answered")
    plan.add_argument("--target-failure-rate", type=float, default=0.01)
    plan.add_argument("--target-drop-seconds", type=float, default=300.0)
    plan.add_argument("--workload", default="")
    plan.add_argument("--seed", type=int, default=1)
    plan.add_argument("--processes", type=_non_negative_int, default=0, help="worker processes (default: every core)")
    plan.add_argument("--replications", type=_positive_int, default=5,
                      help="simulated runs per cell, each its own seed: the cell's mean and 95 %% interval")
    plan.add_argument("--full", action="store_true",
                      help="simulate every cell and replication to its end, every GET on its own (default: stop "
                           "a cell at 1.2x the drop-time target, which it has missed by then, and a node's GETs "
                           "as one burst)")
    plan.add_argument("--verify", type=int, default=0, help="re-run this many frontier points for real")
    plan.add_argument("--tune", default="", metavar="STRATEGY",
                      help="instead of the capacity sweep: rank STRATEGY's knobs (--grid) by drop time over the "
                           "bound and settle time, over --profiles x 10/20/100 Mbit/s at --images-at images")
    plan.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                      help="a strategy parameter and the values to try (repeatable; with --tune)")
    plan.add_argument("--out", default="results/plan")
    plan.set_defaults(func=cmd_plan)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ProfileError, FileNotFoundError) as exc:
        print(f"bulkbench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TruthError as exc:
        print(f"bulkbench: no figures: the server's state could not be read: {exc}", file=sys.stderr)
        return EXIT_NO_TRUTH
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
