"""Client strategies, each written once as a generator of effects (``bulkbench.effects``).

``STRATEGIES`` maps the command line's names to (run, parameter class); parameters come from
``scenarios/strategies.toml`` and may be overridden per scenario.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from bulkbench.config import ConfigError, from_table, scenarios_dir, table_of
from bulkbench.protocol import OpType
from bulkbench.strategies import batched, chunked, individual, probe
from bulkbench.strategies.common import Drop, DropLog, ImageTrack

STRATEGIES: dict[str, tuple[Callable[[Drop, Any], Generator[Any, Any, None]], type]] = {
    "individual": (individual.run, individual.IndividualParams),
    "batched": (batched.run, batched.BatchedParams),
    "chunked": (chunked.run, chunked.ChunkedParams),
    "probe": (probe.run, probe.ProbeParams),
}

NODE_OPS = frozenset({str(OpType.NODE_CREATE), str(OpType.IMAGE_UPLOAD_COMPLETE)})
BATCH_OPS_NEEDED = frozenset({str(OpType.BATCH_NODE_CREATE), str(OpType.BATCH_UPLOAD_COMPLETE)})
STRATEGY_NEEDS: dict[str, frozenset[str]] = {
    "individual": NODE_OPS,
    "batched": BATCH_OPS_NEEDED,
    "chunked": NODE_OPS,
    "probe": NODE_OPS,
}
"""The operations each strategy sends: a target without them cannot serve it (checked before a run)."""


def strategy_params(name: str, overrides: dict[str, Any] | None = None, path: Path | None = None) -> Any:
    """The parameters of strategy ``name``: class defaults, then the TOML table, then overrides."""
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; known: {sorted(STRATEGIES)}")
    path = path or scenarios_dir() / "strategies.toml"
    values = {**table_of(path, name), **(overrides or {})}
    return from_table(STRATEGIES[name][1], values, f"strategy {name!r} ({path})")


def start(name: str, drop: Drop, params: Any = None) -> Generator[Any, Any, None]:
    run, _ = STRATEGIES[name]
    return run(drop, params if params is not None else strategy_params(name))


__all__ = ["STRATEGIES", "STRATEGY_NEEDS", "Drop", "DropLog", "ImageTrack", "start", "strategy_params"]
