"""The report's figures. Each takes the runs and returns a matplotlib Figure with labelled axes."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from reports.data import Run  # noqa: E402

LINESTYLE = {"real": "-", "sim": "--", "browser": ":"}
"""Measured solid, modelled dashed, the real client (a browser) dotted."""
CAUSE_COLOURS = {
    "orphaned": "#d62728", "ack_timeout": "#ff7f0e", "rejected": "#9467bd", "http_429": "#8c564b",
    "http_503": "#e377c2", "http_timeout": "#7f7f7f", "http_error": "#bcbd22", "connection_lost": "#17becf",
    "never_sent": "#1f77b4", "not_on_server": "#2ca02c",
}


def _finish(fig: Figure, ax: Any, xlabel: str, ylabel: str, title: str, legend: dict[str, Any] | None = None,
            grid: str = "major") -> Figure:
    """The part every one-panel figure ends with: labels, a grid, a legend if anything is labelled."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which=grid, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**{"fontsize": 8, **(legend or {})})
    ax.set_title(title)
    fig.tight_layout()
    return fig


def failures_by_cause(runs: list[Run]) -> Figure:
    fig, ax = plt.subplots(figsize=(9, 0.5 + 0.45 * len(runs)))
    labels = [run.label for run in runs]
    causes = sorted({c for run in runs for c in run.summary["failures_by_cause"]})
    left = np.zeros(len(runs))
    ax.barh(labels, left, color="none")  # every run gets its row, lost images or not
    for cause in causes:
        values = np.array([run.summary["failures_by_cause"].get(cause, 0) / max(1, run.summary["images"]
                                                                                  * run.summary["users"])
                           for run in runs]) * 100
        ax.barh(labels, values, left=left, label=cause, color=CAUSE_COLOURS.get(cause))
        left += values
    ax.set_xlabel("images lost (% of the drop), by cause")
    ax.set_xlim(0, max(100.0, left.max() if len(left) else 0))
    ax.invert_yaxis()
    if causes:
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(50, (len(runs) - 1) / 2, "no image lost", ha="center", va="center")
    ax.set_title("Failures by cause (the server's canvas is the judge)")
    fig.tight_layout()
    return fig


def ack_latency_cdf(runs: list[Run]) -> Figure:
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for run in runs:
        if not run.op_ack_s:
            continue
        values = np.sort(np.array(run.op_ack_s) * 1000)
        ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post", label=run.label,
                linestyle=LINESTYLE[run.summary["engine"]])
    ax.set_xscale("log")
    ax.set_ylim(0, 1.01)
    return _finish(fig, ax, "operation ack latency (ms, log scale)", "fraction of acked operations",
                   "Operation ack latency (CDF, raw samples); dashed: model, dotted: the real client", grid="both")


def settled_over_time(runs: list[Run]) -> Figure:
    """When each image reached the state it ended in (settled or given up), one line per run."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for run in runs:
        times = np.sort(np.array(run.settled_s))
        if not len(times):
            continue
        (line,) = ax.step(np.concatenate([[0.0], times]), np.arange(0, len(times) + 1), where="post",
                          label=run.label, linestyle=LINESTYLE[run.summary["engine"]])
        if run.summary.get("bound_seconds"):  # no client can be done before it
            ax.axvline(run.summary["bound_seconds"], color=line.get_color(), linewidth=0.8, alpha=0.6)
    return _finish(fig, ax, "seconds since the drop began", "images settled (ok, each user's drop)",
                   "Images settled over time (vertical: each run's physical bound); solid: protocol-level, "
                   "dotted: the real client, dashed: model")


PHASES = (  # (from, to, label, colour): an image's life, as images.jsonl times it
    ("created_at", "node_sent_at", "hashing, waiting for its turn to be sent", "#c7c7c7"),
    ("node_sent_at", "node_acked_at", "node_create in flight", "#ff7f0e"),
    ("upload_started_at", "upload_done_at", "uploading", "#1f77b4"),
    ("upload_done_at", "complete_sent_at", "uploaded, its completion waiting", "#9edae5"),
    ("complete_sent_at", "complete_acked_at", "completion in flight", "#2ca02c"),
)
TIMELINE_ROWS = 300
"""More images than this: an even sample of them, in drop order."""


def image_timeline(runs: list[Run]) -> Figure:
    """One thin row per image, coloured by phase, crossed where it failed: where each drop's time goes."""
    shown = [run for run in runs if run.images][:4]
    fig, axes = plt.subplots(len(shown) or 1, 1, figsize=(9, 1.2 + 2.6 * max(1, len(shown))), squeeze=False)
    for ax, run in zip(axes[:, 0], shown, strict=False):
        images = run.images
        if len(images) > TIMELINE_ROWS:
            images = [images[i] for i in np.linspace(0, len(images) - 1, TIMELINE_ROWS).astype(int)]
        for row, image in enumerate(images):
            t = {"created_at": 0.0, **image["timings"]}  # every image of a drop exists from its start
            if image["outcome"] == "ok" and t.get("complete_sent_at") is None:  # batched: done at the end
                t["complete_sent_at"] = t["complete_acked_at"] = t.get("settled_at")
            for start, end, _label, colour in PHASES:
                if t.get(start) is not None and t.get(end) is not None and t[end] >= t[start]:
                    ax.broken_barh([(t[start], max(t[end] - t[start], 0.05))], (row, 0.9), color=colour)
            if image["outcome"] != "ok":  # a failed image's settled_at is when the client gave up on it
                at = t.get("settled_at") or max((v for v in t.values() if v is not None), default=0.0)
                ax.plot([at], [row + 0.45], marker="x", color=CAUSE_COLOURS.get(image.get("cause"), "k"),
                        markersize=3)
        ax.set_ylim(len(images), 0)
        ax.set_ylabel("image (drop order)")
        ax.set_title(run.label, fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("seconds since the drop began; x: where an image failed, coloured by cause")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour) for *_r, colour in PHASES]
    fig.legend(handles, [label for _s, _e, label, _c in PHASES], loc="upper center", ncol=3, fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def _count_down(ends: list[float | None]) -> tuple[np.ndarray, np.ndarray]:
    """A step curve that starts at len(ends) and falls by one at each end (None: never)."""
    times = np.sort(np.array([t for t in ends if t is not None], dtype=float))
    return np.concatenate([[0.0], times]), len(ends) - np.arange(0, len(times) + 1)


def orphan_deadline_s(run: Run) -> float | None:
    """When the client's sweep removes a node still unconfirmed (None: this client sweeps none)."""
    from bulkbench.config import ConfigError
    from bulkbench.strategies import strategy_params
    try:
        params = strategy_params(run.summary["strategy"])
    except ConfigError:
        return None  # the real client in a browser, or a strategy of another version: no known deadline
    if not getattr(params, "orphan_sweep", False) or run.summary["strategy"].startswith("chunked"):
        return None  # no sweep; or chunked's, which counts from each chunk's start, not the drop's
    large = run.summary["images"] > params.large_canvas_nodes
    return params.orphan_after_large_s if large else params.orphan_after_s


def client_queue(runs: list[Run]) -> Figure:
    """The client's side of the loss: nodes not yet sent (the operation queue) and not yet confirmed,
    against the deadline after which the client's own sweep removes an unconfirmed node."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for number, run in enumerate(run for run in runs if run.images):
        colour = colours[number % len(colours)]

        def end(image: dict, key: str) -> float | None:
            """When the image left this count: its step, or (never reached) when the client gave up on it."""
            t = image["timings"]
            if t.get(key) is not None:
                return t[key]
            return t.get("settled_at") if image["outcome"] != "ok" else None

        for key, style, what in (("node_sent_at", ":", "not yet sent"), ("node_acked_at", "-", "not yet confirmed")):
            x, y = _count_down([end(image, key) for image in run.images])
            ax.step(x, y, where="post", color=colour, linestyle=style, label=f"{run.label}: nodes {what}")
        deadline = orphan_deadline_s(run)
        if deadline is not None:
            ax.axvline(deadline, color=colour, linestyle="--", linewidth=1,
                       label=f"{run.label}: orphan deadline ({deadline:g} s after the drop)")
    return _finish(fig, ax, "seconds since the drop began", "nodes (each user's drop)",
                   "The client's operation queue: a node still unconfirmed at the deadline is swept (orphaned)",
                   legend={"fontsize": 7})


def ack_latency_over_time(runs: list[Run]) -> Figure:
    """Each operation's answer time against when it was sent: the uplink's queue made visible."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for run in (run for run in runs if run.images):
        for sent, acked, marker, what in (("node_sent_at", "node_acked_at", ".", "node_create"),
                                          ("complete_sent_at", "complete_acked_at", "+", "completion")):
            points = [(i["timings"][sent], i["timings"][acked] - i["timings"][sent]) for i in run.images
                      if i["timings"].get(sent) is not None and i["timings"].get(acked) is not None]
            if points:
                x, y = zip(*points, strict=True)
                ax.plot(x, np.maximum(np.array(y) * 1000, 0.1), marker, markersize=3, linestyle="none",
                        label=f"{run.label}: {what}")
    ax.set_yscale("log")
    return _finish(fig, ax, "seconds since the drop began (when the operation was sent)",
                   "its answer after (ms, log scale)", "Operation ack latency over the drop",
                   legend={"fontsize": 7, "markerscale": 2}, grid="both")


def busy_stages(runs: list[Run], stages: tuple[str, ...] = ("ops", "persist", "upload", "thumbnail")) -> list[str]:
    """The server stages that ever held a job in any run: a flat line at zero says nothing."""
    busy = []
    for stage in stages:
        for run in runs:
            series, column = run.series, f"queue_depth.{stage}"
            if series.empty or column not in series:
                continue
            if (series[column] + series.get(f"busy_workers.{stage}", 0)).max() > 0:
                busy.append(stage)
                break
    return busy


def queues_over_time(runs: list[Run]) -> Figure | None:
    """Jobs in each stage that was ever busy, and HTTP requests in flight; None when no run has any."""
    stages = busy_stages(runs)
    if not stages:
        return None
    fig, axes = plt.subplots(len(stages) + 1, 1, figsize=(9, 2.2 * (len(stages) + 1)), sharex=True)
    for run in runs:
        series = run.series
        if series.empty or "t" not in series:
            continue
        style = LINESTYLE[run.summary["engine"]]
        for ax, stage in zip(axes, stages, strict=False):
            column = f"queue_depth.{stage}"
            if column in series:
                ax.plot(series["t"], series[column] + series.get(f"busy_workers.{stage}", 0), style, label=run.label,
                        linewidth=1)
        if "http_in_flight" in series:
            axes[-1].plot(series["t"], series["http_in_flight"], style, label=run.label, linewidth=1)
    for ax, stage in zip(axes, stages, strict=False):
        ax.set_ylabel(f"{stage}\njobs in stage")
        ax.grid(True, alpha=0.3)
    axes[-1].set_ylabel("HTTP requests\nin flight")
    axes[-1].set_xlabel("seconds since the run started")
    axes[-1].grid(True, alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper right")
    axes[0].set_title("Server stages that were ever busy (waiting + in service), and connections; dashed: model")
    fig.tight_layout()
    return fig


def scaling(runs: list[Run]) -> Figure | None:
    """Drop time and messages against images per drop; None with fewer than two drop sizes."""
    if len({run.summary["images"] for run in runs}) < 2:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.summary["engine"], run.summary["strategy"]), []).append(run)
    for (engine, strategy), members in sorted(groups.items()):
        members = sorted(members, key=lambda r: r.summary["images"])
        x = [r.summary["images"] for r in members]
        style = "o-" if engine == "real" else "s--"
        left.plot(x, [r.summary["drop_seconds"] for r in members], style, label=f"{engine} {strategy}")
        right.plot(x, [r.summary["ws_messages_sent"] for r in members], style, label=f"{engine} {strategy}")
    left.set_xlabel("images per drop")
    left.set_ylabel("drop time (s, first byte to last image settled)")
    right.set_xlabel("images per drop")
    right.set_ylabel("WebSocket messages sent (log scale)")
    right.set_yscale("log")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Drop time and messages against images per drop")
    fig.tight_layout()
    return fig
