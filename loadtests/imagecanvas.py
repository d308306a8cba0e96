"""The real ImageCanvas app (``../shared/imagecanvas``), set up once and run on a loopback port.

Its own ``setup.sh`` installs it (npm packages, better-sqlite3 built against Node's headers) into
``.cache/imagecanvas/today`` or ``.cache/imagecanvas/as-reported`` (without its rate limiter). Every
start begins from the empty database ``setup.sh`` made and empty ``uploads/`` and ``thumbnails/``, as
its README asks of a measurement. The app listens on every interface when asked for a port; a
preload (``listen_loopback.js``) binds it to loopback instead, without touching its code. Its very
chatty stdout (every session on every operation) goes to a file, never a pipe a full buffer stalls.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from bulkbench.config import ConfigError
from bulkbench.lifeline import die_with_parent
from reference_server.process import cpu_seconds

REPO = Path(__file__).resolve().parent.parent
PRELOAD = Path(__file__).resolve().parent / "listen_loopback.js"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
SETUP_TIMEOUT_S = 900.0
STATES = ("today", "as-reported")
READY_MARK = ".bulkbench-ready"


def fixture_dir() -> Path:
    """Where the app's fixture is: ``$BULKBENCH_IMAGECANVAS`` or ``../shared/imagecanvas`` beside the repo."""
    return Path(os.environ.get("BULKBENCH_IMAGECANVAS", REPO.parent / "shared" / "imagecanvas"))


def missing_reason() -> str | None:
    """Why the real app cannot run here (None if it can): for tests that say so when they skip."""
    fixture = fixture_dir()
    if not (fixture / "setup.sh").exists():
        return f"the real ImageCanvas fixture is not at {fixture} (set BULKBENCH_IMAGECANVAS)"
    for tool in ("node", "npm", "g++", "make"):
        if shutil.which(tool) is None:
            return f"the real ImageCanvas needs {tool!r} on PATH"
    return None


def install(state: str = "today", cache: Path | None = None) -> Path:
    """The app installed for ``state`` (``today`` or ``as-reported``), set up now if it is not yet."""
    if state not in STATES:
        raise ConfigError(f"ImageCanvas state {state!r}: one of {list(STATES)}")
    reason = missing_reason()
    if reason:
        raise ConfigError(reason)
    dest = (cache or REPO / ".cache" / "imagecanvas") / state
    if (dest / READY_MARK).exists():
        return dest
    _share_packages(dest)
    command = ["bash", str(fixture_dir() / "setup.sh"), str(dest)] + (["--as-reported"] if state != "today" else [])
    done = subprocess.run(command, capture_output=True, text=True, timeout=SETUP_TIMEOUT_S)
    if done.returncode != 0:
        raise ConfigError(f"ImageCanvas setup failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
    shutil.copy2(dest / "server" / "database" / "canvas.db", dest / "server" / "database" / "canvas.db.empty")
    (dest / READY_MARK).write_text(done.stdout)
    return dest


def _share_packages(dest: Path) -> None:
    """Both states run the same code with the same ``package.json`` (as reported only loses a middleware), so a
    state set up second takes the first one's ``node_modules``. ``setup.sh`` then skips ``npm install``, whose
    build of better-sqlite3 (one C file of 9 MB, on one core) is about 150 s of a fresh CI machine's time."""
    if (dest / "node_modules").exists():
        return
    for other in STATES:
        built = dest.parent / other / "node_modules"
        if (dest.parent / other / READY_MARK).exists() and (built / BUILT_SQLITE).exists():
            shutil.copytree(built, dest / "node_modules", symlinks=True)
            return


BUILT_SQLITE = Path("better-sqlite3") / "build" / "Release" / "better_sqlite3.node"
"""What ``setup.sh`` looks for to skip its ``npm install``."""


def _answers(process: subprocess.Popen[bytes], url: str, prefix: list[str]) -> bool:
    """Whether ``url`` answers 200 before START_TIMEOUT_S (asked from inside ``prefix``'s namespace)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        if prefix:  # the server is in a namespace this process is not in: ask from inside it
            probe = subprocess.run([*prefix, sys.executable, "-c", PROBE, url], capture_output=True)
            if probe.returncode == 0:
                return True
        else:
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return True
            except OSError:
                pass
        time.sleep(0.2)
    return False


PROBE = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)"


def _end(process: subprocess.Popen[bytes]) -> int | None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


SWEPT_FILE_LINE = "  ✅ Deleted: "
"""What the app logs for each upload its cleanup deletes from its table and disk (``index.js:1899``)."""
SWEPT_DISK_LINE = re.compile(r"Deleted (\d+) orphaned files from disk")
"""... and for the files on disk its table did not list (``index.js:1997``)."""


def uploads_swept(log_path: Path) -> int:
    """The uploads the app's file sweep deleted, read off its log (``legacy``'s ``[file_sweep]``)."""
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    return (sum(line.startswith(SWEPT_FILE_LINE) for line in text.splitlines())
            + sum(int(n) for n in SWEPT_DISK_LINE.findall(text)))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class ImageCanvasApp:
    """``with ImageCanvasApp("today") as app: app.url`` -- a fresh instance of the real server."""

    def __init__(self, state: str = "today", port: int = 0, host: str = "127.0.0.1",
                 prefix: list[str] | None = None, log_path: Path | None = None, client_port: int = 0,
                 listen_host: str = "", page_origins: tuple[str, ...] = ()) -> None:
        """``prefix``: run it inside something (``ip netns exec NAME``); ``log_path``: its stdout;
        ``client_port``: also serve its browser client (the page) there, as its README does;
        ``listen_host``: where it listens when that is not ``host`` (``0.0.0.0`` inside a namespace of
        ours, for browsers in namespaces of their own); ``page_origins``: origins its CORS list allows
        (its default allows only pages on localhost)."""
        self.state = state
        self.host = host
        self.listen_host = listen_host or host
        self.page_origins = page_origins
        self.port = port
        self.prefix = prefix or []
        self.log_path = log_path
        self.client_port = client_port
        self.process: subprocess.Popen[bytes] | None = None
        self.client: subprocess.Popen[bytes] | None = None
        self.dir: Path | None = None

    def cpu_seconds(self) -> float:
        assert self.process is not None
        return cpu_seconds(self.process.pid)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        """An empty database and no stored files: where every measurement starts."""
        assert self.dir is not None
        server = self.dir / "server"
        for name in ("canvas.db-wal", "canvas.db-shm"):
            (server / "database" / name).unlink(missing_ok=True)
        shutil.copy2(server / "database" / "canvas.db.empty", server / "database" / "canvas.db")
        for folder in ("uploads", "thumbnails"):
            shutil.rmtree(server / folder, ignore_errors=True)
            (server / folder).mkdir()

    def start(self) -> ImageCanvasApp:
        self.dir = install(self.state)
        self.reset()
        if not self.port:
            self.port = free_port(self.host)
        log_path = self.log_path or self.dir / "server.log"
        env = {**os.environ, "PORT": str(self.port), "BULKBENCH_LISTEN_HOST": self.listen_host}
        if self.page_origins:
            env["CORS_ORIGINS"] = ",".join(self.page_origins)
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen([*self.prefix, "node", "-r", str(PRELOAD), "server/index.js"],
                                            cwd=self.dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            preexec_fn=die_with_parent)
        if self.client_port:
            self.client = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", "loadtests.pageserver", str(self.client_port),
                 "--bind", self.listen_host, "--directory", str(self.dir)],
                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=die_with_parent)
        for process, url in ((self.process, f"{self.url}/health"),
                             *(((self.client, f"http://{self.host}:{self.client_port}/"),) if self.client else ())):
            if not _answers(process, url, self.prefix):
                self.stop()
                raise RuntimeError(f"ImageCanvas did not start ({url}); its log: {log_path}\n"
                                   f"{log_path.read_text(errors='replace')[-3000:]}")
        return self

    def stop(self) -> int | None:
        if self.client is not None:
            _end(self.client)
        return _end(self.process) if self.process is not None else None

    def __enter__(self) -> ImageCanvasApp:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()
