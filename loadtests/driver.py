"""The gevent driver: a strategy's effects performed for real (the counterpart of ``sim.driver``).

Each ``Spawn`` is a greenlet, each named queue a ``gevent.queue.Queue``; operations go out on the
drop's ``DropSocket``, uploads and GETs through its ``Browser``. Every answered operation, upload
and GET is reported through ``report`` (in Locust: ``events.request.fire``). A process ends only
when the processes it spawned have ended.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Generator
from typing import Any

import gevent
import gevent.event
from gevent.queue import Empty, Queue

from bulkbench.effects import (
    AwaitAnswers,
    Fetch,
    Hash,
    HttpResult,
    Join,
    Now,
    Post,
    Put,
    Reconnect,
    SendFrame,
    SendOp,
    Sleep,
    Spawn,
    Take,
    Upload,
)
from bulkbench.workload import ImageSpec
from loadtests.browser import Browser
from loadtests.dropsocket import DropSocket

Report = Callable[..., None]
"""Called as ``report(request_type, name, response_time_ms, response_length, exception)``."""


def no_report(*args: Any, **kwargs: Any) -> None:
    return None


class GeventDriver:
    def __init__(self, socket: DropSocket, browser: Browser, image_bytes: Callable[[ImageSpec], bytes],
                 report: Report = no_report) -> None:
        self.socket = socket
        self.browser = browser
        self.image_bytes = image_bytes
        self.report = report
        self.queues: defaultdict[str, Queue] = defaultdict(Queue)
        self.started = time.perf_counter()
        self.first_byte_s: float | None = None
        self.greenlets: set[gevent.Greenlet] = set()
        """Every process of the drop still running (``stop`` ends them all)."""
        self.failure: BaseException | None = None
        """The first exception a process of the drop raised: it ends them all (``_failed``)."""

    @property
    def now(self) -> float:
        return time.perf_counter() - self.started

    def mark_first_byte(self) -> None:
        if self.first_byte_s is None:
            self.first_byte_s = self.now

    def run(self, strategy: Generator[Any, Any, Any], cap_s: float | None = None,
            stop: gevent.event.Event | None = None) -> bool:
        """Run a strategy to its end (and every process it spawned); True if it ended, False if ``cap_s``
        (seconds since construction) or ``stop`` (the run's thresholds crossed) ended it first: then every
        process of it is stopped where it is, as a person closing the tab stops a page. Times count from
        construction."""
        main = gevent.spawn(self._run, strategy)
        self.greenlets.add(main)
        gevent.wait([main] if stop is None else [main, stop], timeout=None if cap_s is None else
                    max(0.0, cap_s - self.now), count=1)
        if main.ready():
            main.get()  # its exception, if it raised one
            if self.failure is not None:
                raise self.failure
            return True
        gevent.killall(list(self.greenlets))
        return False

    def _run(self, strategy: Generator[Any, Any, Any]) -> None:
        children: list[gevent.Greenlet] = []
        value: Any = None
        try:
            while True:
                try:
                    effect = strategy.send(value)
                except StopIteration:
                    break
                value = self._perform(effect, children)
        finally:
            gevent.joinall(children)
        for child in children:
            if child.exception is not None:
                raise child.exception

    def _failed(self, child: gevent.Greenlet) -> None:
        """A process raised: its siblings may wait for what it would have done (a queue it feeds), so
        the drop ends now, every process where it is, and ``run`` raises its exception."""
        if self.failure is None:
            self.failure = child.exception
            gevent.killall(list(self.greenlets), block=False)

    def _perform(self, effect: Any, children: list[gevent.Greenlet]) -> Any:
        match effect:
            case Sleep(seconds):
                gevent.sleep(max(0.0, seconds))
                return None
            case Now():
                return self.now
            case Spawn(process):
                child = gevent.spawn(self._run, process)
                children.append(child)
                self.greenlets.add(child)
                child.link(self.greenlets.discard)
                child.link_exception(self._failed)
                return child
            case Join(handles):
                gevent.joinall(list(handles))
                return None
            case Put(queue, item):
                self.queues[queue].put(item)
                return None
            case Take(queue, timeout_s):
                try:
                    return self.queues[queue].get(timeout=timeout_s)
                except Empty:
                    return None
            case Hash(image):
                digest = hashlib.sha256(self.image_bytes(image)).hexdigest()
                gevent.sleep(0)  # let the other greenlets run, as the browser's event loop would
                return digest
            case SendOp(operation_id, op_type, params):
                self.mark_first_byte()
                self.socket.send_op(operation_id, op_type, params)
                return None
            case SendFrame(event, data):
                self.mark_first_byte()
                self.socket.send(event, data)
                return None
            case AwaitAnswers(operation_ids, timeout_s):
                answers = self.socket.await_answers(operation_ids, timeout_s)
                for op_id, answer in answers.items():
                    error = None if answer.ok else RuntimeError(f"{answer.kind.value} {answer.data.get('code', '')}")
                    self.report("WS", self._op_name(op_id), answer.latency_s * 1000, 0, error)
                return answers
            case Upload(image, digest, timeout_s):
                self.mark_first_byte()
                result, length = self.browser.upload(self.image_bytes(image), image.filename, digest, timeout_s)
                self.report("POST", "/api/upload", result.latency_s * 1000, length, _http_error(result))
                return result
            case Fetch(paths, timeout_s, until_refused):
                results = []
                for path in paths:
                    result, length = self.browser.get(path, timeout_s)
                    self.report("GET", "/thumbnails/[size]/[name]", result.latency_s * 1000, length,
                                _http_error(result))
                    results.append(result)
                    if until_refused and result.refused:
                        break
                return tuple(results)
            case Post(path, body, timeout_s):
                result, length = self.browser.post_json(path, body, timeout_s)
                self.report("POST", path, result.latency_s * 1000, length, _http_error(result))
                return result
            case Reconnect(rejoin):
                self.socket.reopen(rejoin)
                return None
        raise TypeError(f"not an effect: {effect!r}")

    def _op_name(self, operation_id: str) -> str:
        kind = self.socket.op_types.get(operation_id, "operation")
        return f"ack {kind}"


def _http_error(result: HttpResult) -> Exception | None:
    if result.ok:
        return None
    return RuntimeError("timeout" if result.timed_out else f"HTTP {result.status}")
