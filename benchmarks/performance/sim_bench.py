"""The model's speed, measured against a bare SimPy loop in the same run (``make bench``).

- one 1000-image drop (each strategy, unshaped and on a 20 Mbit/s uplink): seconds of wall time;
- events/s of the model against events/s of a bare SimPy M/M/1 loop, same process, same run (both
  with the cyclic garbage collector paused, as a replication runs);
- 200 scenarios x 10 replications on all cores (multiprocessing), wall seconds; and the floor under
  it: the seconds the bare loop would take for as many events as the grid scheduled.
Results go to ``bench-results/sim_bench.json``.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import random
import statistics
import time
from collections.abc import Generator
from pathlib import Path

import simpy

from sim.events import events_scheduled
from sim.run import SimOptions, gc_paused, run_sim, simulate_once

SCENARIO_GRID = {
    "strategy": ["individual", "batched"],
    "profile": ["legacy", "optimized"],
    "images": [50, 100, 200, 300, 500],
    "users": [1, 2, 5, 10, 20],
    "uplink_mbit": [0.0, 50.0],
}


def bare_mm1_events_per_s(customers: int = 100_000) -> float:
    env, rng = simpy.Environment(), random.Random(1)
    server = simpy.Resource(env, 1)

    def customer() -> Generator:
        with server.request() as request:
            yield request
            yield env.timeout(rng.expovariate(1.0))

    def arrivals() -> Generator:
        for _ in range(customers):
            yield env.timeout(rng.expovariate(0.8))
            env.process(customer())

    env.process(arrivals())
    with gc_paused():
        started = time.perf_counter()
        env.run()
        elapsed = time.perf_counter() - started
    return events_scheduled(env) / elapsed


def model_events_per_s(options: SimOptions) -> tuple[float, float]:
    from bulkbench.model_params import load_model_params
    from bulkbench.profile import load_profile
    from bulkbench.workload import WorkloadSpec

    profile, params = load_profile(options.profile), load_model_params()
    started = time.perf_counter()
    replication = simulate_once(options, 0, profile, WorkloadSpec(images=options.images), params)
    elapsed = time.perf_counter() - started
    return replication.events / elapsed, elapsed


def _one_scenario(spec: dict) -> int:
    """The events its 10 replications scheduled."""
    return run_sim(SimOptions(**spec, replications=10)).extra["events"]


def scenarios() -> list[dict]:
    keys = list(SCENARIO_GRID)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*SCENARIO_GRID.values())]


def longest_first(grid: list[dict]) -> list[dict]:
    """The grid in the order a pool finishes it soonest: a scenario costs about its images (users x
    images), so the big ones start first and the small ones fill the gaps at the end."""
    return sorted(grid, key=lambda spec: spec["users"] * spec["images"], reverse=True)


def main() -> dict:
    results: dict = {}
    print("1/3 one 1000-image drop in the model (target <= 0.25 s)", flush=True)
    for strategy, uplink in itertools.product(("individual", "batched"), (0.0, 20.0)):
        times = []
        for _ in range(3):
            started = time.perf_counter()
            run_sim(SimOptions(strategy=strategy, images=1000, uplink_mbit=uplink))
            times.append(time.perf_counter() - started)
        results[f"drop_1000_{strategy}_{uplink:g}"] = statistics.median(times)
        print(f"   {strategy:<10} uplink {uplink:>4g} Mbit/s: {statistics.median(times):.3f} s", flush=True)

    print("2/3 model events/s vs a bare SimPy M/M/1 loop (target >= 0.5x)", flush=True)
    bare = statistics.median(bare_mm1_events_per_s() for _ in range(3))
    model = statistics.median(model_events_per_s(SimOptions(strategy="individual", images=1000, users=2,
                                                            uplink_mbit=20.0))[0] for _ in range(3))
    results["events_ratio"] = model / bare
    print(f"   model {model:,.0f} events/s, bare M/M/1 {bare:,.0f} events/s, ratio {model / bare:.2f}", flush=True)

    grid = scenarios()
    print(f"3/3 {len(grid)} scenarios x 10 replications on {os.cpu_count()} cores (target <= 60 s)", flush=True)
    started = time.perf_counter()
    with multiprocessing.Pool(os.cpu_count()) as pool:
        events = sum(pool.imap_unordered(_one_scenario, longest_first(grid), chunksize=1))
    results["grid_seconds"] = time.perf_counter() - started
    cores = os.cpu_count() or 1
    simulated = 10 * sum(spec["images"] * spec["users"] for spec in grid)
    results["core_us_per_simulated_image"] = results["grid_seconds"] * cores / simulated * 1e6
    results["grid_events"] = events
    results["grid_floor_seconds"] = events / bare / cores
    print(f"   {results['grid_seconds']:.1f} s ({simulated:,} simulated images: "
          f"{results['core_us_per_simulated_image']:.0f} core-us each; 60 s would need "
          f"{60 * cores / simulated * 1e6:.0f})", flush=True)
    print(f"   {events:,} events ({events / simulated:.1f} per image): the bare loop's {bare:,.0f} events/s "
          f"would take {results['grid_floor_seconds']:.1f} s for them on {cores} cores", flush=True)
    return results


if __name__ == "__main__":
    OUT = Path("bench-results/sim_bench.json")
    measured = main()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(measured, indent=2))
    print(f"results in {OUT}")
