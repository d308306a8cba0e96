"""A browser's uplink, for real: a network namespace whose loopback is shaped by ``tbf``.

The server and the load generator both run inside the namespace (``ip netns exec``), so every
byte between them crosses one loopback with MTU 1500 and a token bucket at the uplink rate:
uploads and WebSocket frames share its queue, as on the uplink of a home connection. The
namespace is removed when the run ends, whatever happens (and stale ones of dead runs are swept).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import TracebackType

from bulkbench.network import NetworkSpec

NAMESPACE_PREFIX = "bulkbench-"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def sweep_stale_namespaces() -> None:
    """Remove namespaces left by runs whose process is gone."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(NAMESPACE_PREFIX):
            pid = name[len(NAMESPACE_PREFIX):].split("-")[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                subprocess.run(["ip", "netns", "del", name], capture_output=True)


class ShapedNamespace:
    """``with ShapedNamespace(spec) as ns: subprocess.run(ns.prefix + [...])``; an unshaped spec gives a
    namespace whose loopback is as fast as the host's (for isolation: its own ports and addresses)."""

    def __init__(self, spec: NetworkSpec) -> None:
        self.spec = spec
        self.name = f"{NAMESPACE_PREFIX}{os.getpid()}-{id(self) % 10000}"
        self.prefix: list[str] = ["ip", "netns", "exec", self.name]

    def __enter__(self) -> ShapedNamespace:
        sweep_stale_namespaces()
        _ip("netns", "add", self.name)
        try:
            if not self.spec.shaped:  # a namespace of its own (ports, addresses), loopback as the host's
                _ip("-n", self.name, "link", "set", "lo", "up")
                return self
            _ip("-n", self.name, "link", "set", "lo", "mtu", str(self.spec.mtu), "up")
            rate_bytes = self.spec.uplink_mbit * 1e6 / 8
            burst = max(32 * 1024, int(rate_bytes / 250))  # at least one timer tick's worth
            subprocess.run(
                ["tc", "-n", self.name, "qdisc", "add", "dev", "lo", "root", "tbf",
                 "rate", f"{self.spec.uplink_mbit:g}mbit", "burst", str(burst),
                 "latency", f"{self.spec.queue_ms:g}ms"],
                check=True, capture_output=True, text=True)
        except BaseException:
            self.close()
            raise
        return self

    def qdisc(self) -> str:
        return subprocess.run(["tc", "-n", self.name, "-s", "qdisc", "show", "dev", "lo"],
                              capture_output=True, text=True).stdout

    def close(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.close()


def namespace_exists(name: str) -> bool:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return any(line.split()[0] == name for line in listing.splitlines() if line.strip())


def namespaces_allowed() -> bool:
    """Whether this process may make network namespaces (root or CAP_NET_ADMIN)."""
    probe = subprocess.run(["ip", "netns", "add", f"{NAMESPACE_PREFIX}probe-{os.getpid()}"], capture_output=True)
    subprocess.run(["ip", "netns", "del", f"{NAMESPACE_PREFIX}probe-{os.getpid()}"], capture_output=True)
    return probe.returncode == 0
