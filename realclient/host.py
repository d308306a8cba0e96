"""The machine under a browser drop: how busy its cores were, and how much time its hypervisor gave others.

Why: the same 200-image drop of the same page on the same machine settled with nothing lost one day and lost
0.5-0.7 of its images on two others, and three 50-image drops a day did not tell the days apart
(``examples/validation/browser-day3``). The page's own busy series says the page was busy; it cannot say why.
These figures, beside it, say whether the machine was busy with the drop itself (the browser, the app's
server), or short of CPU (``steal``: time a virtual machine's cores were runnable and the hypervisor ran
someone else), or loaded by other work (the load average).

Read from Linux's ``/proc/stat`` and ``/proc/loadavg`` every ``BUSY_BUCKET_S``, the page's own bucket; on a
machine without them the series is empty.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
"""The first eight of ``/proc/stat``'s ``cpu`` line, in jiffies over all cores (guest time is in user's)."""

Sample = tuple[float, tuple[int, ...], float]
"""(wall time, the cpu line's jiffies, the 1-minute load average)."""


def read_host(stat: Path = Path("/proc/stat"), loadavg: Path = Path("/proc/loadavg")) -> Sample | None:
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
        load1 = float(loadavg.read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    if fields[:1] != ["cpu"] or len(fields) < 1 + len(CPU_FIELDS):
        return None
    return time.time(), tuple(int(v) for v in fields[1:1 + len(CPU_FIELDS)]), load1


def sample_host(every_s: float, stop: threading.Event, samples: list[Sample]) -> None:
    """Append a sample now and every ``every_s`` until ``stop``."""
    while True:
        if (sample := read_host()) is not None:
            samples.append(sample)
        if stop.wait(every_s):
            return


def machine(cpuinfo: Path = Path("/proc/cpuinfo"), stat: Path = Path("/proc/stat"),
            boot_id: Path = Path("/proc/sys/kernel/random/boot_id")) -> dict[str, str | float | None]:
    """Which machine, and which boot of it, a drop ran on: runs of one boot share a "day" (a virtual machine
    started again may land on another host), so drops can be grouped by it. Fields it cannot read are None."""
    def read(path: Path) -> str:
        try:
            return path.read_text()
        except OSError:
            return ""
    first_core = read(cpuinfo).split("\n\n", 1)[0].splitlines()
    info = {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in first_core if ":" in line)}
    booted = next((line.split()[1] for line in read(stat).splitlines() if line.startswith("btime ")), None)
    return {"boot_id": read(boot_id).strip() or None, "booted_at": float(booted) if booted else None,
            "cpu_model": info.get("model name") or None,
            "cpu_mhz": float(info["cpu MHz"]) if info.get("cpu MHz") else None}


def host_series(samples: list[Sample], started_at: float) -> list[list[float]]:
    """[seconds from the drop to the interval's start, share of all cores busy, share stolen, load average at its
    end] between each two samples."""
    idle, iowait, steal = CPU_FIELDS.index("idle"), CPU_FIELDS.index("iowait"), CPU_FIELDS.index("steal")
    series = []
    for (at, before, _load), (_at, after, load1) in zip(samples, samples[1:], strict=False):
        delta = [b - a for a, b in zip(before, after, strict=True)]
        total = sum(delta)
        if total <= 0:
            continue
        series.append([round(at - started_at, 1), round(1 - (delta[idle] + delta[iowait]) / total, 3),
                       round(delta[steal] / total, 3), load1])
    return series
