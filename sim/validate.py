"""Recorded runs held to one another: the model to real runs, our server to the real app, the
protocol-level client to the real one in a browser (``bulkbench validate``).

``bulkbench validate examples/validation/issue4 [--profile legacy=FITTED.toml ...]`` reads the matrix's
``matrix.jsonl``, simulates each scenario (``--replications``) and prints failure rate (absolute
difference), drop seconds (relative), WebSocket messages and HTTP requests, 429s and upload attempts,
with a mark where a tolerance is missed; ``--servers`` and ``--engines`` compare recorded rows only.
It exits 1 when a row misses, so a pipeline can gate on it.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bulkbench.course import COURSE_FILE, COURSE_TIMES_S, STEPS, counts_at
from bulkbench.network import load_network
from bulkbench.target import APP_TARGETS, app_client_strategy, load_target
from sim.accuracy import (
    COUNT_TOLERANCE,
    DROP_SECONDS_TOLERANCE,
    FAILURE_RATE_TOLERANCE,
    count_within,
    within,
    within_runs,
)
from sim.pool import run_each
from sim.run import SimOptions, course_of, run_sim, t95


def read_matrix(matrix_dir: Path) -> list[dict]:
    """The recorded rows; a folder without them is bad input (FileNotFoundError: exit 2), not zero rows."""
    path = Path(matrix_dir) / "matrix.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"{matrix_dir}: no matrix.jsonl (record one with python -m benchmarks.validation.matrix)")
    return [orjson.loads(line) for line in path.read_text().splitlines() if line.strip()]


def model_profile_of(spec: dict) -> str:
    """The profile that stands for a matrix row's server: its own, or the real app's target's."""
    if "app" in spec:
        return load_target(APP_TARGETS[spec["app"]]).model_profile
    return spec.get("profile", "legacy")


def strategy_of(spec: dict) -> str:
    """The strategy a matrix row ran, or, for a browser row (the app's own client), the one that stands
    for that client in the model (its target's ``app.client_strategy``)."""
    if "strategy" in spec:
        return spec["strategy"]
    if spec.get("engine") == "browser" and "app" in spec:
        stand_in = app_client_strategy(spec["app"])
        if stand_in:
            return stand_in
    raise ValueError(f"a matrix row without a strategy the model can run: {spec}")


def cut_at_s(spec: dict, real: dict) -> float:
    """When the real run was cut (0: it was not): its ``drop_cap_s``, or a browser run's drop time where it
    reached its hard cap. The model stops there too, its open images unfinished, as the real run's were."""
    if spec.get("drop_cap_s"):
        return float(spec["drop_cap_s"])
    return float(real["drop_seconds"]) if real.get("extra", {}).get("capped") else 0.0


def pinned_profiles(matrix_dir: Path) -> dict[str, str]:
    """The profiles a matrix was recorded with, where they differ from today's: ``profiles/NAME.toml`` beside
    its ``matrix.jsonl``. A recording is of one server, and the model's costs (``work_ms`` ...) are fitted
    to a server; when the server changes (legacy's thumbnails, #11) the old recordings keep the profile,
    and the costs, of the server they measured."""
    folder = Path(matrix_dir) / "profiles"
    return {path.stem: str(path) for path in sorted(folder.glob("*.toml"))} if folder.is_dir() else {}


def pinned_layer(matrix_dir: Path) -> str:
    """The strategies layer a matrix was recorded with (``strategies.toml`` beside its ``matrix.jsonl``,
    from ``bulkbench calibrate --page``): its client stand-ins ran with the page costs of the machine the
    browser rows were made on, and the model runs them so too. "": the shipped sets."""
    path = Path(matrix_dir) / "strategies.toml"
    return str(path) if path.is_file() else ""


def profiles_for(matrix_dir: Path, substitutes: dict[str, str] | None = None) -> dict[str, str]:
    """Profile name -> the file the model simulates it with: the folder's pinned ones, then ``--profile``."""
    return {**pinned_profiles(matrix_dir), **(substitutes or {})}


def compare_matrix(matrix_dir: Path, replications: int = 5, substitutes: dict[str, str] | None = None,
                   model: str = "", layer: str = "", processes: int = 0) -> list[dict]:
    """Each real run of ``matrix_dir/matrix.jsonl`` beside the model's prediction with the same options;
    ``layer``: a strategies layer instead of the folder's own; ``processes``: as ``sim.pool.run_each``."""
    substitutes = profiles_for(matrix_dir, substitutes)
    layer = layer or pinned_layer(matrix_dir)
    entries = read_matrix(matrix_dir)
    profiles = [model_profile_of(entry["spec"]) for entry in entries]
    options = []
    for entry, profile in zip(entries, profiles, strict=True):
        spec, real = entry["spec"], entry["summary"]
        network = load_network("loopback", spec.get("uplink_mbit", 0.0))
        options.append(SimOptions(
            strategy=strategy_of(spec), strategy_layer=layer, images=spec["images"], users=spec.get("users", 1),
            profile=substitutes.get(profile, profile), seed=real["seed"], replications=replications,
            uplink_mbit=network.uplink_mbit, queue_ms=network.queue_ms, canvas=spec.get("canvas", "own"),
            workload=spec.get("workload", ""), model=model or None, horizon_s=cut_at_s(spec, real)))
    predictions = run_each(run_sim, options, processes, size=lambda o: o.images * o.users * o.replications)
    rows = []
    for entry, profile, predicted, option in zip(entries, profiles, predictions, options, strict=True):
        spec, real = entry["spec"], entry["summary"]
        strategy = option.strategy
        drop_error = (predicted.drop_seconds - real["drop_seconds"]) / real["drop_seconds"]
        rows.append({
            "profile": profile, "strategy": strategy, "engine": spec.get("engine", "locust"), "images": spec["images"],
            "users": spec.get("users", 1), "uplink_mbit": option.uplink_mbit,
            "real_failure_rate": real["failure_rate"], "sim_failure_rate": predicted.failure_rate,
            "real_drop_s": real["drop_seconds"], "sim_drop_s": predicted.drop_seconds, "drop_error": drop_error,
            "real_ws_sent": real["ws_messages_sent"], "sim_ws_sent": predicted.ws_messages_sent,
            "real_http": real["http_requests"], "sim_http": predicted.http_requests,
            "real_429": real["extra"].get("http_by_status", {}).get("429", 0),
            "sim_429": predicted.extra["http_by_status"].get("429", 0),
            "real_upload_attempts": real["extra"].get("upload_attempts", real["images"] * real["users"]),
            "sim_upload_attempts": predicted.extra["upload_attempts"],
            "target": real["profile"],
            "sim_failure_ci95": predicted.extra["ci95"]["failure_rate"],
            # the page's heartbeat dropped its socket: a browser's count, the model's mean over its replications
            "real_reopened": real["extra"].get("sockets_reopened"),
            "sim_reopened": predicted.extra.get("sockets_reopened"),
        })
        row = rows[-1]
        row["counts_within"] = (count_within(row["sim_429"], row["real_429"])
                                and count_within(row["sim_upload_attempts"], row["real_upload_attempts"]))
        row["within"] = within(predicted.failure_rate, real["failure_rate"], predicted.drop_seconds,
                               real["drop_seconds"]) and row["counts_within"]
    return rows


def _count(value: float | None) -> str:
    """A count, or "-" where the run could not say (a page without a heartbeat, a browser run recorded before
    the engine kept its socket's events)."""
    return "-" if value is None else f"{value:g}"


def _figures(summary: dict) -> dict:
    extra = summary["extra"]
    return {"failure_rate": summary["failure_rate"], "drop_s": summary["drop_seconds"],
            "http_429": extra.get("http_by_status", {}).get("429", 0),
            "upload_attempts": extra.get("upload_attempts", summary["images"] * summary["users"]),
            "frames_sent": extra.get("frames_sent", {}), "causes": summary["failures_by_cause"]}


def compare_spread(matrix_dir: Path, replications: int = 10, model: str = "",
                   substitutes: dict[str, str] | None = None, layer: str = "", processes: int = 0) -> list[dict]:
    """Scenarios run several times (rows that differ only in their ``seed``, so in their images too, or only
    in their ``repeat``): the real runs' spread beside the model's, one simulated run per seed
    1..``replications``: its mean, its 95 % prediction interval for one run (mean +- t s sqrt(1 + 1/n)),
    and how many real runs fall inside. Where a scenario sits on a cliff one real run says little; its
    spread is what the model must cover. Where the real runs were cut (their cap), the model is cut there too
    (at the median of their cuts).
    ``layer``: a strategies layer instead of the folder's own; ``processes``: as ``sim.pool.run_each``."""
    scenarios = _scenarios(read_matrix(matrix_dir), matrix_dir, model, substitutes, layer)
    rows = []
    for (spec, entries, profile, options), runs in zip(
            scenarios, _each_seed(run_sim, scenarios, replications, processes), strict=True):
        strategy = options.strategy
        rates = [run.failure_rate for run in runs]
        mean = statistics.fmean(rates)
        half = t95(len(rates) - 1) * statistics.stdev(rates) * math.sqrt(1 + 1 / len(rates))
        interval = [max(0.0, mean - half), min(1.0, mean + half)]
        real = sorted(e["summary"]["failure_rate"] for e in entries)
        rows.append({
            "profile": profile, "strategy": strategy, "engine": spec.get("engine", "locust"),
            "images": spec["images"],
            "users": spec.get("users", 1), "uplink_mbit": options.uplink_mbit,
            "real_failure_rates": real,
            "real_op_ack_p50_ms": sorted(e["summary"]["op_ack_ms"]["p50"] for e in entries),
            "sim_failure_rates": sorted(rates), "sim_failure_rate": mean, "sim_pi95": interval,
            "sim_op_ack_p50_ms": statistics.fmean(run.op_ack_ms["p50"] or 0.0 for run in runs),
            "inside": sum(interval[0] - 1e-9 <= r <= interval[1] + 1e-9 for r in real),
            "mean_within": abs(mean - statistics.fmean(real)) <= FAILURE_RATE_TOLERANCE})
    return rows


def _scenarios(entries: list[dict], matrix_dir: Path, model: str, substitutes: dict[str, str] | None,
               layer: str) -> list[tuple[dict, list[dict], str, SimOptions]]:
    """``entries`` grouped by scenario (their spec without ``seed`` and ``repeat``), each with the profile that
    stands for its server and the model's options for it (no seed yet). Where the real runs were cut (their
    cap), the model is cut too, at the median of their cuts: one cap, met a few seconds apart."""
    groups: dict[str, list[dict]] = {}
    for entry in entries:
        scenario = {k: v for k, v in entry["spec"].items() if k not in ("seed", "repeat")}
        groups.setdefault(orjson.dumps(scenario, option=orjson.OPT_SORT_KEYS).decode(), []).append(entry)
    pinned, layer = profiles_for(matrix_dir, substitutes), layer or pinned_layer(matrix_dir)
    scenarios = []
    for key, grouped in groups.items():
        spec = orjson.loads(key)
        network = load_network("loopback", spec.get("uplink_mbit", 0.0))
        cuts = [cut for entry in grouped if (cut := cut_at_s(entry["spec"], entry["summary"]))]
        profile, strategy = model_profile_of(spec), strategy_of(spec)
        scenarios.append((spec, grouped, profile, SimOptions(
            strategy=strategy, strategy_layer=layer, images=spec["images"], users=spec.get("users", 1),
            profile=pinned.get(profile, profile), uplink_mbit=network.uplink_mbit, queue_ms=network.queue_ms,
            workload=spec.get("workload", ""), model=model or None,
            horizon_s=statistics.median(cuts) if cuts else 0.0)))
    return scenarios


def _each_seed(work: Callable[[SimOptions], Any], scenarios: list[tuple[dict, list[dict], str, SimOptions]],
               replications: int, processes: int) -> list[list[Any]]:
    """``work(options)`` of every scenario for seeds 1..``replications``, on every core: one list per scenario."""
    done = run_each(work, [dataclasses.replace(options, seed=seed) for *_, options in scenarios
                           for seed in range(1, replications + 1)], processes, size=lambda o: o.images * o.users)
    return [done[at:at + replications] for at in range(0, len(done), replications)]


def compare_course(matrix_dir: Path, replications: int = 10, model: str = "", layer: str = "",
                   processes: int = 0, at_s: tuple[float, ...] = COURSE_TIMES_S,
                   substitutes: dict[str, str] | None = None) -> list[dict]:
    """The browser rows kept in ``course.jsonl`` (``bulkbench.course``), scenario by scenario: how many images
    each real page had taken through each step at ``at_s`` (those before the scenario's cap), beside the model's
    runs for seeds 1..``replications``. The loss at the cap can agree while the course does not."""
    kept = Path(matrix_dir) / COURSE_FILE
    if not kept.is_file():
        raise FileNotFoundError(f"{matrix_dir}: no {COURSE_FILE} (a browser row of python -m "
                                "benchmarks.validation.matrix keeps its drops' step times there)")
    pages: dict[str, list[dict[str, list[float]]]] = {}
    for line in kept.read_text().splitlines():
        page = orjson.loads(line)
        pages.setdefault(page["key"], []).append(page["steps"])
    entries = [entry for entry in read_matrix(matrix_dir) if entry["key"] in pages]
    scenarios = _scenarios(entries, matrix_dir, model, substitutes, layer)
    rows = []
    for (spec, grouped, profile, options), runs in zip(
            scenarios, _each_seed(course_of, scenarios, replications, processes), strict=True):
        real = [steps for entry in grouped for steps in pages[entry["key"]]]
        # up to the cap, or where no page was cut, up to the last page's end (later counts are every page's end)
        end_s = options.horizon_s or max(entry["summary"]["drop_seconds"] for entry in grouped)
        times = [t for t in at_s if t <= end_s]
        rows.append({"profile": profile, "strategy": options.strategy, "images": spec["images"],
                     "uplink_mbit": options.uplink_mbit, "app": spec.get("app", ""), "cut_s": options.horizon_s,
                     "end_s": end_s, "engine": "browser" if spec.get("engine") == "browser" else "protocol-level",
                     "at_s": times, "real_pages": len(real), "sim_runs": len(runs),
                     "steps": {step: {"real": [counts_at(page[step], times) for page in real],
                                      "sim": [counts_at(run[step], times) for run in runs]}
                               for step in STEPS}})
    return rows


def print_course(rows: list[dict]) -> None:
    for r in rows:
        print(f"\n{r['app'] or r['profile']}: {r['strategy']}, {r['images']} images, {r['uplink_mbit']:g} Mbit/s, "
              + (f"cut at {r['cut_s']:.0f} s" if r["cut_s"] else f"settled by {r['end_s']:.0f} s")
              + f": {r['real_pages']} {r['engine']} runs (real: lowest-highest) / {r['sim_runs']} model runs")
        print(f"{'by':<18}" + "".join(f"{t:>13.0f} s" for t in r["at_s"]))
        for step, counts in r["steps"].items():
            for who in ("real", "sim"):
                spans = [(min(c), max(c)) for c in zip(*counts[who], strict=True)]
                label = f"{step.removesuffix('_at').replace('_', ' ')} {'model' if who == 'sim' else who}"
                print(f"{label:<18}" + "".join(f"{f'{low}-{high}' if low != high else str(low):>15}"
                                               for low, high in spans))


def print_spread(rows: list[dict]) -> int:
    head = (f"{'server':<17} {'engine':<7} {'strategy':<18} {'imgs':>5} {'Mbit':>5} | {'real runs: failure rate':<34} "
            f"{'mean':>6} | {'model':>6} {'95 % for one run':>16} {'inside':>7} | op ack p50 ms: real / model")
    print(head)
    print("-" * len(head))
    misses = 0
    for r in rows:
        real, (low, high) = r["real_failure_rates"], r["sim_pi95"]
        misses += not r["mean_within"] or r["inside"] < len(real)
        acks = ", ".join(f"{a:.0f}" for a in r["real_op_ack_p50_ms"])
        print(f"{r['profile']:<17} {r['engine']:<7} {r['strategy']:<18} {r['images']:>5} {r['uplink_mbit']:>5g} | "
              f"{', '.join(f'{x:.3f}' for x in real):<34} {statistics.fmean(real):>6.3f} | "
              f"{r['sim_failure_rate']:>6.3f} {f'[{low:.3f}, {high:.3f}]':>16} {r['inside']:>3}/{len(real):<3} | "
              f"{acks} / {r['sim_op_ack_p50_ms']:.0f}")
    print(f"\n{len(rows) - misses}/{len(rows)} scenarios: every real run inside the model's 95 % interval for one "
          f"run, and the means within +-{FAILURE_RATE_TOLERANCE}")
    return misses


def compare_servers(matrix_dir: Path) -> list[dict]:
    """Each real-app row of a matrix beside our server's row with the same scenario under the profile
    that stands for the app: the server's part of the difference (one client, two servers)."""
    entries = read_matrix(matrix_dir)
    ours = {(e["spec"].get("profile"), e["spec"]["strategy"], e["spec"]["images"], e["spec"].get("users", 1)): e
            for e in entries if "app" not in e["spec"]}
    rows = []
    for entry in (e for e in entries if "app" in e["spec"]):
        spec = entry["spec"]
        profile = model_profile_of(spec)
        twin = ours.get((profile, spec["strategy"], spec["images"], spec.get("users", 1)))
        if twin is None:
            continue
        app, server = _figures(entry["summary"]), _figures(twin["summary"])
        drop_error = (server["drop_s"] - app["drop_s"]) / app["drop_s"]
        rows.append({"app": spec["app"], "profile": profile, "strategy": spec["strategy"], "images": spec["images"],
                     "users": spec.get("users", 1), "real_app": app, "ours": server, "drop_error": drop_error,
                     "within": within(server["failure_rate"], app["failure_rate"], server["drop_s"], app["drop_s"])
                     and count_within(server["http_429"], app["http_429"])
                     and count_within(server["upload_attempts"], app["upload_attempts"])})
    return rows


ENGINE_FIGURES = ("failure_rate", "drop_s", "http_429", "upload_attempts")
"""What the two clients are held to, each within its stated error (``sim.accuracy.margin``)."""


def compare_engines(matrix_dir: Path) -> list[dict]:
    """Each scenario's browser runs (the real client) beside its protocol-level runs: the client's part of
    the difference (one server, two clients). Rows that differ only in ``repeat`` are runs of one scenario:
    the protocol-level mean is held to the browser runs' range (``within_runs``), and each figure says
    whether the browser runs agree with each other (``browser_self``): what one run on each side can show."""
    runs: dict[tuple, dict[str, list[dict]]] = {}
    strategies: dict[tuple, str] = {}
    for entry in read_matrix(matrix_dir):
        spec = entry["spec"]
        scenario = (spec.get("app"), spec["images"], spec.get("uplink_mbit", 0.0))
        engine = "browser" if spec.get("engine") == "browser" else "protocol"
        figures = _figures(entry["summary"])
        figures["ops"] = entry["summary"]["extra"].get("ops_by_type", {})
        runs.setdefault(scenario, {"browser": [], "protocol": []})[engine].append(figures)
        if engine == "protocol":
            strategies[scenario] = spec["strategy"]
    rows = []
    for (app, images, mbit), both in runs.items():
        browser, ours = both["browser"], both["protocol"]
        if not browser or not ours:
            continue
        figures = {}
        for name in ENGINE_FIGURES:
            real = [run[name] for run in browser]
            mean = sum(run[name] for run in ours) / len(ours)
            figures[name] = {"browser": real, "protocol": [run[name] for run in ours], "protocol_mean": mean,
                             "within": within_runs(name, mean, real),
                             "browser_self": all(within_runs(name, a, [b]) for a in real for b in real)}
        lossless = all(run["failure_rate"] == 0 for run in browser + ours)
        ops_equal = None
        if lossless:  # every type's count where the page's runs put it (one run each: equal)
            kinds = {kind for run in browser + ours for kind in run["ops"]}
            ops_equal = all(min(run["ops"].get(k, 0) for run in browser)
                            <= sum(run["ops"].get(k, 0) for run in ours) / len(ours)
                            <= max(run["ops"].get(k, 0) for run in browser) for k in kinds)
        mean_drop = sum(run["drop_s"] for run in browser) / len(browser)
        rows.append({"app": app, "images": images, "uplink_mbit": mbit, "strategy": strategies[(app, images, mbit)],
                     "runs": {"browser": len(browser), "protocol": len(ours)}, "figures": figures,
                     "drop_error": (figures["drop_s"]["protocol_mean"] - mean_drop) / mean_drop,
                     "ops": {"browser": [run["ops"] for run in browser], "protocol": [run["ops"] for run in ours]},
                     "ops_equal": ops_equal,
                     "within": all(f["within"] for f in figures.values()) and ops_equal is not False,
                     "browser_agrees_with_itself": all(f["browser_self"] for f in figures.values())})
    return rows


def _span(values: list[float], form: str) -> str:
    low, high = min(values), max(values)
    return format(low, form) if low == high else f"{low:{form}}-{high:{form}}"


def print_engines(rows: list[dict]) -> int:
    head = (f"{'app':<12} {'imgs':>5} {'Mbit':>5} {'runs':>5} | {'fail brw':>11} {'prot':>6} | "
            f"{'drop brw':>11} {'prot':>7} {'err':>6} | {'429 brw':>9} {'prot':>6} | {'uploads brw':>11} {'prot':>6} "
            "| ops | brw self")
    print(head)
    print("-" * len(head))
    misses = 0
    for r in rows:
        f = r["figures"]
        misses += not r["within"]

        def cell(name: str, form: str, width: int, f: dict = f) -> str:
            mark = "" if f[name]["within"] else "*"
            return f"{_span(f[name]['browser'], form):>{width}} {format(f[name]['protocol_mean'], form) + mark:>7}"

        ops = {None: "-", True: "=", False: "*"}[r["ops_equal"]]
        alone = [name for name in ENGINE_FIGURES if not f[name]["browser_self"]]
        runs = f"{r['runs']['browser']}/{r['runs']['protocol']}"
        print(f"{r['app']:<12} {r['images']:>5} {r['uplink_mbit']:>5g} {runs:>5} | "
              f"{cell('failure_rate', '.3f', 11)}| {cell('drop_s', '.1f', 11)} {r['drop_error']:>+6.0%} | "
              f"{cell('http_429', '.0f', 9)}| {cell('upload_attempts', '.0f', 11)}| {ops:^3} | "
              f"{'-' if r['runs']['browser'] == 1 else 'misses on ' + ', '.join(alone) if alone else 'agrees'}")
    print(f"\n{len(rows) - misses}/{len(rows)} agree: the protocol-level mean within the browser runs' range "
          f"widened by the stated error (failure rate +-{FAILURE_RATE_TOLERANCE}, drop time "
          f"+-{DROP_SECONDS_TOLERANCE:.0%}, 429s and upload attempts +-{COUNT_TOLERANCE:.0%}; one run each: the "
          "plain tolerance), operations by type in the browser runs' range where nothing is lost; * marks a miss. "
          "brw self: whether the browser runs agree with each other by the same tolerances")
    return misses


def print_servers(rows: list[dict]) -> int:
    head = (f"{'app':<12} {'profile':<17} {'imgs':>5} {'users':>5} | {'fail app':>8} {'ours':>6} | "
            f"{'drop app':>8} {'ours':>7} {'err':>6} | {'429 app':>7} {'ours':>6} | {'uploads app':>11} {'ours':>6}")
    print(head)
    print("-" * len(head))
    misses = 0
    for r in rows:
        a, o = r["real_app"], r["ours"]
        misses += not r["within"]
        print(f"{r['app']:<12} {r['profile']:<17} {r['images']:>5} {r['users']:>5} | {a['failure_rate']:>8.3f} "
              f"{o['failure_rate']:>6.3f} | {a['drop_s']:>8.1f} {o['drop_s']:>7.1f} {r['drop_error']:>+6.0%} | "
              f"{a['http_429']:>7} {o['http_429']:>6} | {a['upload_attempts']:>11} {o['upload_attempts']:>6}"
              f"{'' if r['within'] else '  *'}")
    print(f"\n{len(rows) - misses}/{len(rows)} agree (failure rate +-{FAILURE_RATE_TOLERANCE}, drop time "
          f"+-{DROP_SECONDS_TOLERANCE:.0%}, 429s and upload attempts +-{COUNT_TOLERANCE:.0%}); * marks a miss")
    return misses


def main(args: argparse.Namespace) -> int:
    """One mode's rows, printed; ``--out`` writes them, whichever mode. Exit 1 when a row misses (``--course``
    has no stated error yet: it shows, it does not judge)."""
    substitutes = dict(item.split("=", 1) for item in args.profile)
    folder = Path(args.matrix_dir)
    if args.spread:
        rows = compare_spread(folder, max(2, args.replications), args.model, substitutes, args.strategy_layer,
                              args.processes)
        misses = print_spread(rows)
    elif args.course:
        rows = compare_course(folder, args.replications, args.model, args.strategy_layer, args.processes,
                              substitutes=substitutes)
        print_course(rows)
        misses = 0
    elif args.servers:
        rows = compare_servers(folder)
        misses = print_servers(rows)
    elif args.engines:
        rows = compare_engines(folder)
        misses = print_engines(rows)
    else:
        rows = compare_matrix(folder, args.replications, substitutes, args.model, args.strategy_layer, args.processes)
        misses = print_matrix(rows)
    if args.out:
        Path(args.out).write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    return 1 if misses else 0


def print_matrix(rows: list[dict]) -> int:
    head = (f"{'server':<23} {'engine':<7} {'strategy':<18} {'imgs':>5} {'users':>5} {'Mbit':>5} | "
            f"{'fail real':>9} {'sim':>6} | {'drop real':>9} {'sim':>7} {'err':>6} | {'ws real':>8} {'sim':>8} | "
            f"{'http real':>9} {'sim':>8} | "
            f"{'429 real':>8} {'sim':>7} | {'uploads real':>12} {'sim':>7} | {'reopened real':>13} {'sim':>5}")
    print(head)
    print("-" * len(head))
    misses = 0
    for r in rows:
        fail_miss = abs(r["sim_failure_rate"] - r["real_failure_rate"]) > FAILURE_RATE_TOLERANCE
        drop_miss = abs(r["drop_error"]) > DROP_SECONDS_TOLERANCE
        misses += not r["within"]
        print(f"{r['target']:<23} {r['engine']:<7} {r['strategy']:<18} {r['images']:>5} {r['users']:>5} "
              f"{r['uplink_mbit']:>5g} | {r['real_failure_rate']:>9.3f} "
              f"{r['sim_failure_rate']:>6.3f}{'*' if fail_miss else ' '}| "
              f"{r['real_drop_s']:>9.1f} {r['sim_drop_s']:>7.1f} {r['drop_error']:>+6.0%}{'*' if drop_miss else ' '}| "
              f"{r['real_ws_sent']:>8.0f} {r['sim_ws_sent']:>8.0f} | {r['real_http']:>9.0f} {r['sim_http']:>8.0f} | "
              f"{r['real_429']:>8.0f} {r['sim_429']:>7.0f} | {r['real_upload_attempts']:>12.0f} "
              f"{r['sim_upload_attempts']:>7.0f}{' ' if r['counts_within'] else '*'}| "
              f"{_count(r['real_reopened']):>13} {_count(r['sim_reopened']):>5}")
    print(f"\n{len(rows) - misses}/{len(rows)} within tolerance (failure rate +-{FAILURE_RATE_TOLERANCE}, "
          f"drop time +-{DROP_SECONDS_TOLERANCE:.0%}, 429s and upload attempts +-{COUNT_TOLERANCE:.0%}); "
          "* marks a miss")
    return misses
