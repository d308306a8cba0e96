"""``make demo``: today's client against the batch protocol, 200 images, legacy server, for real.

Runs ``bulkbench run`` for ``individual`` and ``batched`` one after the other on a 20 Mbit/s
uplink (a shaped network namespace; unshaped loopback where namespaces are not permitted) and
prints the two side by side. Results directories: ``results/demo-*``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from loadtests.run import RunOptions, run, table

IMAGES = 200
UPLINK_MBIT = 20.0


def namespaces_allowed() -> bool:
    probe = subprocess.run(["ip", "netns", "add", "bulkbench-probe"], capture_output=True)
    subprocess.run(["ip", "netns", "del", "bulkbench-probe"], capture_output=True)
    return probe.returncode == 0


def main() -> int:
    uplink = UPLINK_MBIT if namespaces_allowed() else 0.0
    where = f"a {uplink:g} Mbit/s uplink" if uplink else "unshaped loopback (no permission for namespaces)"
    summaries = []
    for strategy in ("individual", "batched"):
        print(f"\n>>> {strategy}: {IMAGES} images onto the legacy server over {where}", flush=True)
        summaries.append(run(RunOptions(strategy=strategy, images=IMAGES, profile="legacy", uplink_mbit=uplink,
                                        out=Path(f"results/demo-{strategy}"), quiet=False, max_seconds=900)))
    print()
    print(table(summaries))
    print("\nlost = images the server's canvas does not hold with their file (the client's counters are not "
          "the judge)\nresults: results/demo-individual/, results/demo-batched/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
