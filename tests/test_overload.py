"""Ten times the sustainable load, briefly: refusals with Retry-After, not silence; then service as before.

The benchmark (``python -m benchmarks.hardening.overload_bench``) measures it at length and states the RSS;
this runs it for two seconds with a generous answer deadline (the machine is shared), and checks
what must hold whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from benchmarks.hardening.overload_bench import run_overload


def test_ten_times_the_sustainable_load_is_refused_with_retry_after_and_the_server_recovers(tmp_path: Path) -> None:
    report = asyncio.run(run_overload(factor=10, seconds=2, measure_s=2, timeout_s=30, sockets_n=4,
                                      data_dir=tmp_path / "data"))
    for kind, refused in (("uploads", "http_503"), ("ops", "overloaded")):
        outcomes = report["overload"][kind]["outcomes"]
        assert outcomes.get(refused, 0) > 0, f"{kind}: nothing refused at 10x: {outcomes}"
        assert set(outcomes) <= {"ok", "ack", refused}, f"{kind}: {outcomes}"  # no timeouts, no errors
        assert report["overload"][kind]["missing_retry_after"] == 0
        assert set(report["recovery"][kind]["outcomes"]) <= {"ok", "ack"}  # served again, nothing refused
        assert report["recovery"][f"{kind}_per_s"] > 0
    assert report["drained"]
    assert report["sockets_closed"] == []
    assert report["rss_mib"]["high_water"] < 512
