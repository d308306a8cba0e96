"""Reading the TOML data files of ``scenarios/`` into dataclasses: one rule for all of them.

Every key must be a field of the dataclass it fills; an unknown key is an error that names the
file, the table and the keys it knows, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A data file (profile, strategy, workload, network, model) that cannot be used, and why."""


def scenarios_dir() -> Path:
    """Where named data files live: ``$BULKBENCH_SCENARIOS`` or the repository's ``scenarios/``."""
    env = os.environ.get("BULKBENCH_SCENARIOS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "scenarios"


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def from_table(cls: type[T], raw: dict[str, Any], where: str) -> T:
    """``cls(**raw)``, refusing keys that are not its fields."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    try:
        return cls(**raw)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def table_of(path: Path, name: str) -> dict[str, Any]:
    """Table ``name`` of a TOML file (empty when the file or the table is absent)."""
    return read_toml(path).get(name, {}) if path.exists() else {}
