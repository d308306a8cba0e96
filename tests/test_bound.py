"""The physical bound (``bulkbench.bound``): each term, and that no engine's drop beats it."""

from __future__ import annotations

import dataclasses

import pytest

from bulkbench.bound import physical_bound
from bulkbench.model_params import load_model_params
from bulkbench.network import NetworkSpec, load_network
from bulkbench.profile import RateLimit, load_profile
from bulkbench.workload import draw_images, load_workload
from sim.run import SimOptions, run_sim

PARAMS = load_model_params()
WORKLOAD = dataclasses.replace(load_workload(None), images=60, seed=3)


def images(users: int = 1, count: int = 60) -> list[list]:
    spec = dataclasses.replace(WORKLOAD, images=count)
    return [draw_images(spec, user=user) for user in range(users)]


def test_goodput_at_mtu_1500_is_the_rate_less_its_headers() -> None:
    network = NetworkSpec(uplink_mbit=10.0)
    assert network.goodput_bytes_per_s == pytest.approx(10e6 / 8 * 1448 / 1514)
    assert 1 - network.goodput_bytes_per_s / (10e6 / 8) == pytest.approx(0.044, abs=0.001)
    assert NetworkSpec().goodput_bytes_per_s == float("inf")


def test_the_link_term_is_bytes_over_goodput_and_a_shared_link_carries_every_user() -> None:
    optimized = load_profile("optimized")
    one = physical_bound(images(1), optimized, load_network("uplink-10"), PARAMS)
    assert one.binding == "link"
    sent = sum(i.size_bytes + PARAMS.request_overhead_bytes for i in images(1)[0])
    assert one.link_s == pytest.approx(sent / NetworkSpec(uplink_mbit=10.0).goodput_bytes_per_s)
    faster = physical_bound(images(1), optimized, load_network("uplink-20"), PARAMS)
    assert faster.link_s == pytest.approx(one.link_s / 2)
    five = images(5)
    shared = physical_bound(five, optimized, load_network("uplink-10"), PARAMS)
    own = physical_bound(five, optimized, load_network("uplink-10"), PARAMS, per_user_link=True)
    alone = [physical_bound([u], optimized, load_network("uplink-10"), PARAMS).link_s for u in five]
    assert shared.link_s == pytest.approx(sum(alone))
    assert own.link_s == pytest.approx(max(alone))


def test_synchronous_thumbnails_are_on_the_cores_and_asynchronous_ones_are_not() -> None:
    legacy = load_profile("legacy")
    loopback = load_network("loopback")
    sync = physical_bound(images(), legacy, loopback, PARAMS)
    later = physical_bound(images(), dataclasses.replace(legacy, thumbnails="async"), loopback, PARAMS)
    assert sync.binding == "cpu" and sync.link_s == 0.0
    assert later.cpu_s < sync.cpu_s / 10
    halved = physical_bound(images(), legacy, loopback, dataclasses.replace(PARAMS, server_cpus=4))
    assert halved.cpu_s == pytest.approx(sync.cpu_s / 2)


def test_a_rate_limit_costs_whole_windows_per_address() -> None:
    limited = dataclasses.replace(load_profile("legacy"), rate_limit=RateLimit(requests=25, window_s=60.0))
    bound = physical_bound(images(2), limited, load_network("loopback"), PARAMS)
    assert bound.limit_s == 120.0  # 60 uploads at 25 a window: 3 windows, 2 of them waited out
    assert bound.binding == "limit"
    assert bound.seconds == pytest.approx(120.0 + bound.sequential_s)  # then its last upload's work


@pytest.mark.parametrize("strategy", ["individual", "batched", "chunked", "pipelined"])
def test_no_model_drop_beats_its_bound(strategy: str) -> None:
    """With every job at its mean cost (a drawn cost may be below it, and the bound is of means). The
    model's link carries a request's headers beside the bulk flows, not in them: 0.5 % of slack."""
    legacy = load_profile("legacy")
    at_means = dataclasses.replace(legacy, stages={name: dataclasses.replace(spec, work_cv=0.0)
                                                   for name, spec in legacy.stages.items()})
    for uplink in (0.0, 20.0):
        summary = run_sim(SimOptions(strategy=strategy, images=40, profile="legacy", uplink_mbit=uplink, seed=2),
                          profile_override=at_means)
        assert summary.bound_seconds and summary.bound_seconds > 0
        assert summary.drop_seconds >= 0.995 * summary.bound_seconds, (uplink, summary.extra["bound"])
        assert summary.drop_over_bound == pytest.approx(summary.drop_seconds / summary.bound_seconds, abs=1e-3)


def test_users_arriving_late_bound_the_drop_by_the_last_arrival_and_its_own_drop_alone() -> None:
    optimized, network = load_profile("optimized"), load_network("uplink-20")
    three = images(3, count=20)
    at_once = physical_bound(three, optimized, network, PARAMS)
    staggered = physical_bound(three, optimized, network, PARAMS, arrivals_s=[5.0, 30.0, 60.0])
    last_alone = physical_bound([three[2]], optimized, network, PARAMS).seconds
    assert staggered.binding == "arrivals" and staggered.arrivals_s == 55.0
    assert staggered.seconds == pytest.approx(55.0 + last_alone) and staggered.seconds > at_once.seconds
    assert physical_bound(three, optimized, network, PARAMS, arrivals_s=[0.0, 0.0, 0.0]) == at_once
    summary = run_sim(SimOptions(strategy="batched", images=20, profile="optimized", uplink_mbit=20.0,
                                 stages="0s:1,60s:3"))
    assert summary.extra["bound"]["binding"] == "arrivals"
    assert summary.drop_seconds >= 0.995 * summary.bound_seconds
