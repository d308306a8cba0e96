"""Samples the server's ``/metrics`` over a run: queue depths, busy workers, connections (a CSV)."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path

import urllib3
from prometheus_client.parser import text_string_to_metric_families

from reference_server.metrics import STAGE_GAUGES

SAMPLE_EVERY_S = 0.5


def parse_metrics(text: str) -> dict[str, float]:
    """The gauges a report plots, flattened: ``queue_depth.ops``, ``busy_workers.thumbnail``, ..."""
    row: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in STAGE_GAUGES:
                row[f"{STAGE_GAUGES[sample.name]}.{sample.labels['stage']}"] = sample.value
            elif sample.name == "bulkbench_ws_connections":
                row["ws_connections"] = sample.value
            elif sample.name == "process_resident_memory_bytes":
                row["server_rss_mb"] = round(sample.value / 1e6, 1)
            elif sample.name == "bulkbench_thumbnails_owed":
                row["thumbnails_owed"] = sample.value
            elif sample.name == "bulkbench_http_in_flight":
                row["http_in_flight"] = max(0.0, sample.value - 1)  # not counting this very request
    return row


def sample_metrics(base_url: str, out: Path, stopped: Callable[[], bool], max_seconds: float = 7200) -> None:
    """Poll until ``stopped()`` or ``max_seconds``; one CSV row per sample, flushed as it goes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    http = urllib3.PoolManager(timeout=5.0, retries=False)
    started = time.perf_counter()
    writer = None
    with open(out, "w", newline="") as handle:
        while not stopped() and time.perf_counter() - started < max_seconds:
            try:
                response = http.request("GET", f"{base_url}/metrics")
                row = {"t": round(time.perf_counter() - started, 3), "wall": round(time.time(), 3),
                       **parse_metrics(response.data.decode())}
            except (urllib3.exceptions.HTTPError, ValueError):
                row = None
            if row is not None:
                if writer is None:
                    writer = csv.DictWriter(handle, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow({k: row.get(k, "") for k in writer.fieldnames})
                handle.flush()
            time.sleep(SAMPLE_EVERY_S)


def save_stage_samples(base_url: str, out: Path) -> None:
    """The server's recent per-job (items, seconds) of every stage, for ``bulkbench calibrate``."""
    try:
        response = urllib3.PoolManager(timeout=10.0, retries=2).request("GET", f"{base_url}/metrics/samples")
    except urllib3.exceptions.HTTPError:
        return
    if response.status == 200:
        out.write_bytes(response.data)
