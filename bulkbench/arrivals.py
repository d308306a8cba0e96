"""When users arrive: all at once, at a rate, or in stages (k6's ``stages``, Locust's ``LoadTestShape``).

Each user drops one folder and leaves, so a stage says how many users have *arrived* by its end, never
fewer than the stage before: ``"10s:5,30s:20"`` brings 5 users evenly over the first 10 s, then 15 more
over the next 30 s. The real engine's shape (``loadtests/locustfile.py``) and the model start user ``k``
at ``arrival_times(...)[k]``, so both engines see the same arrivals.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bulkbench.config import ConfigError

STAGES_ENV = "BULKBENCH_STAGES"
"""How ``run`` hands the stages to the locustfile: Locust picks a shape class when it imports the
locustfile, before its options are parsed, so a shape exists only in runs that ask for one."""
MAX_STAGES = 100
MAX_STAGE_S = 86_400.0
_STAGE = re.compile(r"^\s*(\d+(?:\.\d+)?)(ms|s|m)?\s*:\s*(\d+)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


@dataclass(frozen=True, slots=True)
class Stage:
    duration_s: float
    users: int
    """Users arrived by the end of this stage (counted from the start of the run)."""


def parse_stages(text: str) -> tuple[Stage, ...]:
    """``DURATION:USERS,...`` (durations in ms, s or m; a bare number is seconds)."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise ConfigError(f"stages {text!r}: give DURATION:USERS[,DURATION:USERS...], e.g. 10s:5,30s:20")
    if len(parts) > MAX_STAGES:
        raise ConfigError(f"stages: {len(parts)} stages, over MAX_STAGES={MAX_STAGES}")
    stages, before = [], 0
    for part in parts:
        match = _STAGE.match(part)
        if match is None:
            raise ConfigError(f"stage {part.strip()!r}: not DURATION:USERS (e.g. 10s:5)")
        duration_s = float(match[1]) * _UNIT_S[match[2]]
        users = int(match[3])
        if duration_s > MAX_STAGE_S:
            raise ConfigError(f"stage {part.strip()!r}: over MAX_STAGE_S={MAX_STAGE_S:g} s")
        if users < before:
            raise ConfigError(f"stage {part.strip()!r}: {users} users after {before}; a user who arrived has "
                              "dropped or is dropping, so the count of arrived users never falls")
        stages.append(Stage(duration_s, users))
        before = users
    if before < 1:
        raise ConfigError(f"stages {text!r}: no user ever arrives")
    return tuple(stages)


def total_users(stages: tuple[Stage, ...]) -> int:
    return stages[-1].users


def arrived(stages: tuple[Stage, ...], t: float) -> int:
    """Users arrived by ``t`` seconds: each stage ramps linearly from the one before (an instant stage, a step)."""
    start, before = 0.0, 0
    for stage in stages:
        if t < start + stage.duration_s:
            return before + math.floor((stage.users - before) * (t - start) / stage.duration_s)
        start, before = start + stage.duration_s, stage.users
    return before


def arrival_times(stages: tuple[Stage, ...]) -> list[float]:
    """When each user arrives: user ``k`` at the first moment ``arrived`` reaches ``k + 1``."""
    times, start, before = [], 0.0, 0
    for stage in stages:
        step = stage.users - before
        if stage.duration_s:
            times.extend(start + stage.duration_s * (k + 1) / step for k in range(step))
        else:
            times.extend([start] * step)
        start, before = start + stage.duration_s, stage.users
    return times


def at_rate(users: int, rate_per_s: float) -> tuple[Stage, ...]:
    """``users`` arriving at ``rate_per_s`` (Locust's spawn rate: the first at once, then one every 1/rate s)."""
    return (Stage(0.0, 1), Stage((users - 1) / rate_per_s, users)) if users > 1 else (Stage(0.0, 1),)


def arrival_plan(users: int, arrival_rate: float = 0.0, stages: str = "") -> tuple[Stage, ...] | None:
    """The arrivals a scenario asks for (``None``: all ``users`` at once); refuses what contradicts itself."""
    if stages and arrival_rate:
        raise ConfigError("give --stages or --arrival-rate, not both")
    if arrival_rate < 0:
        raise ConfigError(f"--arrival-rate {arrival_rate:g}: a rate is positive")
    if stages:
        plan = parse_stages(stages)
        if users not in (1, total_users(plan)):
            raise ConfigError(f"--users {users} but the stages bring {total_users(plan)}: drop --users")
        return plan
    return at_rate(users, arrival_rate) if arrival_rate else None


def ends_s(stages: tuple[Stage, ...] | None) -> float:
    """When the last user has arrived."""
    return sum(stage.duration_s for stage in stages) if stages else 0.0
