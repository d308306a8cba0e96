"""Run the reference server as a child process (tests, benchmarks, ``bulkbench run``).

A real process on a loopback port, started with the same command a user types, so what is
tested is what ships. The URL is read from the line ``serve`` prints once its socket listens.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from bulkbench.lifeline import die_with_parent

READ_URL = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"
"""A URL's body, printed by a Python started inside the server's namespace."""

URL_LINE = re.compile(r"on (http://\S+) ")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds (every thread) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS  # utime, stime (fields 14, 15 of stat)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) a process has used so far: what a run cost a server."""
    return sum(cpu_times(pid))


class ServerProcess:
    def __init__(
        self,
        profile: str | os.PathLike[str],
        data_dir: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        emulation: bool = True,
        command: list[str] | None = None,
        prefix: list[str] | None = None,
        auth_secret_file: str | os.PathLike[str] | None = None,
    ) -> None:
        """``command`` replaces ``bulkbench serve`` by another server printing the same URL line;
        ``prefix`` runs it inside something (``ip netns exec NAME``)."""
        self.prefix = prefix or []
        self.command = self.prefix + (command or [
            sys.executable, "-m", "bulkbench.cli", "serve",
            "--profile", str(profile), "--data-dir", str(data_dir),
            "--host", host, "--port", str(port),
        ])
        if not emulation and command is None:
            self.command.append("--no-emulation")
        if auth_secret_file is not None and command is None:
            self.command += ["--auth-secret-file", str(auth_secret_file)]
        self.data_dir = Path(data_dir)
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.log_path = self.data_dir / "server.log"

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http"):] + "/ws"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as log:  # a file, not a pipe: a full pipe would stall the server
            self.process = subprocess.Popen(
                self.command, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
                preexec_fn=die_with_parent,
            )
        assert self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=deadline - time.monotonic()):
                    line = self.process.stdout.readline()
                    if not line:
                        break
                    if match := URL_LINE.search(line):
                        self.url = match.group(1)
                        return self
        self.stop()
        raise RuntimeError(
            f"server did not start: {' '.join(self.command)}\n{self.log_path.read_text()[-4000:]}"
        )

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it has not ended in time. Returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def memory_mib(self, field: str = "VmRSS") -> float:
        """The process's resident memory now, or its high-water mark since start with ``VmHWM``."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {field} for pid {self.pid}")

    def metric(self, prefix: str) -> float:
        """The sum of the server's ``/metrics`` samples whose line starts with ``prefix`` (name{labels}),
        read from where the server is (inside its namespace, when it runs in one)."""
        if self.prefix:
            text = subprocess.run([*self.prefix, sys.executable, "-c", READ_URL, f"{self.url}/metrics"],
                                  capture_output=True, text=True, check=True, timeout=30).stdout
        else:
            with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
                text = response.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))

    def kill(self) -> None:
        """SIGKILL at once: a crash, for the durability tests."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.stop()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()
