"""``bulkbench plan --tune STRATEGY --grid KEY=V1,V2 ...``: a strategy's knobs chosen with the model.

Every combination of the grid runs against every scenario (profiles x uplinks, one drop size) on every
core; a combination is ranked by its worst ratio of drop time to the physical bound over the scenarios
(the 1.05x a user is promised must hold everywhere), then by its worst median settle time as a share of
its drop (images visible as they land), then by its mean ratio. A combination that loses an image
anywhere ranks last. The defaults of ``scenarios/strategies.toml`` are the grid's best on this machine's
costs; the table shows how much each knob matters.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from bulkbench.config import ConfigError
from bulkbench.strategies import strategy_params

UPLINKS = (10.0, 20.0, 100.0)
DROP_RATIO_DIGITS = 2
"""Drop time over the bound is compared to 1 %: closer than that, two combinations are as fast (the
four combinations of the flush knobs at 60 images land within 0.2 % of each other), and the settle time
decides."""


def parse_grid(items: list[str], strategy: str) -> dict[str, list[Any]]:
    """``KEY=V1,V2`` items as lists of values of the parameter's own type (checked against the strategy)."""
    defaults = strategy_params(strategy)
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise ConfigError(f"--grid {item!r}: expected KEY=V1,V2,...")
        if not hasattr(defaults, key):
            raise ConfigError(f"--grid {item!r}: {strategy} has no parameter {key!r}")
        kind = type(getattr(defaults, key))
        try:
            grid[key] = [kind(v) if kind is not bool else v.lower() in ("1", "true", "yes") for v in values.split(",")]
        except ValueError as exc:
            raise ConfigError(f"--grid {item!r}: {exc}") from exc
    if not grid:
        raise ConfigError("--tune needs at least one --grid KEY=V1,V2")
    return grid


def combinations(grid: dict[str, list[Any]]) -> list[tuple[tuple[str, Any], ...]]:
    keys = sorted(grid)
    return [tuple(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def tune(strategy: str, grid: dict[str, list[Any]], profiles: list[str], images: int, seed: int,
         sweep: Callable[[list[tuple[dict[str, Any], Any]], int, Callable[[int, int], None]], list[dict[str, Any]]],
         processes: int, progress: Callable[[int, int], None], uplinks: tuple[float, ...] = UPLINKS) -> dict[str, Any]:
    combos = combinations(grid)
    jobs = [({"strategy": strategy, "profile": profile, "images": images, "uplink_mbit": mbit, "seed": seed,
              "strategy_overrides": combo}, None)
            for combo in combos for profile in profiles for mbit in uplinks]
    rows = sweep(jobs, processes, progress)
    ranked = []
    for combo in combos:
        mine = [r for r in rows if r["strategy_overrides"] == combo]
        ratios = [r["drop_over_bound"] for r in mine]
        settle = [r["settled_p50_s"] / r["drop_seconds"] if r["settled_p50_s"] else 1.0 for r in mine]
        ranked.append({"knobs": dict(combo), "lost": sum(r["images"] - r["images_ok"] for r in mine),
                       "worst_drop_over_bound": max(ratios), "mean_drop_over_bound": sum(ratios) / len(ratios),
                       "worst_settled_p50_share": max(settle)})
    ranked.sort(key=lambda r: (r["lost"] > 0, round(r["worst_drop_over_bound"], DROP_RATIO_DIGITS),
                               round(r["worst_settled_p50_share"], 3), r["mean_drop_over_bound"]))
    return {"strategy": strategy, "grid": grid, "profiles": profiles, "images": images, "uplinks": list(uplinks),
            "ranked": ranked, "rows": rows}


def table(result: dict[str, Any], top: int = 15) -> str:
    keys = sorted(result["grid"])
    head = "  ".join(f"{k:>18}" for k in keys) + "   lost  worst drop/bound  mean  worst settle p50/drop"
    lines = [head, "-" * len(head)]
    for row in result["ranked"][:top]:
        knobs = "  ".join(f"{row['knobs'][k]!s:>18}" for k in keys)
        lines.append(f"{knobs}  {row['lost']:>5}  {row['worst_drop_over_bound']:>16.3f}  "
                     f"{row['mean_drop_over_bound']:.3f}  {row['worst_settled_p50_share']:>22.2f}")
    return "\n".join(lines)
