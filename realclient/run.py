"""``bulkbench browser-run``: the real client's drop, from nothing to a results directory.

Makes the workload's files (the same images as ``run`` and ``sim``), makes the shaped network when the
scenario has one, starts the real app and its page there (``--start-app``) or uses the ones given, runs
one session per browser (``realclient.session``, inside the namespace), then sums the drops into the
result schema with ``engine: "browser"``: ``summary.json``, ``images.jsonl``, ``drops/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from bulkbench.bound import add_bound
from bulkbench.config import ConfigError
from bulkbench.lifeline import die_with_parent, exit_on_sigterm, wait_for
from bulkbench.network import load_network
from bulkbench.profile import load_profile
from bulkbench.results import RunSummary, table
from bulkbench.target import APP_TARGETS, TargetError, load_target
from bulkbench.truth import DropResult, TruthError, drop_figures, summarize
from bulkbench.workload import ImageSpec, draw_images, load_workload
from loadtests.imagecache import ImageCache
from loadtests.imagecanvas import ImageCanvasApp, uploads_swept
from loadtests.network import BROWSER_SUBNET, BrowserNamespaces, ShapedNamespace, namespaces_allowed
from loadtests.run import fresh_dir, write_results
from realclient.session import CHROMIUM, SessionSpec, opened_again

REPO = Path(__file__).resolve().parent.parent
APP_SERVER_PORT = 3000
"""ImageCanvas's page talks to port 3000 of its own host, whatever serves it (NetworkLayer.js:14)."""
APP_PAGE_PORT = 8000
"""Where its README serves the page; the server's CORS list allows pages from there."""
SESSION_GRACE_S = 180.0


@dataclasses.dataclass(frozen=True, slots=True)
class BrowserRunOptions:
    images: int = 50
    users: int = 1
    seed: int = 1
    workload: str = ""
    target_profile: str = "imagecanvas"
    app: str = ""
    """The page's URL (default: the target's ``[app] url``)."""
    target: str = ""
    """The app's server (default: port 3000 of the page's host, as ImageCanvas's page assumes)."""
    start_app: str = ""
    """Start the real ImageCanvas (``today`` / ``as-reported``) and its page for the run, fresh."""
    drop_on: str = ""
    network: str = "loopback"
    uplink_mbit: float | None = None
    max_seconds: float = 900.0
    quiet_s: float = 3.0
    viewport: tuple[int, int] = (1280, 800)
    out: Path = Path("results/browser")
    quiet: bool = False


def _say(options: BrowserRunOptions, text: str) -> None:
    if not options.quiet:
        print(text, flush=True)


def chromium_missing() -> str | None:
    """Why no browser run can happen here (None if it can): for the CLI and for tests that skip."""
    if not Path(CHROMIUM).exists():
        return (f"no Chromium at {CHROMIUM}: install Debian's package (`apt-get install chromium`, as root); "
                "a browser download by Playwright does not work here")
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright is not installed: `pip install -e .` (it is one of bulkbench's dependencies)"
    return None


def browser_run(options: BrowserRunOptions) -> RunSummary:
    exit_on_sigterm()
    reason = chromium_missing()
    if reason:
        raise ConfigError(reason)
    target_name = options.target_profile
    if options.start_app and target_name == "imagecanvas":
        target_name = APP_TARGETS[options.start_app]
    target = load_target(target_name)
    app = dataclasses.replace(target.app, url=options.app or target.app.url,
                              drop_on=options.drop_on or target.app.drop_on)
    if not app.url or not app.drop_on or not app.ready:
        raise TargetError(f"target {target.name!r} names no web app to open ([app] url, ready, drop_on): "
                          "browser-run drives a real web app's own client")
    apart = options.users > 1 and target.clients.identity == "source-address"
    if apart and not (options.start_app and namespaces_allowed()):
        raise TargetError(f"{options.users} browsers on one machine all send from 127.0.0.1, and target "
                          f"{target.name!r} tells browsers apart by address: its limiter would see one user. "
                          "With --start-app and root (network namespaces) each browser gets a machine of its "
                          "own; else run one browser (--users 1).")
    page = urlsplit(app.url)
    server_url = options.target or f"{page.scheme}://{page.hostname}:{APP_SERVER_PORT}"
    network = load_network(options.network, options.uplink_mbit)
    if network.shaped and not options.start_app:
        raise ConfigError("a shaped run puts the app and Chromium in one namespace: use --start-app, or shape the "
                          "path to your app yourself")
    workload = dataclasses.replace(load_workload(options.workload or None), images=options.images, seed=options.seed)
    out = fresh_dir(Path(options.out))
    cache = ImageCache()
    drops = [draw_images(workload, user=user) for user in range(options.users)]
    cache.prepare(image for drop in drops for image in drop)
    _say(options, f"[bulkbench] workload: {sum(map(len, drops))} images, "
                  f"{sum(i.size_bytes for d in drops for i in d) / 1e6:.1f} MB")
    with ExitStack() as stack:
        places = stack.enter_context(_places(options, network, app.url, server_url, apart))
        if options.start_app:
            stack.enter_context(ImageCanvasApp(
                options.start_app, port=APP_SERVER_PORT, prefix=places.app_prefix, log_path=out / "app.log",
                client_port=APP_PAGE_PORT, listen_host="0.0.0.0" if apart else "",
                page_origins=tuple(_origin(places.page_url(u)) for u in range(options.users)) if apart else ()))
            _say(options, f"[bulkbench] the real ImageCanvas ({options.start_app}), fresh: server "
                          f"{places.server_url(0)}, page {places.page_url(0)}")
        sessions = []
        for user, images in enumerate(drops):
            spec = SessionSpec(target=str(target_name), base_url=places.server_url(user),
                               page_url=places.page_url(user), user=user,
                               images=[dataclasses.asdict(i) for i in images],
                               paths=[str(cache.path(i)) for i in images], out=str(out),
                               max_seconds=options.max_seconds, quiet_s=options.quiet_s,
                               viewport=options.viewport, canvas_name=f"browser-{os.getpid()}-u{user}",
                               chromium_args=places.chromium_args(user), judge_address=places.judge_address(user))
            spec_path = out / f"session-{user}.json"
            spec_path.write_text(orjson.dumps(dataclasses.asdict(spec)).decode())
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
            log = stack.enter_context(open(out / f"session-{user}.log", "w"))
            sessions.append(subprocess.Popen([*places.browser_prefix(user), sys.executable, "-m", "realclient.session",
                                              str(spec_path)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                             preexec_fn=die_with_parent))
        _say(options, f"[bulkbench] {options.users} browser(s) dropping {options.images} images each "
                      f"(settles after {options.quiet_s:g} s idle; hard cap {options.max_seconds:g} s)")
        stack.callback(_end_sessions, sessions)  # on any way out (Ctrl-C, SIGTERM): no browser left behind
        for session in sessions:
            try:
                wait_for(session, options.max_seconds + SESSION_GRACE_S)
            except subprocess.TimeoutExpired:
                session.kill()
                session.wait()
    return summarize_drops(out, options, target_name, network, drops)


@dataclasses.dataclass
class _Places:
    """Where the app and each browser run, and how a browser reaches the app from there."""

    page: str
    server: str
    app_prefix: list[str] = dataclasses.field(default_factory=list)
    browsers: BrowserNamespaces | None = None

    def browser_prefix(self, user: int) -> list[str]:
        return self.browsers.browser_prefix(user) if self.browsers else self.app_prefix

    def _on_pair(self, url: str, user: int) -> str:
        if self.browsers is None:
            return url
        parts = urlsplit(url)
        return parts._replace(netloc=f"{self.browsers.app_address(user)}:{parts.port}").geturl()

    def page_url(self, user: int) -> str:
        return self._on_pair(self.page, user)

    def server_url(self, user: int) -> str:
        return self._on_pair(self.server, user)

    def chromium_args(self, user: int) -> tuple[str, ...]:
        """A page on its pair's address is not on localhost: tell Chromium it is a secure context (the
        page hashes with ``crypto.subtle``, which only secure contexts have)."""
        if self.browsers is None:
            return ()
        return (f"--unsafely-treat-insecure-origin-as-secure={_origin(self.page_url(user))}",)

    def judge_address(self, user: int) -> str:
        return self.browsers.judge_address(user) if self.browsers else ""


@contextlib.contextmanager
def _places(options: BrowserRunOptions, network: Any, page: str, server: str, apart: bool) -> Iterator[_Places]:
    """Browsers apart (a namespace each, joined to the app's), or one namespace for the app and its browser
    (shaped, or just its fixed ports isolated), or none."""
    if apart:
        with BrowserNamespaces(network, options.users) as spaces:
            uplinks = f"; uplinks of {network.uplink_mbit:g} Mbit/s each" if network.shaped else ""
            _say(options, f"[bulkbench] network: the app in {spaces.app}, each browser in a namespace of its "
                          f"own ({BROWSER_SUBNET}.N.2){uplinks}")
            yield _Places(page, server, spaces.app_prefix, spaces)
        return
    if network.shaped or (options.start_app and namespaces_allowed()):
        with ShapedNamespace(network) as namespace:  # unshaped: the app's fixed ports isolated
            shaping = f"tbf {network.uplink_mbit:g} Mbit/s" if network.shaped else "unshaped loopback"
            _say(options, f"[bulkbench] network: namespace {namespace.name}, {shaping}; the app, its page and "
                          "Chromium inside it")
            yield _Places(page, server, namespace.prefix)
        return
    yield _Places(page, server)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _end_sessions(sessions: list[subprocess.Popen[bytes]]) -> None:
    for session in sessions:
        if session.poll() is None:
            session.terminate()
            try:
                session.wait(10)
            except subprocess.TimeoutExpired:
                session.kill()
                session.wait()


def summarize_drops(out: Path, options: BrowserRunOptions, target_name: str, network: Any,
                    drops: list[list[ImageSpec]]) -> RunSummary:
    errors = [p.read_text().strip() for p in sorted((out / "drops").glob("*.error"))]
    if errors:
        raise TruthError(f"{len(errors)} of {options.users} browser drops have no judgement: {errors[0]}; "
                         f"see {out}/session-*.log")
    results = [DropResult.from_json(orjson.loads(p.read_bytes())) for p in sorted((out / "drops").glob("*.json"))]
    if len(results) != options.users:
        raise RuntimeError(f"{len(results)} of {options.users} browser drops reported; see {out}/session-*.log")
    target = load_target(target_name)
    summary = summarize("browser", "real-client", target.name, options.seed, results, extra={
        "network": network.to_json(), "target_profile": target.name, "model_profile": target.model_profile,
        "transport": target.socket.transport, "viewport": list(options.viewport), **drop_figures(results),
        **browser_figures(results)})
    if options.start_app and (swept := uploads_swept(out / "app.log")):
        summary.extra["uploads_swept"] = swept
    add_bound(summary, drops, load_profile(target.model_profile), network)
    write_results(out, [summary], results)
    return summary


def browser_figures(results: list[DropResult]) -> dict[str, Any]:
    """What only a browser shows: its connections (how many pages lost their socket for good, how many times
    pages opened one again: fc1316b's heartbeat reconnects a page whose pongs come late), its main
    thread (and the first page's busy time through its drop and what held it, the machine's beside it, its
    cores' speed before it and which boot it was), what the page told its user."""
    first = results[0].extra
    return {"peak_connections": max(r.extra.get("peak_connections", 0) for r in results),
            "capped": any(r.extra.get("capped") for r in results),
            "sockets_lost": sum(r.extra.get("socket_down_s") is not None for r in results),
            "sockets_reopened": sum(opened_again(r.extra.get("socket_events", [])) for r in results),
            "long_task_ms": sum(r.extra.get("long_task_ms", 0) for r in results),
            "hardware_concurrency": first.get("hardware_concurrency"), "claimed": first.get("claimed"),
            "console_lines": sum(r.extra.get("console_lines", 0) for r in results),
            "busy_series": first.get("busy_series", []), "frame_work": first.get("frame_work", []),
            "host_series": first.get("host_series", []), "cores_probe": first.get("cores_probe", {}),
            "machine": first.get("machine", {})}


def main(args: Any) -> int:
    options = BrowserRunOptions(
        images=args.images, users=args.users, seed=args.seed, workload=args.workload or "",
        target_profile=args.target_profile, app=args.app or "", target=args.target or "",
        start_app=args.start_app or "", drop_on=args.drop_on or "", network=args.network,
        uplink_mbit=args.uplink_mbit, max_seconds=args.max_seconds, quiet_s=args.quiet_s, out=Path(args.out))
    summary = browser_run(options)
    print()
    print(table([summary]))
    extra = summary.extra
    print(f"\nuploads {extra['upload_attempts']}, HTTP {extra['http_by_status']}, peak connections "
          f"{extra['peak_connections']}, main thread blocked {extra['long_task_ms'] / 1000:.0f} s, "
          f"the page said {extra['claimed']}{' (hard cap reached)' if extra['capped'] else ''}")
    if probe := extra.get("cores_probe"):
        print("the cores before the drop (fastest of the probe's rounds): "
              + ", ".join(f"{name} {ms}" for name, ms in probe.items()))
    if beat := extra.get("heartbeat"):
        print(f"the page's heartbeat: {beat['pings']} pings, answers handled {beat['late_p50_s']} s late (median), "
              f"{beat['late_max_s']} s at most, {beat['unanswered']} never; longest stretch between two answers "
              f"{beat['gap_max_s']} s (fc1316b's page closes its socket over 30 s)")
    print(f"results in {options.out}/")
    return 0
