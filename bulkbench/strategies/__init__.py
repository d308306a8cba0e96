"""Client strategies, each written once as a generator of effects (``bulkbench.effects``).

``STRATEGIES`` maps the command line's names to (run, parameter class); parameters come from
``scenarios/strategies.toml`` and may be overridden per scenario. ``NAME:SET`` is strategy ``NAME``
with its named parameter set ``[NAME.SET]`` on top of ``[NAME]`` (``individual:fc1316b``: the client
of the ImageCanvas code we run, as measured in a browser). A *layer* (``--strategy-layer FILE``) is a TOML file
of the same form read over it: its keys replace those of the same table and set, the rest stay
(``bulkbench calibrate --page`` writes one: a client's page costs as fast as the machine at hand runs it).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from bulkbench.config import ConfigError, from_table, read_toml, scenarios_dir, table_of
from bulkbench.protocol import OpType
from bulkbench.strategies import batched, chunked, individual, pipelined, probe
from bulkbench.strategies.common import Drop, DropLog, ImageTrack

STRATEGIES: dict[str, tuple[Callable[[Drop, Any], Generator[Any, Any, None]], type]] = {
    "individual": (individual.run, individual.IndividualParams),
    "batched": (batched.run, batched.BatchedParams),
    "chunked": (chunked.run, chunked.ChunkedParams),
    "probe": (probe.run, probe.ProbeParams),
    "pipelined": (pipelined.run, pipelined.PipelinedParams),
}

NODE_OPS = frozenset({str(OpType.NODE_CREATE), str(OpType.IMAGE_UPLOAD_COMPLETE)})
BATCH_OPS_NEEDED = frozenset({str(OpType.BATCH_NODE_CREATE), str(OpType.BATCH_UPLOAD_COMPLETE)})
STRATEGY_NEEDS: dict[str, frozenset[str]] = {
    "individual": NODE_OPS,
    "batched": BATCH_OPS_NEEDED,
    "chunked": NODE_OPS,
    "probe": NODE_OPS,
    "pipelined": BATCH_OPS_NEEDED,
}
"""The operations each strategy sends: a target without them cannot serve it (checked before a run)."""


def base_strategy(name: str) -> str:
    """The strategy a name runs (``individual`` for ``individual:fc1316b``)."""
    return name.split(":", 1)[0]


def strategy_params(name: str, overrides: dict[str, Any] | None = None, path: Path | None = None,
                    layer: str | Path = "") -> Any:
    """The parameters of strategy ``name``: class defaults, then its TOML table, then the named set's
    table (``NAME:SET``), each with ``layer``'s keys over it, then overrides."""
    base, _, variant = name.partition(":")
    if base not in STRATEGIES:
        raise ConfigError(f"unknown strategy {base!r}; known: {sorted(STRATEGIES)}")
    path = path or scenarios_dir() / "strategies.toml"
    table = table_of(path, base)
    source = f"{path} + {layer}" if layer else str(path)
    if layer:
        table = _over(table, layer_table(Path(layer), base))
    values = {key: value for key, value in table.items() if not isinstance(value, dict)}
    if variant:
        sets = sorted(key for key, value in table.items() if isinstance(value, dict))
        if variant not in sets:
            raise ConfigError(f"strategy {base!r} has no parameter set {variant!r} in {source}; sets: {sets}")
        values.update(table[variant])
    values.update(overrides or {})
    return from_table(STRATEGIES[base][1], values, f"strategy {name!r} ({source})")


def layer_table(layer: Path, base: str) -> dict[str, Any]:
    """Strategy ``base``'s table of a layer file, refusing a file that is missing or names a strategy
    that does not exist (a misspelt table would otherwise be read over nothing, silently)."""
    if not layer.is_file():
        raise ConfigError(f"strategies layer {layer} does not exist")
    tables = read_toml(layer)
    unknown = sorted(set(tables) - set(STRATEGIES))
    if unknown:
        raise ConfigError(f"strategies layer {layer}: unknown strategy table(s) {unknown}; known: {sorted(STRATEGIES)}")
    return tables.get(base, {})


def _over(table: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    """``table`` with ``layer``'s keys over it, set by set (a set only the layer has is added)."""
    merged = dict(table)
    for key, value in layer.items():
        merged[key] = {**table.get(key, {}), **value} if isinstance(value, dict) else value
    return merged


def start(name: str, drop: Drop, params: Any = None) -> Generator[Any, Any, None]:
    run, _ = STRATEGIES[base_strategy(name)]
    return run(drop, params if params is not None else strategy_params(name))


__all__ = ["STRATEGIES", "STRATEGY_NEEDS", "base_strategy", "Drop", "DropLog", "ImageTrack", "start", "strategy_params"]
