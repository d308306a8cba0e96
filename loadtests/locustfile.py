"""Locust users that drop images on a canvas server, one drop per task, with a chosen strategy.

Interactive (web UI, the options appear in its form)::

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000

Headless, one drop per user, results written for ``bulkbench run`` (which is the usual way)::

    locust -f loadtests/locustfile.py --headless -u 5 -r 5 --host http://127.0.0.1:8000 \
        --bb-strategy batched --bb-images 200 --bb-out results/run1

Distributed: add ``--processes 2`` (Locust's own master and workers). Every operation ack, upload
and thumbnail GET is a Locust request (``events.request.fire``); the raw samples and the server's
judgement of every image go to ``--bb-out``/drops/ as one JSON file per drop.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import time
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import orjson
from locust import LoadTestShape, User, constant, events, task
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from bulkbench.arrivals import STAGES_ENV, arrived, parse_stages
from bulkbench.auth import DEFAULT_TTL_S, TokenAuthority, read_secret
from bulkbench.profile import load_profile
from bulkbench.strategies import STRATEGIES, strategy_params
from bulkbench.target import REFERENCE, TargetError, load_target, with_socket
from bulkbench.thresholds import load_gates
from bulkbench.truth import TruthError
from bulkbench.workload import draw_images, load_workload
from loadtests.drop import run_drop
from loadtests.dropsocket import SocketLost
from loadtests.imagecache import ImageCache
from loadtests.sampler import sample_metrics, save_stage_samples
from loadtests.watch import AbortWatch, LiveDrops, watched

DROP_DONE = "bulkbench_drop_done"
SPAWN_AT_ONCE_PER_S = 1000.0
"""A shape's spawn rate: the users of one tick start together."""
_local_users = itertools.count()


@events.init_command_line_parser.add_listener
def add_options(parser: Any) -> None:
    parser.add_argument("--bb-strategy", default="individual",
                        help=f"client strategy of every user: {', '.join(sorted(STRATEGIES))} (NAME:SET: a named "
                             "parameter set of scenarios/strategies.toml)")
    parser.add_argument("--bb-strategy-layer", default="",
                        help="a strategies layer (TOML) read over scenarios/strategies.toml")
    parser.add_argument("--bb-images", type=int, default=200, help="images per drop")
    parser.add_argument("--bb-target-profile", default=REFERENCE,
                        help="target description (scenarios/targets/NAME.toml or a path): how to drive the server")
    parser.add_argument("--bb-transport", choices=["", "websocket", "socketio"], default="",
                        help="the reference server's socket: raw WebSocket (default) or Socket.IO")
    parser.add_argument("--bb-profile", default="legacy",
                       help="server profile the client is built for (its operation cap); a label in results")
    parser.add_argument("--bb-workload", default="", help="workload TOML (default scenarios/workload.toml)")
    parser.add_argument("--bb-seed", type=int, default=1, help="seed of every random choice")
    parser.add_argument("--bb-canvas", choices=["own", "shared"], default="own",
                       help="each user drops into its own canvas, or all into one")
    parser.add_argument("--bb-run-id", default="", help="prefix of canvas ids (default: the start time)")
    parser.add_argument("--bb-emulated-rtt-ms", type=float, default=0.0,
                       help="emulated base round trip added by the client (labelled as emulated)")
    parser.add_argument("--bb-auth-secret-file", default="", include_in_web_ui=False,
                        help="the server's auth secret: each user mints a token for its own canvas")
    parser.add_argument("--bb-token", default="", include_in_web_ui=False, help="a token every user sends")
    parser.add_argument("--bb-drop-cap-s", type=float, default=0.0, include_in_web_ui=False,
                        help="stop a drop still going after this long; its open images are 'unfinished' (0: none)")
    parser.add_argument("--bb-thresholds", default="", include_in_web_ui=False,
                        help="thresholds TOML: those marked abort_on_fail are watched, and stop the run when crossed")
    parser.add_argument("--bb-out", default="", include_in_web_ui=False,
                       help="write each drop's result here and stop each user after one drop")


def _options(environment: Any) -> Any:
    return environment.parsed_options


@events.init.add_listener
def on_init(environment: Any, **_: Any) -> None:
    options = _options(environment)
    if options is None:
        return
    environment.bulkbench = {"done": 0, "run_id": options.bb_run_id or f"r{int(time.time())}",
                             "stop": gevent.event.Event(), "live": LiveDrops(), "watch": None,
                             "drops_started": 0}
    if options.bb_thresholds and environment.runner is not None and not isinstance(environment.runner, MasterRunner):
        _watch(environment, options)  # in every process that runs users
    if environment.runner is None or isinstance(environment.runner, WorkerRunner):
        return
    environment.runner.register_message(DROP_DONE, _on_drop_done)
    if options.bb_out and environment.host and load_target(options.bb_target_profile).name == REFERENCE:
        # only our server has /metrics: polled elsewhere it is two requests a second the app did not ask for
        gevent.spawn(sample_metrics, environment.host, Path(options.bb_out) / "server_metrics.csv",
                     lambda: environment.runner.state == "stopped")
        environment.events.test_stop.add_listener(
            lambda **_: save_stage_samples(environment.host, Path(options.bb_out) / "stage_samples.json"))


def _watch(environment: Any, options: Any) -> None:
    """Watch the thresholds marked ``abort_on_fail`` that select this run, from the test's start."""
    state = environment.bulkbench
    profile = load_profile(options.bb_profile).name
    target = load_target(options.bb_target_profile).name
    identity = {"engine": "real", "strategy": options.bb_strategy, "images": options.bb_images,
                "users": options.num_users, "profile": profile if target == REFERENCE else target}
    thresholds = watched(load_gates(Path(options.bb_thresholds)), identity)
    if not thresholds:
        return
    watch = state["watch"] = AbortWatch(thresholds, identity, state["live"], state["stop"])
    environment.events.test_start.add_listener(
        lambda **_: gevent.spawn(watch.run, lambda: environment.runner.state == "stopped"))


def _on_drop_done(environment: Any, msg: Any, **_: Any) -> None:
    """Count finished drops; a headless run ends when every user has done its one drop."""
    state = environment.bulkbench
    state["done"] += 1
    outcome = f"failed: {msg.data['error']}" if msg.data.get("error") else \
        f"{msg.data['ok']}/{msg.data['images']} images ok"
    print(f"[bulkbench] drop {state['done']}/{environment.parsed_options.num_users} done: "
          f"user {msg.data['user']}, {outcome}", flush=True)
    if environment.parsed_options.bb_out and state["done"] >= environment.parsed_options.num_users:
        gevent.spawn_later(0.1, environment.runner.quit)


class DropUser(User):
    """A person dropping a folder of images onto the canvas, with the chosen client strategy."""

    wait_time = constant(1)

    def on_start(self) -> None:
        options = _options(self.environment)
        runner = self.environment.runner
        worker = max(0, getattr(runner, "worker_index", 0))
        self.user_index = worker * 10_000 + next(_local_users)
        self.iteration = 0
        self.profile = load_profile(options.bb_profile)
        self.target = load_target(options.bb_target_profile)
        if options.bb_transport:
            self.target = with_socket(self.target, options.bb_transport)
        self.params = strategy_params(options.bb_strategy, layer=options.bb_strategy_layer)
        self.workload = dataclasses.replace(load_workload(options.bb_workload or None),
                                            images=options.bb_images, seed=options.bb_seed)
        self.cache = ImageCache()

    def _arrived_by_now(self, users: int) -> int:
        shape = self.environment.shape_class
        if isinstance(shape, LoadTestShape) and hasattr(shape, "stages"):
            return min(users, arrived(shape.stages, shape.get_run_time()))
        return users

    def _report(self, request_type: str, name: str, response_time: float, response_length: int,
                exception: Exception | None) -> None:
        self.environment.events.request.fire(request_type=request_type, name=name, response_time=response_time,
                                             response_length=response_length, exception=exception, context={})

    @task
    def drop(self) -> None:
        options = _options(self.environment)
        state = self.environment.bulkbench
        if options.bb_out and not self.iteration:
            if state["drops_started"] >= self._arrived_by_now(options.num_users):
                # Locust keeps its user count while users arrive (at a rate, or a shape's count): a user
                # that ended its drop is replaced. One drop per user: the replacement has nothing to drop,
                # and must not take the place of a user still to arrive.
                raise StopUser()
            state["drops_started"] += 1
        label = self.user_index if not self.iteration else f"{self.user_index}.{self.iteration}"
        images = draw_images(self.workload, user=label)
        self.cache.prepare(images)
        run_id = self.environment.bulkbench["run_id"]
        canvas_id = f"{run_id}-shared" if options.bb_canvas == "shared" else f"{run_id}-u{label}"
        token = options.bb_token or None
        if options.bb_auth_secret_file:
            authority = TokenAuthority(read_secret(options.bb_auth_secret_file))
            token = authority.mint([canvas_id], time.time() + DEFAULT_TTL_S)
        folder = Path(options.bb_out) / "drops"
        try:
            result = run_drop(self.target, self.host, options.bb_strategy, self.params, self.profile.limits,
                              images, canvas_id, self.user_index, self.cache, self._report,
                              options.bb_emulated_rtt_ms / 1000.0, client_id=f"user-{label}", token=token,
                              cap_s=options.bb_drop_cap_s or None, stop=self.environment.bulkbench["stop"],
                              live=self.environment.bulkbench["live"], seed=options.bb_seed)
        except Exception as exc:  # no judgement (a truth read failed, a join refused...): an error, never a figure
            if not isinstance(exc, TruthError | TargetError | SocketLost):
                logging.exception("drop of user %s failed", label)
            if options.bb_out:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"user-{label}.error").write_text(f"{type(exc).__name__}: {exc}\n")
            self.environment.runner.send_message(DROP_DONE, {"user": label, "ok": 0, "images": len(images),
                                                             "pid": os.getpid(), "error": str(exc)})
            raise StopUser() from exc
        self.iteration += 1
        if (watch := self.environment.bulkbench["watch"]) is not None and watch.aborted:
            result.extra["aborted"] = watch.aborted
        ok = sum(1 for r in result.records if r.outcome == "ok")
        if options.bb_out:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"user-{label}.json").write_bytes(orjson.dumps(result.to_json()))
        self.environment.runner.send_message(DROP_DONE, {"user": label, "ok": ok, "images": len(images),
                                                         "pid": os.getpid()})
        if options.bb_out:
            raise StopUser()


if os.environ.get(STAGES_ENV):
    class StagedArrivals(LoadTestShape):
        """Users arriving in stages (``run --stages``): each tick asks for as many users as have arrived
        by now (Locust ticks once a second, so arrivals land on whole seconds)."""

        use_common_options = True  # it reads --run-time: Locust enforces that only after a shape ends
        stages = parse_stages(os.environ[STAGES_ENV])

        def tick(self) -> tuple[int, float] | None:
            elapsed = self.get_run_time()
            run_time = self.runner.environment.parsed_options.run_time if self.runner else None
            if run_time and elapsed > run_time:
                return None
            return arrived(self.stages, elapsed), SPAWN_AT_ONCE_PER_S
