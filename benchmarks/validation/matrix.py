"""Run a list of real scenarios one after another (never two at once) and tabulate them.

``python -m benchmarks.validation.matrix issue3 --out bench-results/issue3``: each run's results directory
goes under ``--out``; ``matrix.jsonl`` collects one summary per run and lets an interrupted matrix
resume where it stopped. The table printed at the end is the one the issue's note quotes.
``--where strategy=individual --again`` runs only the scenarios that match, again, replacing their
earlier results (after a change to the real engine that only they feel).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bulkbench.course import COURSE_FILE, step_times
from bulkbench.results import RunSummary
from bulkbench.target import app_client_strategy
from bulkbench.truth import HEARTBEATS_FILE
from loadtests.run import RunOptions, run, table

ROW_KEY_FILE = "row-key.txt"
"""The key of the row whose raw files a run folder holds."""
BROWSER_CAP_S = 900.0
"""A browser drop still going after 15 minutes is cut there (its open images: ``unfinished``); a row's own
``drop_cap_s`` replaces it."""
LONG_CAP_S = 3600.0
"""The cap of a 500-image row meant to finish: the model's stand-in for the page takes 2650-3070 s there."""
BOOT_500_CAP_S = 1500.0
"""Where browser-500-boot's page was cut (``browser-run --max-seconds 1500``): the app's file sweep at 1800 s is
left out of the comparison."""
PLAUSIBLE_UPLINK_MBIT = 20.0
"""A typical cable/DSL uplink; the issue asks for 20-50 Mbit/s."""

MATRICES: dict[str, list[dict]] = {
    "issue3": [
        # where is the cliff: individual, 200 images, 1 user, against the uplink
        *({"strategy": "individual", "images": 200, "uplink_mbit": mbit} for mbit in (0, 100, 50, 20, 10)),
        *({"strategy": "batched", "images": 200, "uplink_mbit": mbit} for mbit in (0, 20, 10)),
        # images per drop, on the plausible uplink
        *({"strategy": s, "images": n, "uplink_mbit": PLAUSIBLE_UPLINK_MBIT}
          for n in (500, 1000) for s in ("individual", "batched")),
        # the rate limit the reference shipped after the report
        *({"strategy": s, "images": n, "profile": "legacy-ratelimit", "uplink_mbit": PLAUSIBLE_UPLINK_MBIT}
          for n in (200, 1000) for s in ("individual", "batched")),
        # five users at once, 20 Mbit/s each (one 100 Mbit/s link), own canvases and one shared canvas
        *({"strategy": s, "images": 200, "users": 5, "canvas": c, "uplink_mbit": 100.0}
          for c in ("own", "shared") for s in ("individual", "batched")),
    ],
    # the model against reality (issue 4): both profiles, both strategies at 200 and 500, batched at 1000,
    # 1 user on a 20 Mbit/s uplink and 5 users on one 100 Mbit/s link; the light workload keeps it short
    "issue4": [
        *({"profile": profile, "strategy": s, "images": n, "users": users, "uplink_mbit": uplink,
           "workload": "scenarios/workload-light.toml"}
          for profile in ("legacy", "optimized") for users, uplink in ((1, 20.0), (5, 100.0))
          for s, n in (("individual", 200), ("batched", 200), ("individual", 500), ("batched", 500),
                       ("batched", 1000))),
    ],
    # the real ImageCanvas against our server under the same client (issue 11): today's code beside
    # legacy-ratelimit, as reported (no rate limiter) beside legacy; 1 user at 50/200/500 images and
    # 5 users (each from its own loopback address) at 200; unshaped loopback, the default workload
    "imagecanvas": [
        *({"strategy": "individual", "images": n, "users": users, **side}
          for app, profile in (("today", "legacy-ratelimit"), ("as-reported", "legacy"))
          for n, users in ((50, 1), (200, 1), (500, 1), (200, 5))
          for side in ({"app": app}, {"profile": profile})),
    ],
    # the real client (issue 12): ImageCanvas's own page in Chromium, both states, 50/200/500 images,
    # loopback and a 20 Mbit/s uplink; the protocol-level client against the same app beside each
    "browser": [
        *({"engine": "browser", "app": app, "images": n, "uplink_mbit": mbit}
          for mbit in (0.0, 20.0) for app in ("today", "as-reported") for n in (50, 200, 500)),
        *({"strategy": app_client_strategy(app), "app": app, "images": n, "uplink_mbit": mbit,
           "drop_cap_s": BROWSER_CAP_S}
          for mbit in (0.0, 20.0) for app in ("today", "as-reported") for n in (50, 200, 500)),
    ],
    # the real client against itself (issue 12): the 50-image rows three times more, each engine, same seed
    # and images, one after another (a repeat of every row before the next repeat: drift hits both alike)
    "browser-spread": [
        {**row, "repeat": repeat}
        for repeat in (1, 2, 3) for mbit in (0.0, 20.0) for app in ("today", "as-reported")
        for row in ({"engine": "browser", "app": app, "images": 50, "uplink_mbit": mbit},
                    {"strategy": app_client_strategy(app), "app": app, "images": 50, "uplink_mbit": mbit,
                     "drop_cap_s": BROWSER_CAP_S})
    ],
    # beyond the plan (issue 14): pipelined beside batched, 1 user at 10/20/100 Mbit/s, 5 users on one
    # 100 Mbit/s link, the rate-limited profile, then 1000 images; in order of what the note needs first
    "pipelined": [
        *({"profile": profile, "strategy": s, "images": 200, "uplink_mbit": mbit}
          for profile in ("legacy", "optimized") for mbit in (10.0, 20.0, 100.0) for s in ("pipelined", "batched")),
        *({"profile": profile, "strategy": s, "images": 200, "users": 5, "uplink_mbit": 100.0}
          for profile in ("legacy", "optimized") for s in ("pipelined", "batched")),
        *({"profile": "legacy-ratelimit", "strategy": s, "images": n, "uplink_mbit": 100.0}
          for n in (200, 1200) for s in ("pipelined", "batched")),
        *({"profile": profile, "strategy": s, "images": 1000, "uplink_mbit": mbit}
          for mbit in (100.0, 20.0, 10.0) for profile in ("legacy", "optimized") for s in ("pipelined", "batched")),
        *({"profile": profile, "strategy": s, "images": 1000, "users": 5, "uplink_mbit": 100.0}
          for profile in ("legacy", "optimized") for s in ("pipelined", "batched")),
    ],
    # the real client at 500 images, run to its end (issues 12 and 15): the scenario the page's frame
    # feedback was fitted on at 200 (today's app, 20 Mbit/s), 2.5 times bigger, held out; each engine
    "browser-500": [
        {"engine": "browser", "app": "today", "images": 500, "uplink_mbit": PLAUSIBLE_UPLINK_MBIT,
         "drop_cap_s": LONG_CAP_S},
        {"strategy": app_client_strategy("today"), "app": "today", "images": 500, "uplink_mbit": PLAUSIBLE_UPLINK_MBIT,
         "drop_cap_s": LONG_CAP_S},
    ],
    # the page without the limiter at 200 images, 20 Mbit/s, once more (issue 12): where its heartbeat reconnects
    # it (its pongs late on a main thread busy ~100 %) without joining its canvas again
    "browser-heartbeat": [
        {"engine": "browser", "app": "as-reported", "images": 200, "uplink_mbit": PLAUSIBLE_UPLINK_MBIT},
    ],
    # browser-200's scenario on a slower day (issues 12 and 15): the page's speed read off three 50-image drops
    # (bulkbench calibrate --page), then 200 images held out, and the protocol-level client under that layer
    "browser-slower": [
        *({"engine": "browser", "app": "today", "images": n, "uplink_mbit": PLAUSIBLE_UPLINK_MBIT, "repeat": k}
          for n, repeats in ((50, 3), (200, 3)) for k in range(1, repeats + 1)),
        {"strategy": app_client_strategy("today"), "app": "today", "images": 200, "uplink_mbit": PLAUSIBLE_UPLINK_MBIT,
         "drop_cap_s": BROWSER_CAP_S},
        # held out too, predicted before it ran: the page without the limiter, same day, same layer
        {"engine": "browser", "app": "as-reported", "images": 200, "uplink_mbit": PLAUSIBLE_UPLINK_MBIT},
    ],
    # one boot's table (issue 12): the protocol-level client beside the boot's browser rows, gathered into
    # examples/validation/browser-boot (its README entry); the 500-image row cut where the boot's page was
    "browser-boot": [
        *({"strategy": app_client_strategy(app), "app": app, "images": n, "uplink_mbit": PLAUSIBLE_UPLINK_MBIT,
           "drop_cap_s": BROWSER_CAP_S} for app, n in (("today", 50), ("today", 200), ("as-reported", 200))),
        {"strategy": app_client_strategy("today"), "app": "today", "images": 500, "uplink_mbit": PLAUSIBLE_UPLINK_MBIT,
         "drop_cap_s": BOOT_500_CAP_S},
    ],
    # the cliff, run again (issues 15 and 17): one scenario's real spread, each run its own seed, where
    # individual's single-flight queue meets the orphan deadline (10 Mbit/s) and just above it (20)
    "cliff": [
        *({"strategy": "individual", "images": 200, "uplink_mbit": mbit, "seed": seed}
          for mbit in (10.0, 20.0) for seed in range(1, 6)),
    ],
    "smoke": [
        {"strategy": "individual", "images": 20},
        {"strategy": "batched", "images": 20},
    ],
}


def run_options(spec: dict, out: Path, layer: str = "") -> RunOptions:
    """A matrix row as a run: ``app`` names the state of the real ImageCanvas to start."""
    options = {("start_app" if name == "app" else name): value for name, value in spec.items()}
    return RunOptions(**options, strategy_layer=layer, out=out, quiet=True, max_seconds=1500)


def row_options(spec: dict, out: Path, layer: str = "") -> Any:
    """A matrix row's run options, by the engine it names (``engine: "browser"``: the real client, cut at
    the row's ``drop_cap_s`` or ``BROWSER_CAP_S``; else Locust, its strategy with ``layer`` over the shipped
    sets); ``repeat`` only tells a row's repeats apart."""
    spec = {name: value for name, value in spec.items() if name != "repeat"}
    if spec.get("engine") != "browser":
        return run_options(spec, out, layer)
    from realclient.run import BrowserRunOptions
    options = {("start_app" if name == "app" else name): value for name, value in spec.items()
               if name not in ("engine", "drop_cap_s")}
    return BrowserRunOptions(**options, out=out, quiet=True, max_seconds=spec.get("drop_cap_s", BROWSER_CAP_S))


def run_row(spec: dict, out: Path, layer: str = "") -> RunSummary:
    """One row, run by its engine."""
    options = row_options(spec, out, layer)
    if isinstance(options, RunOptions):
        return run(options)
    from realclient.run import browser_run
    return browser_run(options)


def row_folder(out: Path, number: int, name: str) -> Path:
    """Where row ``number`` (key ``name``) keeps its raw files: ``runNN``, unless an earlier run of another row
    holds it (a row added to a matrix renumbers the rows after it), then ``runNN-2``, ``-3`` ... Each run
    leaves its key in ``row-key.txt``; a folder without one is an older run's, and taken."""
    folder, suffix = out / f"run{number:02d}", 1
    while folder.exists() and not ((key := folder / ROW_KEY_FILE).is_file() and key.read_text() == name):
        suffix += 1
        folder = out / f"run{number:02d}-{suffix}"
    return folder


def pin_layer(out: Path, layer: str) -> str:
    """The layer every run of ``out`` uses: ``out/strategies.toml``, copied from ``layer`` the first time.
    A recording is of one client, so another layer for a folder that has one is refused."""
    pinned = out / "strategies.toml"
    if layer:
        text = Path(layer).read_text()
        if pinned.exists() and pinned.read_text() != text:
            raise SystemExit(f"{out} was recorded with {pinned}, which differs from {layer}: use another --out")
        pinned.write_text(text)
    return str(pinned) if pinned.exists() else ""


def keep_pings(out: Path, name: str, folder: Path) -> int:
    """A browser row's pages' pings (its drops' ``heartbeats`` and socket events) into ``out/heartbeats.jsonl``,
    which ``calibrate --heartbeat`` fits: the summary keeps only their figures, the raw drops stay on this
    machine. An earlier run of the same row's lines are replaced. Returns the pages kept."""
    return _keep_per_drop(out / HEARTBEATS_FILE, name, folder, lambda drop: {
        "heartbeats": drop["extra"]["heartbeats"], "socket_events": drop["extra"].get("socket_events") or [],
    } if "heartbeats" in drop.get("extra", {}) else None)


def keep_course(out: Path, name: str, folder: Path) -> int:
    """A browser row's drops' step times (``bulkbench.course``) into ``out/course.jsonl``, which ``validate
    --course`` sets beside the model's: what the drop had done by when, where the summary keeps only the end."""
    return _keep_per_drop(out / COURSE_FILE, name, folder, lambda drop: {
        "steps": step_times(record["timings"] for record in drop["records"])} if drop.get("records") else None)


def _keep_per_drop(kept_in: Path, name: str, folder: Path, line: Callable[[dict], dict | None]) -> int:
    """``line(drop)`` of each of ``folder``'s drops (None: nothing to keep) into ``kept_in`` with the row's key
    and the drop's user, in place of an earlier run's lines for that key. Returns the drops kept."""
    lines = [text for text in (kept_in.read_text().splitlines() if kept_in.exists() else [])
             if orjson.loads(text)["key"] != name]
    kept = 0
    for drop_file in sorted((folder / "drops").glob("user-*.json")):
        drop = orjson.loads(drop_file.read_bytes())
        if (fields := line(drop)) is not None:
            lines.append(orjson.dumps({"key": name, "user": drop["user"], **fields}).decode())
            kept += 1
    if lines:
        kept_in.write_text("".join(f"{text}\n" for text in lines))
    return kept


def key(spec: dict) -> str:
    return "-".join(f"{k}={spec[k]}" for k in sorted(spec))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("matrix", choices=sorted(MATRICES))
    parser.add_argument("--out", default="bench-results/matrix")
    parser.add_argument("--profile", default="legacy")
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="only the scenarios whose KEY is VALUE (repeatable)")
    parser.add_argument("--again", action="store_true", help="run the selected scenarios even if done")
    parser.add_argument("--strategy-layer", default="", metavar="FILE",
                        help="run the client stand-ins with this strategies layer (bulkbench calibrate --page); "
                             "kept as OUT/strategies.toml, which every later run of OUT and validate use")
    args = parser.parse_args(argv)
    where = dict(item.split("=", 1) for item in args.where)

    def selected(spec: dict) -> bool:
        return all(str(spec.get(k)) == v for k, v in where.items())

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    layer = pin_layer(out, args.strategy_layer)
    log = out / "matrix.jsonl"
    done = {}
    if log.exists():
        kept = []
        for line in log.read_text().splitlines():
            entry = orjson.loads(line)
            if args.again and selected(entry["spec"]):
                continue  # to be run again
            done[entry["key"]] = entry["summary"]
            kept.append(line)
        if args.again:
            log.write_text("".join(f"{line}\n" for line in kept))
    for number, spec in enumerate(MATRICES[args.matrix], 1):
        spec = spec if "app" in spec or "engine" in spec else {"profile": args.profile, **spec}
        name = key(spec)
        if name in done or not selected(spec):
            continue
        print(f"\n=== run {number}/{len(MATRICES[args.matrix])}: {name}", flush=True)
        folder = row_folder(out, number, name)
        summary = run_row(spec, folder, layer)
        (folder / ROW_KEY_FILE).write_text(name)
        if spec.get("engine") == "browser":
            keep_pings(out, name, folder)
            keep_course(out, name, folder)
        print(table([summary]), flush=True)
        with open(log, "ab") as handle:
            handle.write(orjson.dumps({"key": name, "spec": spec, "summary": summary.to_json()}) + b"\n")
        done[name] = summary.to_json()
    summaries = []
    for entry in (orjson.loads(line) for line in log.read_text().splitlines()):
        summaries.append((entry["spec"], RunSummary.from_json(entry["summary"])))
    print()
    print(table([s for _, s in summaries]))
    print("\nnetworks: " + ", ".join(f"{s.extra['network']['name']}" for _, s in summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
