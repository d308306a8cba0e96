"""The model against reality: every real run of a matrix, predicted by the model with the same options.

``python -m benchmarks.validate bench-results/issue4 [--profile legacy=FITTED.toml ...]``: reads the
matrix's ``matrix.jsonl``, simulates each scenario (``--replications``), and prints the table the
issue asks for: failure rate (absolute difference), drop seconds (relative), WebSocket messages
and HTTP requests (real and model counts), with a mark where a tolerance is missed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from bulkbench.network import load_network
from sim.accuracy import DROP_SECONDS_TOLERANCE, FAILURE_RATE_TOLERANCE, within
from sim.run import SimOptions, run_sim


def compare_matrix(matrix_dir: Path, replications: int = 5, substitutes: dict[str, str] | None = None,
                   model: str = "") -> list[dict]:
    """Each real run of ``matrix_dir/matrix.jsonl`` beside the model's prediction with the same options."""
    substitutes = substitutes or {}
    rows = []
    for line in (Path(matrix_dir) / "matrix.jsonl").read_text().splitlines():
        entry = orjson.loads(line)
        spec, real = entry["spec"], entry["summary"]
        network = load_network("loopback", spec.get("uplink_mbit", 0.0))
        profile = spec.get("profile", "legacy")
        predicted = run_sim(SimOptions(
            strategy=spec["strategy"], images=spec["images"], users=spec.get("users", 1),
            profile=substitutes.get(profile, profile), seed=real["seed"], replications=replications,
            uplink_mbit=network.uplink_mbit, queue_ms=network.queue_ms, canvas=spec.get("canvas", "own"),
            workload=spec.get("workload", ""), model=model or None))
        drop_error = (predicted.drop_seconds - real["drop_seconds"]) / real["drop_seconds"]
        rows.append({
            "profile": profile, "strategy": spec["strategy"], "images": spec["images"],
            "users": spec.get("users", 1), "uplink_mbit": network.uplink_mbit,
            "real_failure_rate": real["failure_rate"], "sim_failure_rate": predicted.failure_rate,
            "real_drop_s": real["drop_seconds"], "sim_drop_s": predicted.drop_seconds, "drop_error": drop_error,
            "real_ws_sent": real["ws_messages_sent"], "sim_ws_sent": predicted.ws_messages_sent,
            "real_http": real["http_requests"], "sim_http": predicted.http_requests,
            "sim_failure_ci95": predicted.extra["ci95"]["failure_rate"],
            "within": within(predicted.failure_rate, real["failure_rate"], predicted.drop_seconds,
                             real["drop_seconds"]),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("matrix_dir")
    parser.add_argument("--profile", action="append", default=[], help="NAME=PROFILE.toml to simulate NAME with")
    parser.add_argument("--replications", type=int, default=5)
    parser.add_argument("--out", default="", help="write the rows as JSON here")
    parser.add_argument("--model", default="", help="model parameters TOML (default scenarios/model.toml)")
    args = parser.parse_args(argv)
    substitutes = dict(item.split("=", 1) for item in args.profile)
    rows = compare_matrix(Path(args.matrix_dir), args.replications, substitutes, args.model)
    head = (f"{'profile':<10} {'strategy':<10} {'imgs':>5} {'users':>5} {'Mbit':>5} | {'fail real':>9} {'sim':>6} | "
            f"{'drop real':>9} {'sim':>7} {'err':>6} | {'ws real':>8} {'sim':>8} | {'http real':>9} {'sim':>8}")
    print(head)
    print("-" * len(head))
    misses = 0
    for r in rows:
        fail_miss = abs(r["sim_failure_rate"] - r["real_failure_rate"]) > FAILURE_RATE_TOLERANCE
        drop_miss = abs(r["drop_error"]) > DROP_SECONDS_TOLERANCE
        misses += fail_miss or drop_miss
        print(f"{r['profile']:<10} {r['strategy']:<10} {r['images']:>5} {r['users']:>5} {r['uplink_mbit']:>5g} | "
              f"{r['real_failure_rate']:>9.3f} {r['sim_failure_rate']:>6.3f}{'*' if fail_miss else ' '}| "
              f"{r['real_drop_s']:>9.1f} {r['sim_drop_s']:>7.1f} {r['drop_error']:>+6.0%}{'*' if drop_miss else ' '}| "
              f"{r['real_ws_sent']:>8.0f} {r['sim_ws_sent']:>8.0f} | {r['real_http']:>9.0f} {r['sim_http']:>8.0f}")
    print(f"\n{len(rows) - misses}/{len(rows)} within tolerance (failure rate +-{FAILURE_RATE_TOLERANCE}, "
          f"drop time +-{DROP_SECONDS_TOLERANCE:.0%}); * marks a miss")
    if args.out:
        Path(args.out).write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
