"""Fixed model scenarios whose summaries are recorded (``tests/test_fingerprints.py``) and timed
(``benchmarks/performance/ab_model_speed.py``): a change to the model's inside must leave them as they were."""

from __future__ import annotations

import json
from typing import Any

from sim.run import SimOptions, run_sim

IMAGES = 60
"""Small drops: the set runs in seconds, and still reaches every mechanism below."""

SCENARIOS: dict[str, dict[str, Any]] = {
    **{f"{profile}-{strategy}-{users}u-{mbit:g}mbit": dict(profile=profile, strategy=strategy, users=users,
                                                            uplink_mbit=mbit, images=IMAGES)
       for profile in ("legacy", "optimized")
       for strategy in ("individual", "batched", "chunked", "individual:fc1316b", "pipelined")
       for users in (1, 5) for mbit in (0.0, 10.0)},
    # the per-IP limiter: uploads and thumbnail GETs in one bucket, 429s, blocks, retries
    "ratelimit-individual-1u-500": dict(profile="legacy-ratelimit", strategy="individual", images=500),
    "ratelimit-fc1316b-1u-300": dict(profile="legacy-ratelimit", strategy="individual:fc1316b", images=300),
    "ratelimit-batched-5u": dict(profile="legacy-ratelimit", strategy="batched", users=5, images=120),
    "ratelimit-pipelined-5u": dict(profile="legacy-ratelimit", strategy="pipelined", users=5, images=120),
    # the cliff: individual's single-flight queue on a slow uplink loses the tail to its orphan sweep
    "legacy-individual-1u-10mbit-400": dict(profile="legacy", strategy="individual", images=400, uplink_mbit=10.0),
    # overload: queues full, 503 + Retry-After, resends
    "overload-batched-5u": dict(profile="overload", strategy="batched", users=5, images=200),
    "overload-individual-5u": dict(profile="overload", strategy="individual", users=5, images=200),
    # replications, each its own seed: the interval is part of the fingerprint
    "legacy-individual-3rep-20mbit": dict(profile="legacy", strategy="individual", images=200, uplink_mbit=20.0,
                                          replications=3),
    "shared-canvas-5u": dict(profile="legacy", strategy="batched", users=5, images=IMAGES, canvas="shared"),
}


def fingerprint(name: str) -> dict[str, Any]:
    """One scenario's summary, all of it but the package version."""
    summary = json.loads(json.dumps(run_sim(SimOptions(**SCENARIOS[name])).to_json()))
    summary.pop("version", None)
    return summary
