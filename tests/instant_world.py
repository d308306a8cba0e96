"""A tiny in-memory world for driving strategies in unit tests: a real canvas, fixed costs.

Operations are applied to ``bulkbench.canvas.Canvas`` (pure), one at a time, after a
fixed round trip; uploads take a fixed time through the browser's 6 connections. Scripted faults
(refused uploads, lost answers) let a test aim at one behaviour.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import simpy

from bulkbench.canvas import Canvas
from bulkbench.effects import BROWSER_CONNECTIONS_PER_HOST, Answer, AnswerKind, HttpResult
from bulkbench.limits import Limits
from bulkbench.protocol import ExecuteOperation, OpType, execute_operation_frame, parse_client_frame
from bulkbench.workload import ImageSpec
from sim.driver import SimClient


@dataclass
class InstantWorld:
    env: simpy.Environment
    limits: Limits = field(default_factory=Limits)
    rtt_s: float = 0.01
    op_service_s: float = 0.001
    upload_s: float = 0.2
    hash_s: float = 0.01
    refuse_uploads: dict[str, list[int]] = field(default_factory=dict)
    """image id -> statuses to answer its next uploads with (e.g. [429, 429])."""
    lose_answers: set[str] = field(default_factory=set)
    canvases: dict[str, Canvas] = field(default_factory=dict)
    stored: set[str] = field(default_factory=set)
    ops_seen: list[tuple[str, str]] = field(default_factory=list)
    fetches: int = 0
    fetched_at: list[float] = field(default_factory=list)
    """When each GET's connection was granted."""
    gets: list[tuple[float, str]] = field(default_factory=list)
    """When each GET was answered, and its path."""
    refuse_gets: list[int] = field(default_factory=list)
    """Statuses to answer the next GETs with, in order (e.g. [503, 503]); then 200."""
    get_retry_after_s: float | None = None
    """The Retry-After a refused GET carries (None: no header, as ImageCanvas's limiter)."""
    posts: int = 0
    retry_after_s: float = 1.0
    """The Retry-After a refused upload (429/503) carries."""
    attempts: dict[str, list[float]] = field(default_factory=dict)
    """image id -> when each of its uploads reached the server."""

    def __post_init__(self) -> None:
        self.server = simpy.Resource(self.env, 1)
        self.pools: dict[int, simpy.Resource] = {}

    def canvas(self, canvas_id: str) -> Canvas:
        return self.canvases.setdefault(canvas_id, Canvas(canvas_id, self.limits))

    def hash_seconds(self, client: SimClient, image: ImageSpec) -> float:
        return self.hash_s

    def send_op(self, client: SimClient, operation_id: str, op_type: OpType, params: dict[str, Any]) -> None:
        self.env.process(self._serve(client, operation_id, op_type, params))

    def _serve(self, client: SimClient, operation_id: str, op_type: OpType, params: dict[str, Any]) -> Generator:
        yield self.env.timeout(self.rtt_s / 2)
        with self.server.request() as slot:
            yield slot
            yield self.env.timeout(self.op_service_s)
            self.ops_seen.append((operation_id, str(op_type)))
            message = parse_client_frame(execute_operation_frame(operation_id, op_type, params), self.limits)
            if isinstance(message, ExecuteOperation):
                applied = self.canvas(client.canvas_id).apply(message.operation, self.stored.__contains__)
                if op_type in (OpType.BATCH_NODE_CREATE, OpType.BATCH_UPLOAD_COMPLETE):
                    answer = Answer(AnswerKind.ACK, {"operationId": operation_id, "results": applied.results})
                elif applied.results[0]["ok"]:
                    answer = Answer(AnswerKind.ACK, {"operationId": operation_id})
                else:
                    answer = Answer(AnswerKind.REJECTED, {"operationId": operation_id, **applied.results[0]})
            else:
                answer = Answer(AnswerKind.REJECTED, {"operationId": operation_id, "code": message.code.value})
        yield self.env.timeout(self.rtt_s / 2)
        if operation_id not in self.lose_answers:
            client.deliver(operation_id, answer)

    def send_frame(self, client: SimClient, event: str, data: dict[str, Any]) -> None:
        return None

    def _pool(self, client: SimClient) -> simpy.Resource:
        return self.pools.setdefault(client.user, simpy.Resource(self.env, BROWSER_CONNECTIONS_PER_HOST))

    def upload(self, client: SimClient, image: ImageSpec, digest: str, timeout_s: float) -> Generator:
        with self._pool(client).request() as connection:
            yield connection
            started = self.env.now
            self.attempts.setdefault(image.id, []).append(started)
            yield self.env.timeout(self.upload_s)
            client.bytes_uploaded += image.size_bytes
            script = self.refuse_uploads.get(image.id)
            if script:
                status = script.pop(0)
                retry_after = self.retry_after_s if status in (429, 503) else None
                return HttpResult(status, {}, self.env.now - started, retry_after_s=retry_after)
            name = f"{image.id}.png"
            self.stored.add(name)
            return HttpResult(200, {"url": f"/uploads/{name}", "serverFilename": name, "hash": digest},
                              self.env.now - started)

    def fetch(self, client: SimClient, paths: tuple[str, ...], timeout_s: float,
              until_refused: bool = False) -> Generator:
        with self._pool(client).request() as connection:
            yield connection
            self.fetched_at.append(self.env.now)
            results = []
            for path in paths:
                yield self.env.timeout(0.005)
                self.fetches += 1
                self.gets.append((self.env.now, path))
                status = self.refuse_gets.pop(0) if self.refuse_gets else 200
                retry_after = self.get_retry_after_s if status in (429, 503) else None
                results.append(HttpResult(status, retry_after_s=retry_after))
                if until_refused and results[-1].refused:
                    break
            return tuple(results)

    def post(self, client: SimClient, path: str, body: dict[str, Any], timeout_s: float) -> Generator:
        with self._pool(client).request() as connection:
            yield connection
            yield self.env.timeout(0.005)
            self.posts += 1
            return HttpResult(200)
