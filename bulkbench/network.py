"""The network between browser and server, as a scenario names it (``scenarios/networks.toml``).

Real runs make it with a shaped network namespace (``loadtests.network``); the model has the
same link (``sim.components.Link``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bulkbench.config import ConfigError, from_table, read_toml, scenarios_dir


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
