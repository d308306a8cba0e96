"""Prometheus metrics of one server instance, on a registry of its own (several apps per process in tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest

STAGE_GAUGES = {"bulkbench_stage_queue_depth": "queue_depth", "bulkbench_stage_busy_workers": "busy_workers"}
"""Per-stage gauges, by metric name, and the short name a time series column uses."""
SERVICE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_resident_memory_bytes, process_cpu_seconds_total, open fds
        self.stage_queue_depth = Gauge(
            "bulkbench_stage_queue_depth", "Jobs waiting for a worker", ["stage"], registry=r
        )
        self.stage_busy_workers = Gauge(
            "bulkbench_stage_busy_workers", "Workers busy", ["stage"], registry=r
        )
        self.stage_workers = Gauge("bulkbench_stage_workers", "Workers configured", ["stage"], registry=r)
        self.stage_service_seconds = Histogram(
            "bulkbench_stage_service_seconds",
            "Time a job holds a worker (real work plus emulated time)",
            ["stage"],
            buckets=SERVICE_BUCKETS,
            registry=r,
        )
        self.stage_refused_total = Counter(
            "bulkbench_stage_refused", "Jobs refused by admission control", ["stage"], registry=r
        )
        self.ws_frames_total = Counter(
            "bulkbench_ws_frames", "WebSocket frames", ["direction", "event"], registry=r
        )
        self.ws_dropped_total = Counter(
            "bulkbench_ws_dropped", "WebSocket clients dropped for not reading (backlog or stalled)", ["reason"],
            registry=r,
        )
        self.ws_connections = Gauge("bulkbench_ws_connections", "Open WebSocket connections", registry=r)
        self.http_in_flight = Gauge("bulkbench_http_in_flight", "HTTP requests being served", registry=r)
        self.http_responses_total = Counter(
            "bulkbench_http_responses", "HTTP responses", ["route", "status"], registry=r
        )
        self.operations_total = Counter(
            "bulkbench_operations", "Operations by type and outcome", ["type", "outcome"], registry=r
        )
        self.upload_bytes_total = Counter(
            "bulkbench_upload_bytes", "Bytes of upload bodies received", registry=r
        )
        self.uploads_swept_total = Counter(
            "bulkbench_uploads_swept_total", "Stored uploads the file sweep deleted (no canvas used them)", registry=r
        )
        self.thumbnails_owed = Gauge(
            "bulkbench_thumbnails_owed", "Stored files whose after-the-answer thumbnails are not made yet",
            registry=r,
        )

    def ws_frame_counter(self, direction: str) -> Callable[[str], None]:
        """A fast ``count(event)`` for one direction: label children cached, not looked up per frame."""
        children: dict[str, Any] = {}
        counter = self.ws_frames_total

        def count(event: str) -> None:
            child = children.get(event)
            if child is None:
                child = children[event] = counter.labels(direction, event)
            child.inc()

        return count

    def render(self) -> bytes:
        return generate_latest(self.registry)
