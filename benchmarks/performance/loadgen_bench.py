"""Can one Locust process outrun the server? Acked operations/s from one Locust process, measured
against a bare WebSocket echo server and against the reference server (optimized, emulation off),
in the same run, with each side's CPU use (so the note can say which side saturates first).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reference_server.process import ServerProcess

LOCUSTFILE = Path(__file__).resolve().parent / "locust_ops.py"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def locust_ops_per_s(url: str, echo: bool, users: int, seconds: int, window: int, out: Path,
                     server_pid: int) -> dict[str, float]:
    prefix = out / ("echo" if echo else "server")
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users),
               "-r", str(users), "-t", f"{seconds}s", "--host", url, "--csv", str(prefix), "--only-summary",
               "--loglevel", "WARNING", "--bb-window", str(window)] + (["--bb-echo"] if echo else [])
    server_cpu = cpu_seconds(server_pid)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    locust_cpu = 0.0
    while process.poll() is None:
        try:
            locust_cpu = cpu_seconds(process.pid)
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.5)
    process.wait(timeout=seconds + 60)
    wall = time.perf_counter() - started
    with open(f"{prefix}_stats.csv") as handle:
        total = next(row for row in csv.DictReader(handle) if row["Name"] == "Aggregated")
    return {"ops_per_s": float(total["Requests/s"]), "requests": int(total["Request Count"]),
            "locust_cpu_share": locust_cpu / wall, "server_cpu_share": (cpu_seconds(server_pid) - server_cpu) / wall}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--window", type=int, default=200)
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        echo_command = [sys.executable, "-m", "benchmarks.performance.baselines", "echo"]
        with ServerProcess("", out / "echo-data", command=echo_command) as echo:
            results["echo"] = locust_ops_per_s(echo.url, True, args.users, args.seconds, args.window, out, echo.pid)
        with ServerProcess("optimized", out / "server-data", emulation=False) as server:
            results["server"] = locust_ops_per_s(server.url, False, args.users, args.seconds, args.window, out,
                                                 server.pid)
    for side, figures in results.items():
        print(f"   one Locust process vs {side:<6}: {figures['ops_per_s']:>9,.0f} acked ops/s "
              f"(Locust CPU {figures['locust_cpu_share']:.0%}, server CPU {figures['server_cpu_share']:.0%})",
              flush=True)
    return results


if __name__ == "__main__":
    main()
