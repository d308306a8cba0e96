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
            _shape(self.name, "lo", self.spec)
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


BROWSER_SUBNET = "10.77"
"""Browser N's pair of addresses with the app: 10.77.N.1 (the app), .2 (the browser), .3 (its judge)."""


class BrowserNamespaces:
    """Browsers on machines of their own: the app in a namespace, each browser in a namespace joined to
    it by a veth pair. Browser N sends from 10.77.N.2 and reaches the app at 10.77.N.1, so a per-IP
    limiter sees one address per browser, as it would see one per real machine (on one loopback every
    browser is 127.0.0.1); a shaped uplink is a ``tbf`` on each browser's own way out."""

    def __init__(self, spec: NetworkSpec, users: int) -> None:
        self.spec = spec
        tag = f"{os.getpid()}-{id(self) % 10000}"
        self.app = f"{NAMESPACE_PREFIX}{tag}-app"
        self.browsers = [f"{NAMESPACE_PREFIX}{tag}-b{user}" for user in range(users)]
        self.short = f"{os.getpid() % 100000}"

    @property
    def app_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.app]

    def browser_prefix(self, user: int) -> list[str]:
        return ["ip", "netns", "exec", self.browsers[user]]

    @staticmethod
    def app_address(user: int) -> str:
        return f"{BROWSER_SUBNET}.{user}.1"

    @staticmethod
    def browser_address(user: int) -> str:
        return f"{BROWSER_SUBNET}.{user}.2"

    @staticmethod
    def judge_address(user: int) -> str:
        return f"{BROWSER_SUBNET}.{user}.3"

    def __enter__(self) -> BrowserNamespaces:
        sweep_stale_namespaces()
        try:
            _ip("netns", "add", self.app)
            _ip("-n", self.app, "link", "set", "lo", "up")
            for user, namespace in enumerate(self.browsers):
                app_side, browser_side = f"bba{self.short}x{user}", f"bbb{self.short}x{user}"
                _ip("netns", "add", namespace)
                _ip("-n", namespace, "link", "set", "lo", "up")
                _ip("link", "add", app_side, "type", "veth", "peer", "name", browser_side)
                _ip("link", "set", app_side, "netns", self.app)
                _ip("link", "set", browser_side, "netns", namespace)
                _ip("-n", self.app, "addr", "add", f"{self.app_address(user)}/29", "dev", app_side)
                _ip("-n", namespace, "addr", "add", f"{self.browser_address(user)}/29", "dev", browser_side)
                _ip("-n", namespace, "addr", "add", f"{self.judge_address(user)}/29", "dev", browser_side)
                for ns, dev in ((self.app, app_side), (namespace, browser_side)):
                    # no IPv6 link-local address: the kernel adds one a second or so after the link is up, and
                    # Chromium aborts every request under way on an address change (net::ERR_NETWORK_CHANGED),
                    # one of the page's modules among them, and the page never starts
                    _ip("-n", ns, "link", "set", dev, "addrgenmode", "none")
                    _ip("-n", ns, "link", "set", dev, "mtu", str(self.spec.mtu), "up")
                if self.spec.shaped:
                    _shape(namespace, browser_side, self.spec)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for namespace in [*self.browsers, self.app]:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.close()


def _shape(namespace: str, device: str, spec: NetworkSpec) -> None:
    """A token bucket at the uplink's rate on ``device``'s way out."""
    rate_bytes = spec.uplink_mbit * 1e6 / 8
    burst = max(32 * 1024, int(rate_bytes / 250))  # at least one timer tick's worth
    subprocess.run(["tc", "-n", namespace, "qdisc", "add", "dev", device, "root", "tbf",
                    "rate", f"{spec.uplink_mbit:g}mbit", "burst", str(burst), "latency", f"{spec.queue_ms:g}ms"],
                   check=True, capture_output=True, text=True)
