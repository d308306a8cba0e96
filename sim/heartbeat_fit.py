"""The page's heartbeat waits, fitted to a real page's (``bulkbench calibrate --heartbeat``).

Why: a stand-in page drops its socket when its heartbeat's answer is handled too late
(``bulkbench.strategies.heartbeat``), and how late is the real page's main thread's doing. The stand-in
knows what the canvas costs its thread at each moment (``individual``'s canvas load); how the real page's
answers spread around that is measured: each recorded ping's lateness over the model's load at the same
moment of the same scenario, pooled over the recordings, and a gamma fitted to those ratios (scipy, by
maximum likelihood, location 0). Its mean is ``heartbeat_wait_scale``, its shape ``heartbeat_wait_shape``.

What it needs: recordings (``python -m benchmarks.validation.matrix``) whose browser rows kept their
pings, in a ``heartbeats.jsonl`` beside ``matrix.jsonl`` (one line per row: its key and its pings), and the
recording's own layer (``strategies.toml``) for the machine's page speed.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from scipy import stats

from bulkbench.config import ConfigError
from bulkbench.truth import HEARTBEATS_FILE
from sim.pool import run_each
from sim.run import SimOptions, run_sim

BASE_SEEDS = 5
"""The model's load at a moment: the mean of this many seeds (its layout race moves it)."""
CHECK_SEEDS = 10
"""Seeds per scenario when the fitted waits are checked against the real pages' reconnections."""
SMALLEST_LOAD_S = 0.05
"""Pings sent while the model's load is below this are left out: their ratio says nothing of a busy page."""
NO_SPREAD = (("heartbeat_wait_scale", 1.0), ("heartbeat_wait_shape", 1e6), ("heartbeat_dead_s", 1e9))
"""The model's heartbeat tasks waiting its load itself, and never dropping the socket."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """One browser row of a recording and its pings."""

    folder: Path
    summary: dict[str, Any]
    heartbeats: list[list[float | None]]
    reopened_at: float | None
    """When the page first opened its socket again (None: it never did)."""

    def options(self, seed: int, overrides: tuple[tuple[str, Any], ...]) -> SimOptions:
        extra = self.summary["extra"]
        layer = self.folder / "strategies.toml"
        return SimOptions(strategy="individual:fc1316b", images=self.summary["images"], users=1,
                          profile=extra["model_profile"], seed=seed,
                          uplink_mbit=float(extra.get("network", {}).get("uplink_mbit", 0.0)),
                          strategy_layer=str(layer) if layer.is_file() else "",
                          horizon_s=self.summary["drop_seconds"] if extra.get("capped") else 0.0,
                          strategy_overrides=overrides)


def recorded(folders: list[Path]) -> list[Recorded]:
    out = []
    for folder in folders:
        beats_file, matrix = folder / HEARTBEATS_FILE, folder / "matrix.jsonl"
        if not beats_file.is_file() or not matrix.is_file():
            raise ConfigError(f"{folder}: --heartbeat needs {HEARTBEATS_FILE} beside matrix.jsonl")
        summaries = {row["key"]: row["summary"] for row in map(orjson.loads, matrix.read_bytes().splitlines())}
        for row in map(orjson.loads, beats_file.read_bytes().splitlines()):
            if row["key"] not in summaries:
                raise ConfigError(f"{beats_file}: row {row['key']!r} is not in {matrix}")
            opens = [at for at, what in row.get("socket_events", []) if what == "open"]
            out.append(Recorded(folder, summaries[row["key"]], row["heartbeats"], opens[1] if len(opens) > 1 else None))
    if not out:
        raise ConfigError(f"no recorded pings in {[str(f) for f in folders]}")
    return out


def model_load(run: Recorded) -> tuple[np.ndarray, np.ndarray]:
    """The model's canvas load at each of its pings in ``run``'s scenario: (sent at, load), seeds' mean."""
    series = [np.array([beat for beat in beats if beat[1] is not None], dtype=float)
              for beats in run_each(_heartbeats, [run.options(seed, NO_SPREAD) for seed in range(1, BASE_SEEDS + 1)])]
    sent = series[0][:, 0]
    return sent, np.mean([np.interp(sent, s[:, 0], s[:, 1]) for s in series], axis=0)


def _heartbeats(options: SimOptions) -> list[list[float | None]]:
    """The first replication's pings, [sent at, answer late by], as its drop's file has them."""
    with tempfile.TemporaryDirectory() as out:
        run_sim(dataclasses.replace(options, out=Path(out)))
        return orjson.loads((Path(out) / "drops" / "user-0.json").read_bytes())["extra"]["heartbeats"]


def _first_reopened(options: SimOptions) -> float | None:
    return run_sim(options).extra["first_reopened_s"]


@dataclass(frozen=True, slots=True)
class HeartbeatFit:
    scale: float
    shape: float
    pings: int
    ratio_p50: float
    ratio_p95: float
    ratio_max: float


def fit_waits(runs: list[Recorded]) -> HeartbeatFit:
    ratios = []
    for run in runs:
        sent, load = model_load(run)
        for at, late in run.heartbeats:
            if late is None or at is None or at <= 0:
                continue
            base = float(np.interp(at, sent, load))
            if base >= SMALLEST_LOAD_S:
                ratios.append(late / base)
    if len(ratios) < 10:
        raise ConfigError(f"{len(ratios)} answered pings on a busy page: too few to fit a spread")
    shape, _loc, scale = stats.gamma.fit(ratios, floc=0)
    return HeartbeatFit(scale=float(f"{shape * scale:.3g}"), shape=float(f"{shape:.3g}"), pings=len(ratios),
                        ratio_p50=statistics.median(ratios), ratio_p95=float(np.percentile(ratios, 95)),
                        ratio_max=max(ratios))


def first_reconnections(run: Recorded, scale: float, shape: float, seeds: int = CHECK_SEEDS) -> list[float | None]:
    """When the page first dropped its socket in each of ``seeds`` model drops of ``run``'s scenario, with
    heartbeat waits of this mean and shape (None: it kept it)."""
    overrides = (("heartbeat_wait_scale", scale), ("heartbeat_wait_shape", shape))
    return run_each(_first_reopened, [run.options(seed, overrides) for seed in range(1, seeds + 1)])


def main(args: Any) -> int:
    runs = recorded([Path(d) for d in args.run_dirs])
    fit = fit_waits(runs)
    print(f"{fit.pings} answered pings on a busy page: late / the model's load p50 {fit.ratio_p50:.2f}, "
          f"p95 {fit.ratio_p95:.2f}, max {fit.ratio_max:.2f}; a gamma of mean {fit.scale} and shape {fit.shape}")
    print(f"\n{'recorded run':<60} {'its socket reopened':>20} {'model: seeds reopened':>22}")
    for run in runs:
        s = run.summary
        name = f"{run.folder.name} {s['extra']['model_profile']} {s['images']} images, {s['drop_seconds']:.0f} s"
        real = "never" if run.reopened_at is None else f"at {run.reopened_at:.0f} s"
        dropped = sum(1 for at in first_reconnections(run, fit.scale, fit.shape) if at is not None)
        print(f"{name:<60} {real:>20} {dropped:>19}/{CHECK_SEEDS}")
    text = (f"# bulkbench calibrate --heartbeat {' '.join(args.run_dirs)}\n"
            f"# {fit.pings} pings: late / the model's canvas load, a gamma (p50 {fit.ratio_p50:.2f}, "
            f"p95 {fit.ratio_p95:.2f})\n[individual.fc1316b]\nheartbeat_wait_scale = {fit.scale}\n"
            f"heartbeat_wait_shape = {fit.shape}\n")
    Path(args.out).write_text(text)
    print(f"\nwritten {args.out}")
    return 0
