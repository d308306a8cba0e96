"""One recording out of several: the browser rows of some recordings (with their course), browser runs not in a
recording yet, and protocol-level rows of the matrix tool, in one ``matrix.jsonl`` (and ``course.jsonl``), so that
``bulkbench validate OUT --engines`` holds one scenario's browser runs, whichever session made them, against the
protocol-level client (``examples/validation/browser-boot``: one boot's pages).

Each browser row is kept as it was recorded, its ``repeat`` numbered again within its scenario and its source
named in ``extra.gathered_from``::

    python -m benchmarks.validation.gather OUT --recordings examples/validation/browser-day3 ... \\
        --browser-runs results/page-200 --protocol bench-results/boot
"""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson

from benchmarks.validation.matrix import keep_course, key
from bulkbench.course import COURSE_FILE
from bulkbench.target import APP_TARGETS

MATRIX_FILE = "matrix.jsonl"


def gather(out: Path, recordings: list[Path], browser_runs: list[Path], protocol: list[Path]) -> dict[str, int]:
    """Writes ``out/matrix.jsonl`` and ``out/course.jsonl``; returns the browser rows per scenario."""
    rows: list[dict] = []
    course: list[dict] = []
    counts: dict[str, int] = {}

    def numbered(spec: dict) -> dict:
        spec = {name: value for name, value in spec.items() if name != "repeat"}
        counts[key(spec)] = counts.get(key(spec), 0) + 1
        return {**spec, "repeat": counts[key(spec)]}

    for folder in recordings:
        kept: dict[str, list[dict]] = {}
        if (folder / COURSE_FILE).is_file():
            for line in (folder / COURSE_FILE).read_text().splitlines():
                page = orjson.loads(line)
                kept.setdefault(page["key"], []).append(page)
        for line in (folder / MATRIX_FILE).read_text().splitlines():
            entry = orjson.loads(line)
            if entry["spec"].get("engine") != "browser":
                continue
            was = entry["key"]
            entry["spec"] = numbered(entry["spec"])
            entry["key"] = key(entry["spec"])
            entry["summary"].setdefault("extra", {})["gathered_from"] = f"{folder.name} {was}"
            rows.append(entry)
            course += [{**page, "key": entry["key"]} for page in kept.get(was, [])]
    out.mkdir(parents=True, exist_ok=True)
    (out / COURSE_FILE).write_text("".join(orjson.dumps(page).decode() + "\n" for page in course))
    for run in browser_runs:  # browser-run's results: one summary of one scenario
        [summary] = orjson.loads((run / "summary.json").read_bytes())
        [app] = [state for state, target in APP_TARGETS.items() if target == summary["profile"]]
        spec = numbered({"engine": "browser", "app": app, "images": summary["images"],
                         "uplink_mbit": summary["extra"]["network"]["uplink_mbit"]})
        rows.append({"key": key(spec), "spec": spec, "summary": summary})
        keep_course(out, key(spec), run)
    for folder in protocol:  # the matrix tool's --out: its protocol-level rows, each with its run folder's course
        for line in (folder / MATRIX_FILE).read_text().splitlines():
            entry = orjson.loads(line)
            if entry["spec"].get("engine") == "browser":
                continue  # a browser row of the same --out is one of --recordings
            rows.append(entry)
            runs = [d for d in folder.glob("run*") if (d / "row-key.txt").read_text().strip() == entry["key"]]
            if runs:
                keep_course(out, entry["key"], runs[-1])
    (out / MATRIX_FILE).write_text("".join(orjson.dumps(entry).decode() + "\n" for entry in rows))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--recordings", nargs="*", type=Path, default=[], help="recordings whose browser rows to take")
    parser.add_argument("--browser-runs", nargs="*", type=Path, default=[], help="browser-run --out folders")
    parser.add_argument("--protocol", nargs="*", type=Path, default=[], help="the matrix tool's --out folders")
    args = parser.parse_args(argv)
    for scenario, n in gather(args.out, args.recordings, args.browser_runs, args.protocol).items():
        print(f"{n:>3} browser runs  {scenario}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
