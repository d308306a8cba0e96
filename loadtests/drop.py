"""One user's drop for real: a canvas, a socket, the strategy, then each image judged by the target's state."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent.event

from bulkbench.limits import Limits
from bulkbench.results import Cause
from bulkbench.strategies import Drop, start
from bulkbench.target import Target, browser_address
from bulkbench.truth import DropResult, judge, last_settled_s
from bulkbench.workload import ImageSpec
from loadtests.browser import Browser
from loadtests.driver import GeventDriver, Report, no_report
from loadtests.dropsocket import DropSocket
from loadtests.imagecache import ImageCache
from loadtests.targetio import Truth, create_canvas, is_loopback
from loadtests.watch import LiveDrop, LiveDrops


@dataclass(frozen=True, slots=True)
class Browsers:
    """Who a simulated browser is to the target: its name, its address, its headers."""

    target: Target
    base_url: str
    token: str | None = None

    def identity(self, user: int, client_id: str) -> tuple[str | None, dict[str, str]]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        clients = self.target.clients
        if clients.identity == "header" or not is_loopback(self.base_url):
            return None, {**headers, clients.header: client_id}
        return browser_address(user), headers


def run_drop(target: Target, base_url: str, strategy: str, params: Any, limits: Limits, images: list[ImageSpec],
             canvas_name: str, user: int, cache: ImageCache, report: Report = no_report,
             emulated_rtt_s: float = 0.0, client_id: str = "",
             socket_type: Callable[..., DropSocket] = DropSocket, token: str | None = None,
             cap_s: float | None = None, stop: gevent.event.Event | None = None,
             live: LiveDrops | None = None, seed: int = 0) -> DropResult:
    """``socket_type``: a DropSocket subclass that watches the frames (the crash benchmark's);
    ``token``: sent with every request and the socket's handshake (a server with auth on); ``cap_s``: a
    drop still going then is stopped where it is (as a browser run's hard cap stops its page), and its
    open images are ``unfinished``; ``stop``: set when the run's watched thresholds are crossed, it stops
    the drop the same way; ``live``: where the drop shows what it measures while it goes; ``seed``: the
    run's, what the client's own chances are drawn from (``Drop.chance``)."""
    client_id = client_id or f"user-{user}"
    source, headers = Browsers(target, base_url, token).identity(user, client_id)
    canvas_id = create_canvas(target, base_url, canvas_name, client_id, headers, source)
    socket = socket_type(target, base_url, headers=headers, source_address=source, username=client_id,
                         emulated_rtt_s=emulated_rtt_s)
    browser = Browser(base_url, emulated_rtt_s=emulated_rtt_s, headers=headers, source_address=source,
                      upload=target.upload, form_values={"canvas": canvas_id, "user": client_id})
    drop = Drop(str(canvas_id), images, limits, client_id=client_id, seed=seed)
    started_at = time.time()
    driver = GeventDriver(socket, browser, cache.bytes, report)
    shown = LiveDrop(drop.log, socket, browser)
    if live is not None:
        live.drops.append(shown)
    try:
        driver.mark_first_byte()
        socket.join(canvas_id)
        finished = driver.run(start(strategy, drop, params), cap_s, stop)
        ended = driver.now
        if not finished:
            for track in drop.log.tracks.values():
                if track.settled_at is None:
                    track.fail(Cause.UNFINISHED, ended)
        synced = socket.full_sync() if target.truth.via == "full_sync" else None
    finally:
        socket.close()
        browser.close()
    truth = Truth(target, base_url, canvas_id, headers, canvas=synced)
    try:
        records = judge(drop, truth.canvas, truth.stored, target.truth)
    finally:
        truth.close()
    return DropResult(
        user=user,
        records=records,
        ws_messages_sent=socket.sent,
        ws_messages_received=socket.received,
        http_requests=browser.requests,
        bytes_uploaded=browser.bytes_uploaded,
        started_at=started_at,
        first_byte_s=driver.first_byte_s or 0.0,
        last_settled_s=last_settled_s(drop, ended),
        op_ack_s=drop.log.op_ack_s,
        upload_s=drop.log.upload_s,
        extra={"answers": drop.log.answers, "frames_sent": socket.sent_by_event,
               "ops_by_type": dict(sorted(Counter(socket.op_types.values()).items())),
               "frames_received": socket.received_by_event, "transport_pings": socket.transport_pings,
               **browser.http, "upload_attempts": browser.uploads,
               "canvas_id": canvas_id, "source_address": source, "reconnects": socket.reconnects,
               **drop.log.heartbeat_extra()},
    )

