"""The report's figures. Each takes the runs and returns a matplotlib Figure with labelled axes."""

from __future__ import annotations

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
    ax.set_xlabel("operation ack latency (ms, log scale)")
    ax.set_ylabel("fraction of acked operations")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Operation ack latency (CDF, raw samples); dashed: model, dotted: the real client")
    fig.tight_layout()
    return fig


def settled_over_time(runs: list[Run]) -> Figure:
    """When each image reached the state it ended in (settled or given up), one line per run."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for run in runs:
        times = np.sort(np.array(run.settled_s))
        if not len(times):
            continue
        ax.step(np.concatenate([[0.0], times]), np.arange(0, len(times) + 1), where="post", label=run.label,
                linestyle=LINESTYLE[run.summary["engine"]])
    ax.set_xlabel("seconds since the drop began")
    ax.set_ylabel("images settled (ok, each user's drop)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Images settled over time; solid: protocol-level, dotted: the real client, dashed: model")
    fig.tight_layout()
    return fig


def queues_over_time(runs: list[Run], stages: tuple[str, ...] = ("ops", "upload", "thumbnail")) -> Figure:
    fig, axes = plt.subplots(len(stages) + 1, 1, figsize=(9, 2.2 * (len(stages) + 1)), sharex=True)
    for run in runs:
        series = run.series
        if series.empty or "t" not in series:
            continue
        style = LINESTYLE[run.summary["engine"]]
        for ax, stage in zip(axes, stages, strict=False):
            column = f"queue_depth.{stage}"
            busy = f"busy_workers.{stage}"
            if column in series:
                ax.plot(series["t"], series[column] + series.get(busy, 0), style, label=run.label, linewidth=1)
        if "http_in_flight" in series:
            axes[-1].plot(series["t"], series["http_in_flight"], style, label=run.label, linewidth=1)
    for ax, stage in zip(axes, stages, strict=False):
        ax.set_ylabel(f"{stage}\njobs in stage")
        ax.grid(True, alpha=0.3)
    axes[-1].set_ylabel("HTTP requests\nin flight")
    axes[-1].set_xlabel("seconds since the run started")
    axes[-1].grid(True, alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper right")
    axes[0].set_title("Server queues (waiting + in service) and connections over time; dashed: model")
    fig.tight_layout()
    return fig


def scaling(runs: list[Run]) -> Figure:
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
