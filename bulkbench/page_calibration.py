"""``bulkbench calibrate --page BROWSER_RUN ...``: a client stand-in's page costs, on the machine at hand.

Why: ``individual:fc1316b`` stands for ImageCanvas's page, and most of what makes it slow is the page's
own main thread (its previews, its second read of every file, its frames). Those costs were fitted to
browser runs on one machine (``examples/validation/browser``); another machine runs the same page faster
or slower, and a stand-in with the first machine's costs is then wrong by that much (on the second
machine: 80 s drops against the page's 51-82 s, #12's note of session 13).

How: the browser engine records how long the page's main thread was blocked (the Long Tasks API). Per
node the page laid out, that is the page's work at this machine's speed. Each given run against the
median of the runs of its size the set was fitted on (a bigger drop keeps the page busier per node), the
median of those ratios is this machine's speed against that one; every CPU cost of the page
(``individual.PAGE_CPU_PARAMS``) is scaled by it. The page's timers (its upload coordinator's tick, its
retry pause, requestIdleCallback's timeout) are its clock, not its CPU, and stay. The first machine's
repeats against its own fitted runs give 0.90: a few runs calibrate to about 10 %.

The page also says how many previews it had when it laid the drop out: a page with no idle moment before
its layout has not encoded the last ones yet, and makes no node for those files. Each run's count
missing, at this machine's preview time per file, is how long that page went without an idle moment
before its layout; ``layout_unready_s`` keeps them all, and a stand-in draws one per drop (the page lost
0 to 15 of 50 from one run to the next here); on the machine the set was fitted on no 50-image drop
missed one.

The result is a strategies layer (``--strategy-layer FILE`` of ``run``, ``sim``, ``compare`` and the
validation matrices; ``strategies.toml`` beside a recording's ``matrix.jsonl``, which ``validate`` reads
over the shipped sets as it reads ``profiles/``)."""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from bulkbench.config import ConfigError
from bulkbench.page_thread_fit import ThreadFit, fit_thread
from bulkbench.strategies import strategy_params
from bulkbench.strategies.individual import PAGE_CPU_PARAMS, TOBLOB_IDLE_TIMEOUT_S

FEEDBACK_PARAM = "page_s_per_uploaded_image"
"""The page cost ``--feedback-from`` fits with the model instead of scaling (``sim.page_feedback``)."""
LAYOUT_CLAIM = re.compile(r"Previews ready at layout: (\d+) of (\d+), nodes laid out: (\d+)")
"""What the imagecanvas target's page says of its layout (``scenarios/targets/imagecanvas.toml``)."""


def said_laid_out(summary: dict[str, Any]) -> int | None:
    """Nodes the page says it made for the drop (it lays a drop out before the previews it has not
    encoded yet, and makes no node for those); None: it did not say."""
    said = LAYOUT_CLAIM.search(" ".join(summary.get("extra", {}).get("claimed") or []))
    return int(said.group(3)) if said else None


def nodes_laid_out(summary: dict[str, Any]) -> int:
    """Nodes the page made for the drop: what it says, else every image."""
    said = said_laid_out(summary)
    return said if said is not None else int(summary["images"]) * int(summary.get("users", 1))


def busy_s_per_node(summary: dict[str, Any]) -> float:
    """Seconds the page's main thread was blocked (long tasks) per node it laid out."""
    long_task_ms = summary.get("extra", {}).get("long_task_ms")
    if long_task_ms is None:
        raise ConfigError(f"a browser run without long_task_ms: {summary.get('strategy')} {summary.get('images')}")
    return long_task_ms / 1000.0 / max(1, nodes_laid_out(summary))


def browser_summaries(folder: Path) -> list[dict[str, Any]]:
    """The browser runs of a results directory (``summary.json``) or a recording (``matrix.jsonl``)."""
    if (folder / "matrix.jsonl").is_file():
        records = [orjson.loads(line)["summary"] for line in (folder / "matrix.jsonl").read_text().splitlines()]
    elif (folder / "summary.json").is_file():
        loaded = orjson.loads((folder / "summary.json").read_bytes())
        records = loaded if isinstance(loaded, list) else [loaded]
    else:
        raise ConfigError(f"{folder}: neither summary.json (browser-run's results) nor matrix.jsonl (a recording)")
    return [r for r in records if r.get("engine") == "browser"]


def _uncapped(folders: list[Path], images: set[int] | None = None) -> list[dict[str, Any]]:
    """Browser runs not cut at their cap (a capped run's busy time is the cap's), of ``images`` only."""
    return [r for folder in folders for r in browser_summaries(folder)
            if not r.get("extra", {}).get("capped") and (images is None or r["images"] in images)]


@dataclass(frozen=True)
class FeedbackFit:
    """The page's frame feedback fitted to bigger drops by the model (``sim.page_feedback``)."""

    drop_s: list[float]
    """The browser runs' drop times."""
    images: int
    uplink_mbit: float
    profile: str
    scaled: float
    """The coefficient the speed alone gave."""
    coefficient: float
    model_drop_s: float | None
    """The model's drop under the fitted coefficient (None where the runs were cut: their loss was met)."""
    lost: list[float] = field(default_factory=list)
    """Where the runs were all cut at their cap, what each had lost by then (what the fit met)."""
    model_lost: float | None = None
    """... and the model's mean loss by the cap under the fitted coefficient."""


@dataclass(frozen=True)
class PageCalibration:
    strategy: str
    here_s_per_node: list[float]
    fitted_s_per_node: list[float]
    speed: float
    """This machine's page time over the fitted one's (< 1: the page runs faster here)."""
    scaled: dict[str, Any]
    """Each page cost of the set that is not 0, scaled by ``speed``; and ``layout_unready_s`` (a time per
    run), where the page said how many previews it had at its layout."""
    unplaced: list[int]
    """Files each run's page laid out without a node (runs that say)."""
    feedback: FeedbackFit | None = None
    thread: ThreadFit | None = None
    """The page's thread as its busy series measured it (``--thread-from``), in place of the feedback."""
    left_out: dict[str, int] = field(default_factory=dict)
    """Browser runs given that were not used, by why (cut at their cap: their busy time is the cap's; no
    fitted run of their size to compare with)."""


def calibrate_page(runs: list[Path], fitted_on: list[Path], strategy: str = "individual:fc1316b") -> PageCalibration:
    """Scale ``strategy``'s page costs by the page's busy time per node here against where it was fitted,
    on drop sizes both sides ran."""
    params = strategy_params(strategy)
    costs = {name: getattr(params, name) for name in PAGE_CPU_PARAMS if getattr(params, name, 0.0)}
    if not costs:
        raise ConfigError(f"{strategy}: none of its page costs {list(PAGE_CPU_PARAMS)} is set: nothing to scale")
    here = _uncapped(runs)
    if not here:
        raise ConfigError(f"no uncapped browser run in {[str(r) for r in runs]}")
    fitted = _uncapped(fitted_on, {r["images"] for r in here})
    if not fitted:
        raise ConfigError(f"no uncapped browser run of {sorted({r['images'] for r in here})} images in "
                          f"{[str(f) for f in fitted_on]} (the runs {strategy} was fitted on) to compare with")
    fitted_s = [busy_s_per_node(r) for r in fitted]
    fitted_by_size: dict[int, list[float]] = {}
    for r, busy in zip(fitted, fitted_s, strict=True):
        fitted_by_size.setdefault(r["images"], []).append(busy)
    capped = len([r for folder in runs for r in browser_summaries(folder)]) - len(here)
    unmatched = sum(r["images"] not in fitted_by_size for r in here)
    left_out = {reason: n for reason, n in (("cut at their cap", capped), ("no fitted run of their size", unmatched))
                if n}
    here = [r for r in here if r["images"] in fitted_by_size]
    here_s = [busy_s_per_node(r) for r in here]
    # each run against the fitted runs of its size: a bigger drop keeps the page busier per node
    speed = statistics.median(busy / statistics.median(fitted_by_size[r["images"]])
                              for r, busy in zip(here, here_s, strict=True))
    scaled = {name: float(f"{value * speed:.4g}") for name, value in costs.items()}
    unplaced = [r["images"] - said for r in here if (said := said_laid_out(r)) is not None]
    preview_s = scaled.get("page_preview_s_per_image", 0.0)
    if unplaced and preview_s and hasattr(params, "layout_unready_s"):
        scaled["layout_unready_s"] = sorted(float(f"{min(TOBLOB_IDLE_TIMEOUT_S, count * preview_s):.6g}")
                                            for count in unplaced)
    return PageCalibration(strategy, here_s, fitted_s, speed, scaled, unplaced, left_out=left_out)


def with_thread(calibration: PageCalibration, thread_from: list[Path]) -> PageCalibration:
    """The calibration with the page's thread fitted to the busy series of ``thread_from``'s browser runs."""
    thread = fit_thread([r for folder in thread_from for r in browser_summaries(folder)])
    return replace(calibration, thread=thread, scaled={**calibration.scaled, **thread.params()})


def layer_text(calibration: PageCalibration, runs: list[Path], fitted_on: list[Path],
               feedback_from: list[Path] | None = None, thread_from: list[Path] | None = None) -> str:
    """The strategies layer, with where its numbers come from in its comments."""
    base, _, variant = calibration.strategy.partition(":")
    here, fitted = calibration.here_s_per_node, calibration.fitted_s_per_node
    command = f"bulkbench calibrate --page {' '.join(map(str, runs))} --fitted-on {' '.join(map(str, fitted_on))}"
    for option, folders in (("--feedback-from", feedback_from), ("--thread-from", thread_from)):
        if folders:
            command += f" {option} {' '.join(map(str, folders))}"
    lines = [
        f"# {command}",
        *([f"# browser runs left out: {_left_out(calibration.left_out)}"] if calibration.left_out else []),
        f"# {calibration.strategy}'s page costs on the machine of these browser runs: its main thread was blocked",
        f"# {statistics.median(here):.3f} s per node laid out (median of {len(here)} runs, "
        f"{min(here):.3f}-{max(here):.3f}) against {statistics.median(fitted):.3f}",
        f"# ({len(fitted)} runs, {min(fitted):.3f}-{max(fitted):.3f}) where the set was fitted: "
        f"every page cost x {calibration.speed:.3f}",
        *([f"# files laid out without a node, run by run: {sorted(calibration.unplaced)} (x the preview time per file: "
           "layout_unready_s, one drawn per drop)"] if "layout_unready_s" in calibration.scaled else []),
        *([f"# frame feedback: {_feedback_said(fb)}"] if (fb := calibration.feedback) else []),
        *([f"# the page's thread: {thread.said()}; one task at a time, nothing per upload",
           *([f"# browser runs without a busy series left out: {thread.left_out}"] if thread.left_out else [])]
          if (thread := calibration.thread) else []),
        f"[{base}.{variant}]" if variant else f"[{base}]",
        *(f"{name} = {_toml(value)}" for name, value in calibration.scaled.items()),
    ]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)


def _feedback_said(fb: FeedbackFit) -> str:
    where = f"{fb.profile}, {fb.images} images at {fb.uplink_mbit:g} Mbit/s"
    if fb.model_lost is not None:
        return (f"{where} lost {', '.join(f'{lost:g}' for lost in fb.lost)} by their cap "
                f"({', '.join(f'{d:.0f}' for d in fb.drop_s)} s) in the browser; the model's mean meets their median "
                f"at {FEEDBACK_PARAM} = {fb.coefficient:g} ({fb.model_lost:g}; the speed alone gave {fb.scaled:g})")
    return (f"{where} took {', '.join(f'{d:.1f}' for d in fb.drop_s)} s in the browser; the model meets their "
            f"median at {FEEDBACK_PARAM} = {fb.coefficient:g} ({fb.model_drop_s:.1f} s; the speed alone gave "
            f"{fb.scaled:g})")


def _left_out(left_out: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in left_out.items())


FeedbackFitter = Callable[[PageCalibration, list[dict[str, Any]]], PageCalibration]
"""``sim.page_feedback.fit_feedback``: handed in by the CLI, as the core runs no engine."""


def main(args: Any, fit_feedback: FeedbackFitter | None = None) -> int:
    runs, fitted_on = [Path(d) for d in args.run_dirs], [Path(d) for d in args.fitted_on]
    feedback_from = [Path(d) for d in getattr(args, "feedback_from", None) or []]
    thread_from = [Path(d) for d in getattr(args, "thread_from", None) or []]
    if feedback_from and thread_from:
        raise ConfigError("--thread-from and --feedback-from are two forms of the page's load: give one")
    calibration = calibrate_page(runs, fitted_on, args.strategy)
    if feedback_from:
        if fit_feedback is None:
            raise ConfigError("--feedback-from needs the model to fit with")
        calibration = fit_feedback(calibration, [r for folder in feedback_from for r in browser_summaries(folder)])
    if thread_from:
        calibration = with_thread(calibration, thread_from)
    Path(args.out).write_text(layer_text(calibration, runs, fitted_on, feedback_from, thread_from))
    before = strategy_params(args.strategy)
    print(f"page busy per node: {statistics.median(calibration.here_s_per_node):.3f} s here "
          f"({len(calibration.here_s_per_node)} runs), {statistics.median(calibration.fitted_s_per_node):.3f} s "
          f"where {args.strategy} was fitted ({len(calibration.fitted_s_per_node)} runs): x {calibration.speed:.3f}")
    if calibration.left_out:
        print(f"browser runs left out: {_left_out(calibration.left_out)}")
    for name, value in calibration.scaled.items():
        if name != "layout_unready_s":
            print(f"  {name:<28} {_toml(getattr(before, name)):>8} -> {_toml(value)}")
    if (fb := calibration.feedback) is not None:
        print(f"frame feedback: {_feedback_said(fb)}")
    if (thread := calibration.thread) is not None:
        print(f"the page's thread: {thread.said()}")
    if "layout_unready_s" in calibration.scaled:
        print(f"files laid out without a node, run by run: {sorted(calibration.unplaced)}; x the preview time per "
              f"file: layout_unready_s = {calibration.scaled['layout_unready_s']} s, one drawn per drop")
    print(f"written {args.out} (a layer: --strategy-layer {args.out}, or strategies.toml beside a matrix.jsonl)")
    return 0
