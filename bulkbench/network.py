"""The network between browser and server, as a scenario names it (``scenarios/networks.toml``).

Real runs make it with a shaped network namespace (``loadtests.network``); the model has the
same link (``sim.components.Link``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bulkbench.config import ConfigError, from_table, read_toml, scenarios_dir

TCP_IP_HEADER_BYTES = 52
"""IPv4 (20) + TCP (20) + the timestamp option Linux sends on every segment (12)."""
LINK_HEADER_BYTES = 14
"""The Ethernet header loopback frames carry, which ``tbf`` counts with the packet."""


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    name: str = "loopback"
    uplink_mbit: float = 0.0
    """0: unshaped loopback."""
    queue_ms: float = 200.0
    mtu: int = 1500
    emulated_rtt_ms: float = 0.0
    """A base round trip added by the client (netem is unavailable here); reported as emulated."""

    @property
    def shaped(self) -> bool:
        return self.uplink_mbit > 0

    @property
    def goodput_bytes_per_s(self) -> float:
        """Payload bytes per second a shaped link carries: at MTU 1500 headers take 4.4 % of the rate
        (1448 payload bytes per 1514 on the wire). Infinite when unshaped."""
        if not self.shaped:
            return float("inf")
        payload = self.mtu - TCP_IP_HEADER_BYTES
        return self.uplink_mbit * 1e6 / 8 * payload / (self.mtu + LINK_HEADER_BYTES)

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def load_network(name: str, uplink_mbit: float | None = None, emulated_rtt_ms: float | None = None) -> NetworkSpec:
    path = scenarios_dir() / "networks.toml"
    tables = {k: v for k, v in read_toml(path).items() if isinstance(v, dict)}
    if name not in tables:
        raise ConfigError(f"no network named {name!r} in {path}; known: {sorted(tables)}")
    spec = from_table(NetworkSpec, {"name": name, **tables[name]}, f"{path} [{name}]")
    if uplink_mbit is not None:
        spec = dataclasses.replace(spec, uplink_mbit=uplink_mbit,
                                   name=f"uplink-{uplink_mbit:g}" if uplink_mbit else "loopback")
    if emulated_rtt_ms is not None:
        spec = dataclasses.replace(spec, emulated_rtt_ms=emulated_rtt_ms)
    return spec
