"""Judging a drop by the server's state, and summing drops into the result schema.

An image succeeded only if, at the end of the drop, the server's canvas holds its node, the node
carries its server URL, and that file is stored. The client's log is never the judge; it only
says *why* an image the server does not hold failed (its first reason to give up), or, when the
client never gave up, what was missing on the server.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from bulkbench.results import Cause, ImageRecord, RunSummary, percentiles
from bulkbench.strategies.common import Drop, ImageTrack
from bulkbench.target import TruthSpec, dig

DEFAULT_TRUTH = TruthSpec()


def judge(drop: Drop, canvas: dict[str, Any], stored: Callable[[str], bool],
          truth: TruthSpec = DEFAULT_TRUTH) -> list[ImageRecord]:
    """Each image of ``drop`` against the server's ``canvas`` (read as ``truth`` says: where its nodes
    are, what names a node's image, where it keeps its file); ``stored(name)``: is that file there."""
    nodes = server_nodes(canvas, truth)
    by_hash = truth.node_key != "id"
    records = []
    for track in drop.log.tracks.values():
        node = nodes.get((track.digest or "") if by_hash else track.image.id)
        server_url = dig(node, truth.server_url) if node is not None else None
        filename = dig(node, truth.server_filename) if node is not None else None
        if not filename and isinstance(server_url, str):  # a client that keeps only the URL (ImageCanvas's page)
            filename = server_url.rstrip("/").rsplit("/", 1)[-1]
        if node is not None and server_url and filename and stored(filename):
            records.append(_record(track, "ok", None))
            continue
        if track.failure is not None:
            cause = track.failure
        elif node is None:
            cause = Cause.NEVER_SENT if track.node_sent_at is None else Cause.NOT_ON_SERVER
        elif not server_url:
            cause = Cause.NEVER_SENT if track.complete_sent_at is None else Cause.NOT_ON_SERVER
        else:
            cause = Cause.NOT_ON_SERVER
        records.append(_record(track, "failed", str(cause)))
    return records


def _record(track: ImageTrack, outcome: Literal["ok", "failed"], cause: str | None) -> ImageRecord:
    image = track.image
    return ImageRecord(image.id, outcome, cause, track.timings(), image.size_bytes, image.width, image.height)


class TruthError(RuntimeError):
    """The server's state could not be read: the run has no judgement, so it has no figures."""


def server_nodes(canvas: Any, truth: TruthSpec = DEFAULT_TRUTH) -> dict[str, dict[str, Any]]:
    """The canvas's nodes by what names their image; ``TruthError`` if the answer is not a canvas."""
    nodes = dig(canvas, truth.nodes)
    if nodes is None and isinstance(canvas, dict) and dig(canvas, truth.nodes.rsplit(".", 1)[0]) == {}:
        nodes = []  # ImageCanvas stores a canvas nothing was ever saved to as {}
    if not isinstance(nodes, list):
        raise TruthError(f"the server's answer has no list of nodes at {truth.nodes!r}")
    out: dict[str, dict[str, Any]] = {}
    for node in nodes:
        key = dig(node, truth.node_key)
        if key is not None:
            out.setdefault(str(key), node)
    return out


@dataclass(slots=True)
class DropResult:
    """One user's drop as an engine saw it: the judgement, the counters, the raw samples."""

    user: int
    records: list[ImageRecord]
    ws_messages_sent: int
    ws_messages_received: int
    http_requests: int
    bytes_uploaded: int
    started_at: float
    """Absolute start (wall clock for real runs, simulated time for the model), in seconds."""
    first_byte_s: float
    last_settled_s: float
    op_ack_s: list[float] = field(default_factory=list)
    upload_s: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user, "records": [r.to_json() for r in self.records],
            "ws_messages_sent": self.ws_messages_sent, "ws_messages_received": self.ws_messages_received,
            "http_requests": self.http_requests, "bytes_uploaded": self.bytes_uploaded,
            "started_at": self.started_at, "first_byte_s": self.first_byte_s,
            "last_settled_s": self.last_settled_s, "op_ack_s": self.op_ack_s, "upload_s": self.upload_s,
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DropResult:
        data = dict(data)
        data["records"] = [ImageRecord(**r) for r in data["records"]]
        return cls(**data)


ROUTE_PREFIXES = (("/api/upload", "/api/upload"), ("/api/thumbnails", "/api/thumbnails/generate"),
                  ("/thumbnails/", "/thumbnails/[size]/[name]"), ("/uploads/", "/uploads/[name]"),
                  ("/canvases", "/canvases"), ("/api/canvases", "/api/canvases/[id]"))
"""Request paths counted under one name (the image, size and canvas in a path are not the route)."""


def route_label(method: str, path: str) -> str:
    """``GET /thumbnails/[size]/[name]`` for ``GET /thumbnails/256/abc.webp``: how both engines count requests."""
    path = path.split("?", 1)[0]
    for prefix, label in ROUTE_PREFIXES:
        if path.startswith(prefix):
            return f"{method} {label}"
    return f"{method} {path}"


def count_request(counts: dict[str, dict[str, int]], method: str, path: str, status: int | str) -> None:
    """One answer into a drop's ``http_by_status``, ``http_by_route`` and ``http_by_route_status``
    (``"GET /thumbnails/[size]/[name] 429"``: which requests a limiter refused)."""
    route = route_label(method, path)
    for key, name in (("http_by_status", str(status)), ("http_by_route", route),
                      ("http_by_route_status", f"{route} {status}")):
        table = counts.setdefault(key, {})
        table[name] = table.get(name, 0) + 1


COUNTED_EXTRAS = ("http_by_status", "http_by_route", "http_by_route_status", "frames_sent", "frames_received",
                  "ops_by_type")
"""What every engine counts per drop, by name, into ``DropResult.extra``."""
TOTALLED_EXTRAS = ("upload_attempts", "transport_pings")


def drop_figures(results: Iterable[DropResult]) -> dict[str, Any]:
    """The drops' counts summed for the run's summary, the same way for every engine: answers by status,
    frames by event, operations by type, upload attempts, transport heartbeats."""
    results = list(results)
    out: dict[str, Any] = {}
    for key in COUNTED_EXTRAS:
        counts: Counter[str] = Counter()
        for result in results:
            counts.update(result.extra.get(key, {}))
        if counts or any(key in r.extra for r in results):
            out[key] = dict(sorted(counts.items()))
    for key in TOTALLED_EXTRAS:
        if any(key in r.extra for r in results):
            out[key] = sum(r.extra.get(key, 0) for r in results)
    if any("heartbeats" in r.extra for r in results):
        out["heartbeat"] = heartbeat_figures([r.extra.get("heartbeats", []) for r in results])
    if any("reconnected_at" in r.extra for r in results):  # the model's pages (a browser's: its socket events)
        out["sockets_reopened"] = sum(len(r.extra.get("reconnected_at", [])) for r in results)
        out["first_reopened_s"] = min((t for r in results for t in r.extra.get("reconnected_at", [])), default=None)
    return out


HEARTBEATS_FILE = "heartbeats.jsonl"
"""Beside a recording's ``matrix.jsonl``: its browser rows' pages' pings, one line per page (``key``, ``user``,
``heartbeats`` as [sent at, late by or None], ``socket_events``), which ``calibrate --heartbeat`` fits."""


def heartbeat_figures(pages: list[list[list[float | None]]]) -> dict[str, Any]:
    """How late the pages handled their heartbeat's answers (``[sent at, late by or None]`` per beat and
    page), and the longest stretch a page went between two answers handled: what fc1316b's page holds
    against 30 s when it decides its socket is dead (``NetworkLayer.js:692``). The server answers at once,
    so the lateness is the page's main thread's backlog."""
    late = [beat[1] for beats in pages for beat in beats if beat[1] is not None]
    gap, gap_at = 0.0, None
    for beats in pages:
        handled = sorted(sent + late_s for sent, late_s in beats if late_s is not None)
        for before, after in zip(handled, handled[1:], strict=False):
            if after - before > gap:
                gap, gap_at = after - before, after
    pings, spread = sum(len(beats) for beats in pages), percentiles(late)
    return {"pings": pings, "unanswered": pings - len(late),
            **{f"late_{q}_s": None if spread[q] is None else round(spread[q], 3) for q in ("p50", "p95", "max")},
            "gap_max_s": round(gap, 3), "gap_max_at_s": None if gap_at is None else round(gap_at, 3)}


def last_settled_s(drop: Drop, ended_s: float) -> float:
    """When the drop's last image reached its final state (the strategy's end for any left open)."""
    times = [t.settled_at if t.settled_at is not None else ended_s for t in drop.log.tracks.values()]
    return max(times, default=ended_s)


def summarize(engine: str, strategy: str, profile: str, seed: int, results: Iterable[DropResult],
              extra: dict[str, Any] | None = None) -> RunSummary:
    results = list(results)
    records = [r for result in results for r in result.records]
    causes: dict[str, int] = {}
    for record in records:
        if record.outcome == "failed":
            causes[record.cause or "unknown"] = causes.get(record.cause or "unknown", 0) + 1
    first = min((r.started_at + r.first_byte_s for r in results), default=0.0)
    last = max((r.started_at + r.last_settled_s for r in results), default=0.0)
    settled = sorted(max(0.0, r.started_at + record.timings["settled_at"] - first) for r in results
                     for record in r.records if record.outcome == "ok" and "settled_at" in record.timings)
    return RunSummary(
        engine=engine,  # type: ignore[arg-type]
        strategy=strategy,
        profile=profile,
        images=len(records) // max(1, len(results)),  # per drop; ok + failed counts every user's
        users=len(results),
        images_ok=sum(1 for r in records if r.outcome == "ok"),
        images_failed=sum(1 for r in records if r.outcome == "failed"),
        failures_by_cause=dict(sorted(causes.items())),
        ws_messages_sent=sum(r.ws_messages_sent for r in results),
        ws_messages_received=sum(r.ws_messages_received for r in results),
        http_requests=sum(r.http_requests for r in results),
        bytes_uploaded=sum(r.bytes_uploaded for r in results),
        drop_seconds=round(max(0.0, last - first), 4),
        op_ack_ms=_ms(percentiles(s for r in results for s in r.op_ack_s)),
        upload_ms=_ms(percentiles(s for r in results for s in r.upload_s)),
        seed=seed,
        time_to_first_settled_s=round(settled[0], 4) if settled else None,
        settled_p50_s=round(percentiles(settled)["p50"], 4) if settled else None,
        extra=extra or {},
    )


def _ms(seconds: dict[str, float | None]) -> dict[str, float | None]:
    return {k: (round(v * 1000, 3) if v is not None else None) for k, v in seconds.items()}
