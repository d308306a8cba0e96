"""One user's drop for real: connect, run the strategy, then judge each image by the server's state."""

from __future__ import annotations

import time
from typing import Any

import orjson
import urllib3

from bulkbench.limits import Limits
from bulkbench.strategies import Drop, start
from bulkbench.truth import DropResult, judge, last_settled_s
from bulkbench.workload import ImageSpec
from loadtests.browser import Browser
from loadtests.driver import GeventDriver, Report, no_report
from loadtests.imagecache import ImageCache
from loadtests.wsclient import DropSocket


def run_drop(base_url: str, strategy: str, params: Any, limits: Limits, images: list[ImageSpec],
             canvas_id: str, user: int, cache: ImageCache, report: Report = no_report,
             emulated_rtt_s: float = 0.0, client_id: str = "",
             socket_type: type[DropSocket] = DropSocket, token: str | None = None) -> DropResult:
    """``socket_type``: a DropSocket subclass that watches the frames (the crash benchmark's);
    ``token``: sent with every request and the WebSocket handshake (a server with auth on)."""
    client_id = client_id or f"user-{user}"
    ws_url = "ws" + base_url[len("http"):] + "/ws"
    started_at = time.time()
    headers = {"X-Client-Id": client_id, **({"Authorization": f"Bearer {token}"} if token else {})}
    socket = socket_type(ws_url, headers=headers, emulated_rtt_s=emulated_rtt_s)
    browser = Browser(base_url, client_id, emulated_rtt_s=emulated_rtt_s, headers=headers)
    drop = Drop(canvas_id, images, limits, client_id=client_id)
    driver = GeventDriver(socket, browser, cache.bytes, report)
    try:
        driver.mark_first_byte()
        socket.join(canvas_id)
        driver.run(start(strategy, drop, params))
        ended = driver.now
    finally:
        socket.close()
        browser.close()
    canvas, stored = server_truth(base_url, canvas_id, headers)
    records = judge(drop, canvas, stored)
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
        extra={"answers": drop.log.answers, "frames_received": socket.received_by_event,
               "canvas_id": canvas_id, "reconnects": socket.reconnects},
    )


def server_truth(base_url: str, canvas_id: str, headers: dict[str, str] | None = None) -> tuple[dict[str, Any], Any]:
    """The server's canvas, and whether a stored file exists (its own pool: not the drop's traffic)."""
    headers = {**(headers or {}), "X-Client-Id": "judge"}
    http = urllib3.PoolManager(retries=urllib3.Retry(total=5, backoff_factor=0.5, status_forcelist=[429, 503],
                                                     respect_retry_after_header=True))
    response = http.request("GET", f"{base_url}/api/canvases/{canvas_id}", headers=headers)
    canvas = orjson.loads(response.data) if response.status == 200 else {"nodes": []}
    known: dict[str, bool] = {}

    def stored(filename: str) -> bool:
        if filename not in known:
            head = http.request("HEAD", f"{base_url}/uploads/{filename}", headers=headers)
            known[filename] = head.status == 200
        return known[filename]

    return canvas, stored
