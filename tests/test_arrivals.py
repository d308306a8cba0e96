"""When users arrive (``bulkbench.arrivals``): the stages' grammar, its limits, and the model's arrivals."""

from __future__ import annotations

import pytest

from bulkbench.arrivals import (
    MAX_STAGES,
    Stage,
    arrival_plan,
    arrival_times,
    arrived,
    at_rate,
    parse_stages,
)
from bulkbench.config import ConfigError
from sim.run import SimOptions, run_sim


def test_stages_ramp_the_users_arrived_and_each_user_arrives_when_the_count_reaches_it() -> None:
    stages = parse_stages("10s:5, 30s:20")
    assert stages == (Stage(10.0, 5), Stage(30.0, 20))
    assert [arrived(stages, t) for t in (0, 1.9, 2.0, 10.0, 12.0, 40.0, 1e6)] == [0, 0, 1, 5, 6, 20, 20]
    times = arrival_times(stages)
    assert len(times) == 20 and times[:5] == [2.0, 4.0, 6.0, 8.0, 10.0] and times[-1] == 40.0
    assert all(arrived(stages, at) == k + 1 for k, at in enumerate(times))
    assert parse_stages("500ms:2,1m:3") == (Stage(0.5, 2), Stage(60.0, 3))
    assert arrival_times(parse_stages("0s:3")) == [0.0, 0.0, 0.0], "an instant stage is a step"


def test_a_rate_is_a_stage_as_locust_spawns_it() -> None:
    assert arrival_times(at_rate(3, 0.5)) == [0.0, 2.0, 4.0]
    assert arrival_plan(4) is None
    assert arrival_plan(3, arrival_rate=0.5) == at_rate(3, 0.5)


@pytest.mark.parametrize("text, says", [
    ("", "DURATION:USERS"),
    ("10s", "not DURATION:USERS"),
    ("10h:5", "not DURATION:USERS"),
    ("10s:5,5s:2", "never falls"),
    ("10s:0", "no user ever arrives"),
    ("100000s:3", "MAX_STAGE_S"),
    (",".join(["1s:1"] * (MAX_STAGES + 1)), "MAX_STAGES"),
])
def test_bad_stages_are_refused_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_stages(text)


def test_stages_and_a_rate_or_other_users_contradict_each_other() -> None:
    with pytest.raises(ConfigError, match="not both"):
        arrival_plan(3, arrival_rate=1.0, stages="3s:3")
    with pytest.raises(ConfigError, match="drop --users"):
        arrival_plan(5, stages="3s:3")
    assert arrival_plan(3, stages="3s:3") == (Stage(3.0, 3),)


def test_the_model_starts_each_user_when_it_arrives() -> None:
    staged = run_sim(SimOptions(strategy="batched", profile="optimized", images=5, stages="4s:2,6s:4"))
    assert staged.users == 4 and staged.images_ok == 20
    at_once = run_sim(SimOptions(strategy="batched", profile="optimized", images=5, users=4))
    # the first user arrives at 2 s, the last at 10 s: the drop spans the 8 s between, and then some
    assert 8.0 < staged.drop_seconds < 8.0 + 2 * at_once.drop_seconds, (staged.drop_seconds, at_once.drop_seconds)
