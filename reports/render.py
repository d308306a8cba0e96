"""``bulkbench report RUN_DIR...``: ``report.html`` (one file, figures embedded) and ``report.md``."""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from reports import figures
from reports.data import Run, headline, load_run

FIGURES = (
    ("failures", "Failures by cause", figures.failures_by_cause),
    ("ack_cdf", "Operation ack latency", figures.ack_latency_cdf),
    ("settled", "Images settled over time", figures.settled_over_time),
    ("timeline", "Each image's life: where the drop's time goes", figures.image_timeline),
    ("client_queue", "The client's operation queue against its orphan deadline", figures.client_queue),
    ("ack_over_time", "Operation ack latency over the drop", figures.ack_latency_over_time),
    ("queues", "Server queues and connections over time", figures.queues_over_time),
    ("scaling", "Drop time and messages against images per drop", figures.scaling),
)

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f3f3f3}td:nth-child(-n+3){text-align:left}img{max-width:100%}"""


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def build(run_dirs: list[Path], out: Path, title: str = "bulkbench report") -> dict[str, Any]:
    runs: list[Run] = [load_run(Path(d)) for d in run_dirs]
    table = headline(runs)
    out.mkdir(parents=True, exist_ok=True)
    images = {name: _png(fig) for name, _caption, make in FIGURES if (fig := make(runs)) is not None}
    for name, _caption, _make in FIGURES:
        if name not in images:  # left out this time: no stale picture of an earlier report beside this one
            (out / f"{name}.png").unlink(missing_ok=True)
    for name, data in images.items():
        (out / f"{name}.png").write_bytes(data)
    shown = table.fillna("")
    shown["failure rate"] = [f"{v:.1%}" for v in table["failure rate"]]
    (out / "report.md").write_text(_markdown(title, shown, run_dirs, images))
    (out / "report.html").write_text(_html(title, shown, images, run_dirs, out))
    return {"html": out / "report.html", "markdown": out / "report.md", "table": table}


def _markdown(title: str, table: pd.DataFrame, run_dirs: list[Path], shown_figures: dict[str, bytes]) -> str:
    lines = [f"# {title}", "", table.to_markdown(index=False) if _has_tabulate() else _pipe_table(table), ""]
    for name, caption, _make in FIGURES:
        if name in shown_figures:
            lines += [f"## {caption}", "", f"![{caption}]({name}.png)", ""]
    lines += ["Runs: " + ", ".join(f"`{d}`" for d in run_dirs), ""]
    return "\n".join(lines)


def _pipe_table(table: pd.DataFrame) -> str:
    head = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def _html(title: str, table: pd.DataFrame, images: dict[str, bytes], run_dirs: list[Path], out: Path) -> str:
    parts = [f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><style>{STYLE}</style>",
             f"<h1>{html.escape(title)}</h1>", table.to_html(index=False, escape=True, border=0)]
    for name, caption, _make in FIGURES:
        if name not in images:
            continue  # it would say nothing for these runs (one drop size, no busy stage)
        encoded = base64.b64encode(images[name]).decode()
        parts.append(f"<h2>{html.escape(caption)}</h2><img alt='{html.escape(caption)}' "
                     f"src='data:image/png;base64,{encoded}'>")
    parts.append("<p>Runs: " + ", ".join(_run_link(Path(d), out) for d in run_dirs) + "</p>")
    return "\n".join(parts)


def _run_link(run_dir: Path, out: Path) -> str:
    """A run's folder, with Locust's own report beside it when the run has one."""
    locust = run_dir / "locust.html"
    if not locust.exists():
        return html.escape(str(run_dir))
    href = os.path.relpath(locust.resolve(), out.resolve())
    return f"{html.escape(str(run_dir))} (<a href='{html.escape(href)}'>Locust's report</a>)"


def main(args: Any) -> int:
    result = build([Path(d) for d in args.run_dirs], Path(args.out), args.title)
    print(result["table"].to_string(index=False))
    print(f"\nreport: {result['html']} and {result['markdown']}")
    return 0
