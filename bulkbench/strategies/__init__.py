"""Client strategies, each written once as a generator of effects (``bulkbench.effects``).

``STRATEGIES`` maps the command line's names to (run, parameter class); parameters come from
``scenarios/strategies.toml`` and may be overridden per scenario.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from bulkbench.profile import ProfileError, scenarios_dir
from bulkbench.strategies import batched, chunked, individual
from bulkbench.strategies.common import Drop, DropLog, ImageTrack

STRATEGIES: dict[str, tuple[Callable[[Drop, Any], Generator[Any, Any, None]], type]] = {
    "individual": (individual.run, individual.IndividualParams),
    "batched": (batched.run, batched.BatchedParams),
    "chunked": (chunked.run, chunked.ChunkedParams),
}


def strategy_params(name: str, overrides: dict[str, Any] | None = None, path: Path | None = None) -> Any:
    """The parameters of strategy ``name``: class defaults, then the TOML table, then overrides."""
    if name not in STRATEGIES:
        raise ProfileError(f"unknown strategy {name!r}; known: {sorted(STRATEGIES)}")
    params_class = STRATEGIES[name][1]
    path = path or scenarios_dir() / "strategies.toml"
    table = tomllib.loads(path.read_text()).get(name, {}) if path.exists() else {}
    values = {**table, **(overrides or {})}
    known = {f.name for f in dataclasses.fields(params_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ProfileError(f"strategy {name!r}: unknown parameter(s) {unknown}; known: {sorted(known)}")
    return params_class(**values)


def start(name: str, drop: Drop, params: Any = None) -> Generator[Any, Any, None]:
    run, _ = STRATEGIES[name]
    return run(drop, params if params is not None else strategy_params(name))


__all__ = ["STRATEGIES", "Drop", "DropLog", "ImageTrack", "start", "strategy_params"]
