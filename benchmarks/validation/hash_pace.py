"""The page's hash pace against what it had uploaded: the shape of its frame feedback, run by run.

``python -m benchmarks.validation.hash_pace RUN_DIR ...`` reads each results directory's ``images.jsonl``
(a browser run, a protocol-level run or the model's) and prints, per ``STEP`` nodes sent, the seconds per
node and the images uploaded by the middle of that stretch. fc1316b's page sends an image's
``node_create`` as its hash is known, through its single-flight operation queue, so this is how fast it
hashed while its uploads came back, as long as that queue keeps up (once completions crowd it, as at 500
images, it is the queue's pace). The stand-in's ``page_s_per_uploaded_image`` says the pace slows in
proportion to the images uploaded; the page's own runs say whether it does (today's app at 200 images:
about 1-2 s a node whatever it had uploaded; as reported, 1 s rising to 9 s).
"""

from __future__ import annotations

import sys
from pathlib import Path

from reports.data import read_images
from reports.pace import pace


def main(argv: list[str]) -> int:
    runs = [Path(arg) for arg in argv]
    if not runs or not all((run / "images.jsonl").is_file() for run in runs):
        print("usage: python -m benchmarks.validation.hash_pace RUN_DIR ... (each with images.jsonl)", file=sys.stderr)
        return 2
    for run in runs:
        stretches = pace(read_images(run))
        print(f"{run}: " + "  ".join(f"{nodes}:{seconds:.2f}s@{uploaded}" for nodes, seconds, uploaded in stretches))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
