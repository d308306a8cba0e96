"""How far each drop of a matrix got, minute by minute: images settled, nodes sent, files uploaded.

``python -m benchmarks.validation.settled_by_minute DIR`` reads the runs of
``python -m benchmarks.validation.matrix ... --out DIR`` (their ``images.jsonl``) and prints a Markdown
table for the drops of 200 images or more: what a user who stops waiting at 1, 2, 5, 10 or 15 minutes
finds on the server.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from reports.data import read_images

MINUTES = (1, 2, 5, 10, 15)


def progress(images: list[dict], key: str, at_s: float, ok_only: bool = False) -> int:
    return sum(1 for i in images if i["timings"].get(key) is not None and i["timings"][key] <= at_s
               and (not ok_only or i["outcome"] == "ok"))


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python -m benchmarks.validation.settled_by_minute MATRIX_DIR", file=sys.stderr)
        return 2
    print(f"| client | app | images | uplink | settled by {' / '.join(map(str, MINUTES))} min | nodes sent by then "
          "| files uploaded by then |")
    print("|---|---|---|---|---|---|---|")
    for run in sorted(p for p in Path(argv[0]).glob("run*") if (p / "images.jsonl").exists()):
        summary = orjson.loads((run / "summary.json").read_bytes())[0]
        if summary["images"] < 200:
            continue
        images = read_images(run)
        uplink = summary["extra"].get("network", {}).get("uplink_mbit") or 0
        times = [60.0 * m for m in MINUTES]
        columns = [" / ".join(str(progress(images, key, t, ok)) for t in times)
                   for key, ok in (("settled_at", True), ("node_sent_at", False), ("upload_done_at", False))]
        print(f"| {'the page' if summary['engine'] == 'browser' else summary['strategy']} | "
              f"{'as reported' if 'as-reported' in summary['profile'] else 'today'} | {summary['images']} | "
              f"{'loopback' if not uplink else f'{uplink:g} Mbit/s'} | " + " | ".join(columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
