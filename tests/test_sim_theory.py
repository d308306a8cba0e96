"""The model's components against queueing theory: M/M/1, M/M/c (Erlang C) and Little's law."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Generator

import pytest
import simpy

from bulkbench.model_params import ModelParams
from bulkbench.profile import load_profile
from bulkbench.workload import WorkloadSpec
from sim.components import ConnectionPool, Link, SharedCores, Stage
from sim.events import call_at
from sim.run import SimOptions, simulate_once

CUSTOMERS = 150_000


def erlang_c(c: int, offered: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load a = lambda/mu."""
    rho = offered / c
    tail = offered**c / math.factorial(c) / (1 - rho)
    return tail / (sum(offered**k / math.factorial(k) for k in range(c)) + tail)


def poisson_arrivals(env: simpy.Environment, rng: random.Random, rate: float, count: int,
                     customer) -> Generator:
    for _ in range(count):
        yield env.timeout(rng.expovariate(rate))
        env.process(customer())


def test_stage_as_mm1_matches_the_mean_wait() -> None:
    env, rng = simpy.Environment(), random.Random(7)
    lam, mu = 0.5, 1.0
    stage = Stage(env, "ops", workers=1)
    env.process(poisson_arrivals(env, rng, lam, CUSTOMERS, lambda: stage.serve(rng.expovariate(mu))))
    env.run()
    theory = (lam / mu) / (mu - lam)  # Wq = rho / (mu - lambda)
    measured = sum(stage.waits) / len(stage.waits)
    assert measured == pytest.approx(theory, rel=0.03)


def test_connection_pool_as_mmc_matches_erlang_c() -> None:
    env, rng = simpy.Environment(), random.Random(11)
    connections, lam, mu = 6, 4.5, 1.0
    pool = ConnectionPool(env, connections)
    waited = []

    def request() -> Generator:
        arrived = env.now
        with pool.connections.request() as connection:
            yield connection
            waited.append(env.now > arrived)
            yield env.timeout(rng.expovariate(mu))

    env.process(poisson_arrivals(env, rng, lam, CUSTOMERS, request))
    env.run()
    assert sum(waited) / len(waited) == pytest.approx(erlang_c(connections, lam / mu), rel=0.03)


def test_a_four_worker_stage_holds_the_mean_number_of_jobs_of_an_mm4_queue() -> None:
    """Mean jobs in the stage (time-averaged, its own occupancy record) against M/M/4 theory:
    L = a + Erlang C(4, a) x rho / (1 - rho), a = lambda / mu = 3, rho = 0.75."""
    env, rng = simpy.Environment(), random.Random(3)
    stage = Stage(env, "thumbnail", workers=4)
    env.process(poisson_arrivals(env, rng, 3.0, CUSTOMERS // 2, lambda: stage.serve(rng.expovariate(1.0))))
    env.run()
    offered, rho = 3.0, 0.75
    expected = offered + erlang_c(4, offered) * rho / (1 - rho)
    assert stage.occupancy.mean_jobs(env.now) == pytest.approx(expected, rel=0.05)


def test_littles_law_holds_on_a_simulated_drops_time_series() -> None:
    """L from the sampled queue-depth series equals lambda x W from the stage's own accounting."""
    profile = load_profile("legacy")
    thumbnails = dataclasses.replace(profile.stage("thumbnail"), work_ms=20.0, work_per_item_ms=5.0)
    profile = dataclasses.replace(profile, stages={**profile.stages, "thumbnail": thumbnails})
    options = SimOptions(strategy="batched", images=300, users=5, uplink_mbit=0)
    world_seen = {}
    rep = simulate_once(options, 0, profile, WorkloadSpec(images=300), ModelParams(service_cv=1.0),
                        sample_every_s=0.01, keep=world_seen)
    stage = world_seen["world"].server.stages["thumbnail"]
    horizon = rep.series[-1]["t"] + 0.01
    sampled = [row["queue_depth.thumbnail"] + row["busy_workers.thumbnail"] for row in rep.series]
    mean_jobs = sum(sampled) / len(sampled)
    occupancy = stage.occupancy
    assert occupancy.completions > 1000 and mean_jobs > 0.5  # a busy stage, not a trivial zero
    assert mean_jobs == pytest.approx(occupancy.arrivals / horizon * occupancy.time_in_system
                                      / occupancy.completions, rel=0.02)


def test_the_link_shares_its_rate_among_bulk_transfers() -> None:
    env = simpy.Environment()
    link = Link(env, rate_bytes_per_s=1_000_000, queue_s=0.2, base_delay_s=0.0)
    finished = {}

    def send(name: str, nbytes: int) -> Generator:
        yield from link.transfer(nbytes)
        finished[name] = env.now

    env.process(send("small", 500_000))
    env.process(send("large", 1_500_000))
    env.run()
    # both share 1 MB/s: the small one ends at 1.0 s; the large one has 1.0 MB left, alone: 2.0 s
    assert finished["small"] == pytest.approx(1.0) and finished["large"] == pytest.approx(2.0)
    assert link.frame_delay(1000) == pytest.approx(0.001)  # idle: no standing queue


def test_shared_cores_split_their_speed_among_the_jobs_on_them() -> None:
    env = simpy.Environment()
    cores = SharedCores(env, cores=1)
    finished: dict[str, float] = {}

    def job(name: str, work_s: float, at: float) -> None:
        call_at(env, at, lambda _event: cores.run(work_s, lambda: finished.__setitem__(name, env.now)))

    job("long", 10.0, 0.0)
    job("short", 0.1, 1.0)  # at half speed while the long one runs: 0.2 s, and the long one 0.1 s later
    env.run()
    assert finished["short"] == pytest.approx(1.2)
    assert finished["long"] == pytest.approx(10.1)

    env, finished = simpy.Environment(), {}
    cores = SharedCores(env, cores=2)
    for name in "abc":  # three jobs on two cores: each at 2/3 of a core
        job(name, 1.0, 0.0)
    env.run()
    assert finished == pytest.approx({"a": 1.5, "b": 1.5, "c": 1.5})


def test_shared_cores_as_mm1_ps_give_a_job_a_time_in_system_proportional_to_its_size() -> None:
    """M/M/1 processor sharing: a job of size x spends x / (1 - rho) in the system, whatever its size
    (first come, first served makes a short job wait as long as a long one)."""
    env, rng = simpy.Environment(), random.Random(11)
    lam, mu, count = 0.6, 1.0, 60_000
    cores = SharedCores(env, cores=1)
    stretch: list[tuple[float, float]] = []

    def customer() -> Generator:
        size, arrived = rng.expovariate(mu), env.now
        cores.run(size, lambda: stretch.append((size, (env.now - arrived) / size)))
        yield from ()

    env.process(poisson_arrivals(env, rng, lam, count, customer))
    env.run()
    expected = 1 / (1 - lam / mu)
    small = [s for size, s in stretch if size < 0.5]
    large = [s for size, s in stretch if size > 2.0]
    assert len(stretch) == count
    assert sum(small) / len(small) == pytest.approx(expected, rel=0.08)
    assert sum(large) / len(large) == pytest.approx(expected, rel=0.08)
