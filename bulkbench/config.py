"""Reading the TOML data files of ``scenarios/`` into dataclasses: one rule for all of them.

Every key must be a field of the dataclass it fills; an unknown key is an error that names the
file, the table and the keys it knows, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A data file (profile, strategy, workload, network, model) that cannot be used, and why."""


def scenarios_dir() -> Path:
    """Where named data files live: ``$BULKBENCH_SCENARIOS``, or the package's own ``scenarios/`` (shipped
    in the wheel; the repository's top-level ``scenarios`` is a link to it, for the paths users type)."""
    env = os.environ.get("BULKBENCH_SCENARIOS")
    return Path(env) if env else Path(str(resources.files("bulkbench") / "scenarios"))


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


def resolve(name_or_path: str | os.PathLike[str], folder: Path, what: str) -> Path:
    """A data file by name (``legacy``: ``folder/legacy.toml``) or by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.exists():
            raise ConfigError(f"{what} file {path} does not exist")
        return path
    candidate = folder / f"{name_or_path}.toml"
    if not candidate.exists():
        known = sorted(p.stem for p in folder.glob("*.toml"))
        raise ConfigError(f"no {what} named {name_or_path!r} in {folder}; known: {known}")
    return candidate


def merge_tables(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, table by table, key by key; a table set to ``false`` removes the base's."""
    out = dict(base)
    for key, value in top.items():
        if value is False and isinstance(out.get(key), dict):
            out.pop(key)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_tables(out[key], value)
        else:
            out[key] = value
    return out


def read_extended(name_or_path: str | os.PathLike[str], folder: Path, what: str,
                  seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A data file's keys on top of those of the file it ``extends`` (a sibling file, or a name in
    ``folder``); its ``name`` and ``description`` are its own, never inherited."""
    path = resolve(name_or_path, folder, what)
    if path in seen:
        raise ConfigError(f"{what} {path} extends itself through {[str(p) for p in seen]}")
    raw = read_toml(path)
    raw.pop("kind", None)
    raw.setdefault("name", path.stem)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    sibling = path.parent / (parent if str(parent).endswith(".toml") else f"{parent}.toml")
    base = read_extended(sibling if sibling.exists() else parent, folder, what, (*seen, path))
    base.pop("name", None)
    base.pop("description", None)
    return merge_tables(base, raw)
