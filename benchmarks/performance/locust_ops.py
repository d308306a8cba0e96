"""Locust users that push acked operations as fast as one Locust process can (``make bench``).

Each user keeps ``--bb-window`` operations in flight on one WebSocket and reports every answer
with ``events.request.fire`` (so Locust's own stats count them). Against a bare echo server an
echoed frame is the "ack"; against the reference server it is the real ``operation_ack``.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from locust import User, events, task

from bulkbench.protocol import Event, OpType, encode, execute_operation_frame, parse_server_frame
from loadtests.greenws import GreenWebSocket

_users = itertools.count()


@events.init_command_line_parser.add_listener
def add_options(parser: Any) -> None:
    parser.add_argument("--bb-window", type=int, default=200, help="operations in flight per user")
    parser.add_argument("--bb-echo", action="store_true", help="the target is a bare echo server")


class OpsUser(User):
    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.echo = options.bb_echo
        self.window = options.bb_window
        self.user = next(_users)
        self.ws = GreenWebSocket(self.host.replace("http", "ws", 1) + ("" if self.echo else "/ws"))
        self.seq = itertools.count()
        if not self.echo:
            self.ws.send_many([encode(Event.JOIN_CANVAS, {"canvasId": f"ops-{self.user}-{time.time_ns()}"})])
            while not any('"canvas_joined"' in f[:30] for f in self.ws.receive()):
                pass

    @task
    def window_of_operations(self) -> None:
        fire = self.environment.events.request.fire
        sent: dict[str, float] = {}
        frames = []
        for _ in range(self.window):
            n = next(self.seq)
            op_id = f"{self.user}-{n}"
            node = {"id": f"n{self.user}-{n}", "type": "media/image", "pos": [n, n]}
            frames.append(execute_operation_frame(op_id, OpType.NODE_CREATE, node))
            sent[op_id] = time.perf_counter()
        self.ws.send_many(frames)
        while sent:
            for frame in self.ws.receive():
                event, data = parse_server_frame(frame)
                if self.echo or event in (Event.OPERATION_ACK, Event.OPERATION_REJECTED):
                    op_id = data["operationId"]
                else:
                    continue  # state_update broadcasts
                started = sent.pop(op_id, None)
                if started is not None:
                    elapsed_ms = (time.perf_counter() - started) * 1000
                    fire(request_type="WS", name="ack node_create", response_time=elapsed_ms,
                         response_length=len(frame), exception=None, context={})
