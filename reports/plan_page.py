"""The capacity plan's page: ``plan.md``, ``plan.html``, ``plan.json`` and a failure-rate heatmap per
strategy and profile, from what ``sim.plan`` computed."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import orjson  # noqa: E402


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def heatmap(rows: list[dict[str, Any]], images: list[int], users: list[int], title: str) -> bytes:
    grid = np.full((len(users), len(images)), np.nan)
    censored = np.zeros_like(grid, dtype=bool)
    for row in rows:
        if row["images"] in images and row["users"] in users:
            at = users.index(row["users"]), images.index(row["images"])
            grid[at] = row["failure_rate"] * 100
            censored[at] = bool(row.get("censored"))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    image = ax.imshow(grid, cmap="RdYlGn_r", vmin=0, vmax=100, aspect="auto", origin="lower")
    ax.set_xticks(range(len(images)), [str(i) for i in images])
    ax.set_yticks(range(len(users)), [str(u) for u in users])
    ax.set_xlabel("images per drop")
    ax.set_ylabel("users at once")
    for (y, x), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(x, y, f"{value:.0f}" + ("+" if censored[y, x] else ""), ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="images lost (%)")
    ax.set_title(title)
    fig.tight_layout()
    return _png(fig)


def write(out: Path, result: dict[str, Any]) -> dict[str, Path]:
    """The plan's files in ``out``; returns where each went."""
    out.mkdir(parents=True, exist_ok=True)
    figures = {f"{p['strategy']}-{p['profile']}": heatmap(
        [r for r in result["rows"] if r["strategy"] == p["strategy"] and r["profile"] == p["profile"]
         and not r["knob"]], result["grid"]["images"], result["grid"]["users"],
        f"{p['strategy']} on {p['profile']}: images lost (%)") for p in result["plans"]}
    (out / "plan.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    t = result["targets"]
    how = f"{result.get('replications', 1)} runs a cell"
    if result.get("horizon_s"):
        how += (f"; a cell is simulated to {result['horizon_s']:g} s, past its target, or until its client has"
                f" given up on more images than its failure target allows (marked +: its drop time is a lower"
                f" bound, and its images still open count as lost; it runs no further replication)")
    lines = [f"# Capacity plan (model; failure rate < {t['failure_rate']:.1%}, drop < {t['drop_seconds']:g} s, "
             f"uplink {result['uplink_mbit']:g} Mbit/s; {how})", "",
             "| strategy | profile | largest drop (1 user) | most users | best server knob (largest drop, its time) | "
             "USL sigma | USL kappa | USL peak users |", "|---|---|---|---|---|---|---|---|"]
    for p in result["plans"]:
        most = next(v for k, v in p.items() if k.startswith("most_users_at_"))
        usl = p["usl"] or {}
        judged = p.get("knobs", {}).get(p["best_knob"], {})
        at = f", {judged['drop_s_at_largest']:.0f} s" if judged.get("drop_s_at_largest") is not None else ""
        best = f"{p['best_knob']} ({p['largest_drop_by_knob'].get(p['best_knob'], 0)}{at})"
        lines.append(f"| {p['strategy']} | {p['profile']} | {p['largest_drop_1_user']} | {most} | {best} | "
                     f"{usl.get('sigma', float('nan')):.3f} | {usl.get('kappa', float('nan')):.4f} | "
                     f"{usl.get('peak_users', float('nan')):.1f} |")
    if result.get("verified"):
        lines += ["", "## Verified by real runs", "",
                  f"Within the model's stated error: failure rate +-{result['tolerance']['failure_rate']}, "
                  f"drop time +-{result['tolerance']['drop_seconds']:.0%} (`sim/accuracy.py`).", "",
                  "| strategy | profile | images | users | failure rate predicted | measured | drop s predicted | "
                  "measured | within the model's error |", "|---|---|---|---|---|---|---|---|---|"]
        for v in result["verified"]:
            lines.append(f"| {v['strategy']} | {v['profile']} | {v['images']} | {v['users']} | "
                         f"{v['predicted_failure_rate']:.3f} | {v['measured_failure_rate']:.3f} | "
                         f"{v['predicted_drop_seconds']:.1f} | {v['measured_drop_seconds']:.1f} | "
                         f"{'yes' if v['within_model_error'] else 'NO'} |")
    for name, data in figures.items():
        (out / f"heatmap-{name}.png").write_bytes(data)
        lines += ["", f"![{name}](heatmap-{name}.png)"]
    (out / "plan.md").write_text("\n".join(lines) + "\n")
    body = "".join(f"<h2>{name}</h2><img src='data:image/png;base64,{base64.b64encode(data).decode()}'>"
                   for name, data in figures.items())
    table = "<pre>" + "\n".join(lines[:4 + len(result["plans"])]) + "</pre>"
    (out / "plan.html").write_text(f"<!doctype html><meta charset=utf-8><title>bulkbench plan</title>"
                                   f"<h1>Capacity plan</h1>{table}{body}")
    return {"markdown": out / "plan.md", "html": out / "plan.html", "json": out / "plan.json"}


