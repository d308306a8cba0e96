"""The server's rules as plain objects (``bulkbench.server_core``): no server, no model, no clock.

The real server and the model both drive these objects, so what is held here holds for both; the
fingerprints (``test_fingerprints.py``) show that each still answers as recorded.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
import simpy

from bulkbench.canvas import Canvas
from bulkbench.model_params import ModelParams
from bulkbench.profile import FileSweep, Overloaded, load_profile
from bulkbench.protocol import (
    ErrorCode,
    Event,
    ExecuteOperation,
    ImageUploadComplete,
    JoinCanvas,
    NodeCreate,
    NodeSpec,
    OpType,
    Ping,
    ProtocolError,
    RequestFullSync,
    RequestUndoState,
    UploadItem,
    parse_operation,
    thumbnail_url,
)
from bulkbench.server_core import Begun, Execute, Room, Session, ThumbnailJob, UploadDesk
from bulkbench.workload import ImageSpec
from sim.model import ServerModel

LEGACY = load_profile("legacy")
OPTIMIZED = load_profile("optimized")


def room(profile=LEGACY) -> Room:
    return Room(Canvas("c1", profile.limits), profile)


def spec(node_id: str) -> dict:
    return {"id": node_id, "type": "media/image", "pos": [0, 0], "size": [150, 100],
            "properties": {"hash": f"h-{node_id}"}}


def create(room: Room, op_id: str, *node_ids: str, op_type: OpType = OpType.BATCH_NODE_CREATE):
    params = ({"nodes": [spec(n) for n in node_ids]} if op_type is OpType.BATCH_NODE_CREATE
              else spec(node_ids[0]))
    operation = parse_operation(op_id, op_type, params, room.profile.limits)
    assert not isinstance(operation, ProtocolError), operation
    return room.apply(op_id, op_type, operation, 100, lambda name: False)


def test_a_copy_sent_while_the_first_is_in_flight_waits_for_its_answer_and_is_not_applied_again() -> None:
    desk, heard = room(), []
    assert desk.begin("op1", heard.append) is Begun.NEW
    assert desk.begin("op1", heard.append) is Begun.WAITING
    step = create(desk, "op1", "n1", "n2")
    reply = desk.finish(step, "s1")
    assert heard == [reply.answer]
    assert reply.answer == (Event.OPERATION_ACK, {"operationId": "op1", "stateVersion": 1,
                                                  "results": [{"ok": True, "id": "n1"}, {"ok": True, "id": "n2"}]})
    assert desk.begin("op1", heard.append) == reply.answer, "afterwards: the stored answer, not a new one"
    assert desk.canvas.version == 1 and sorted(desk.canvas.nodes) == ["n1", "n2"]


def test_a_failed_operation_leaves_nothing_applied_and_its_waiting_copy_learns_why() -> None:
    desk, heard = room(), []
    desk.begin("op1", heard.append)
    desk.begin("op1", heard.append)
    step = create(desk, "op1", "n1")
    refused = Overloaded("persist", 2.0)
    desk.failed("op1", refused, step)
    assert heard == [refused]
    assert desk.canvas.nodes == {} and desk.canvas.version == 0
    assert desk.begin("op1", heard.append) is Begun.NEW, "a failed operation may be sent again"


def test_a_full_rewrite_persists_the_whole_canvas_and_delta_mode_only_the_operation() -> None:
    full, delta = room(LEGACY), room(OPTIMIZED)
    assert LEGACY.persistence == "full_rewrite" and OPTIMIZED.persistence != "full_rewrite"
    for desk in (full, delta):
        desk.begin("a", print)
        desk.finish(create(desk, "a", *(f"n{i}" for i in range(30))), "s1")
        desk.begin("b", print)
    rewrite, appended = create(full, "b", "m1", "m2"), create(delta, "b", "m1", "m2")
    assert (rewrite.persist_items, rewrite.snapshot) == (32, True)
    assert appended.persist_items == 2


def test_delta_mode_snapshots_once_the_log_outweighs_the_last_snapshot() -> None:
    profile = dataclasses.replace(OPTIMIZED, snapshot_every_ops=2)
    desk = room(profile)
    desk.snapshot_bytes = 250
    due, written = [], []
    for n in range(4):
        desk.begin(f"op{n}", print)
        step = create(desk, f"op{n}", f"n{n}")  # 100 bytes of log each
        due.append(step.snapshot)
        written.append(step.persist_items)
        desk.persisted(step, snapshot_bytes=250)
        desk.finish(step, "s1")
    assert due == [False, False, True, False], "version 3 and 300 log bytes >= 250: the first snapshot"
    assert written == [1, 1, 3, 1], "a snapshot writes the whole canvas: the persist stage is priced so"


def test_an_undo_state_follows_a_change_only_where_the_profile_pushes_it() -> None:
    pushing = room(dataclasses.replace(OPTIMIZED, undo_push=True))
    pushing.begin("op", print)
    reply = pushing.finish(create(pushing, "op", "n1", op_type=OpType.NODE_CREATE), "s1")
    assert reply.update is not None and reply.update[1]["changes"]["added"][0]["id"] == "n1"
    assert reply.undo_state == (Event.UNDO_STATE_UPDATE, {"canUndo": True, "canRedo": False, "undoCount": 1})
    quiet = room(dataclasses.replace(OPTIMIZED, undo_push=False))
    quiet.begin("op", print)
    assert quiet.finish(create(quiet, "op", "n1", op_type=OpType.NODE_CREATE), "s1").undo_state is None


def test_a_session_answers_what_is_not_an_operation_and_hands_operations_back() -> None:
    rooms: dict[str, Room] = {}

    def open_room(canvas_id: str) -> Room:
        return rooms.setdefault(canvas_id, room())

    session = Session("s1", "member-1", open_room)
    operation = ExecuteOperation("op1", OpType.NODE_CREATE, parse_operation(
        "op1", OpType.NODE_CREATE, spec("n1")))
    event, data = session.receive(operation)
    assert (event, data["code"], data["operationId"]) == (Event.OPERATION_REJECTED, ErrorCode.NOT_JOINED, "op1")
    assert session.receive(RequestUndoState()) is None
    assert session.receive(Ping({"t": 7})) == (Event.PONG, {"t": 7})
    event, data = session.receive(JoinCanvas("c1"))
    assert event == Event.CANVAS_JOINED and data["session"]["sessionId"] == "s1"
    assert list(rooms["c1"].members) == ["member-1"]
    assert session.receive(operation) == Execute(rooms["c1"], operation)
    assert session.receive(RequestFullSync())[0] == Event.FULL_STATE_SYNC
    session.receive(JoinCanvas("c2"))
    assert list(rooms["c1"].members) == [] and list(rooms["c2"].members) == ["member-1"]


def test_a_session_asks_the_driver_whether_a_token_may_join() -> None:
    def authorize(token: str | None, canvas_id: str) -> None:
        if token != f"key-{canvas_id}":
            raise ProtocolError(ErrorCode.UNAUTHORIZED, "no")

    session = Session("s1", "m", lambda canvas_id: room(), authorize, handshake_token="key-c1")
    assert session.receive(JoinCanvas("c1"))[0] == Event.CANVAS_JOINED, "the handshake's token counts"
    event, data = session.receive(JoinCanvas("c2"))
    assert (event, data["code"]) == (Event.ERROR, ErrorCode.UNAUTHORIZED)
    assert session.room is not None and session.room.canvas.id == "c1", "a refused join leaves the room it was in"


def test_uploads_over_max_uploads_in_flight_are_refused_and_each_answer_frees_a_place() -> None:
    profile = dataclasses.replace(OPTIMIZED, limits=dataclasses.replace(OPTIMIZED.limits, max_uploads_in_flight=2))
    desk = UploadDesk(profile)
    desk.admit(lambda: None)
    desk.admit(lambda: None)
    with pytest.raises(Overloaded, match="max_uploads_in_flight"):
        desk.admit(lambda: None)
    desk.answered()
    desk.admit(lambda: None)
    assert desk.in_flight == 2


def test_thumbnails_owed_after_the_answer_are_503_until_made_and_refused_jobs_run_in_order() -> None:
    desk = UploadDesk(OPTIMIZED)
    jobs = [desk.thumbnails(f"f{i}.png", 4000, 3000) for i in range(3)]
    assert all(isinstance(job, ThumbnailJob) for job in jobs) and not desk.before_answer
    for job in jobs:
        desk.owe(job)
    desk.refused(jobs[1])
    desk.refused(jobs[2])
    assert desk.thumbnail_status("f1", exists=False) == 503
    assert desk.ended(jobs[0]) is jobs[1]
    assert desk.ended(jobs[1]) is jobs[2]
    assert desk.ended(jobs[2]) is None
    assert desk.thumbnail_status("f1", exists=False) == 404, "made (and this size not in the plan)"
    assert desk.thumbnail_status("f1", exists=True) == 200
    assert jobs[0].items == pytest.approx(12.0 * len(jobs[0].sizes))


def test_duplicates_are_found_only_where_the_profile_deduplicates() -> None:
    stored = {"d1": "f1.png"}
    assert UploadDesk(OPTIMIZED).existing("d1", stored.get) == "f1.png"
    assert UploadDesk(dataclasses.replace(OPTIMIZED, dedup_by_hash=False)).existing("d1", stored.get) is None


def test_the_model_now_waits_for_a_copy_in_flight_as_the_server_does() -> None:
    """The drift this core removed: the model applied a resent copy again (a second answer, a rejection
    for a node that exists) while the server waited for the first copy's answer."""
    env = simpy.Environment()
    server = ServerModel(env, LEGACY, ModelParams(), random.Random(1))
    desk = server.room("c1")
    params = spec("n1")
    answers = []
    for _ in range(2):
        server.operation("op1", OpType.NODE_CREATE, params, 100, desk, "s1",
                         lambda answer, reply: answers.append(answer))
    env.run()
    assert len(answers) == 2 and answers[0] == answers[1]
    assert answers[0] == (Event.OPERATION_ACK, {"operationId": "op1", "stateVersion": 1})


def _link(canvas: Canvas, name: str, held: set[str]) -> dict:
    applied = canvas.apply(ImageUploadComplete(UploadItem("h-n1", f"/uploads/{name}", name)), held.__contains__)
    return applied.results[0]


def test_imagecanvas_links_a_file_it_does_not_hold_and_keeps_a_nodes_first_url() -> None:
    """``legacy``'s ``[linking]`` (CanvasStateManager.js:707-712, 936-941) against ours (``optimized``)."""
    app = Canvas("c", LEGACY.limits, LEGACY.linking)
    ours = Canvas("c", OPTIMIZED.limits, OPTIMIZED.linking)
    for canvas in (app, ours):
        canvas.apply(NodeCreate(NodeSpec("n1", "media/image", (0.0, 0.0), properties={"hash": "h-n1"})),
                     set().__contains__)
    assert _link(app, "gone.png", set())["ok"] and app.nodes["n1"]["properties"]["serverFilename"] == "gone.png"
    assert _link(ours, "gone.png", set())["code"] == ErrorCode.UNKNOWN_UPLOAD
    version = app.version
    assert _link(app, "b.png", {"b.png"})["ok"]
    assert app.nodes["n1"]["properties"]["serverFilename"] == "gone.png" and app.version == version + 1
    _link(ours, "a.png", {"a.png", "b.png"})
    _link(ours, "b.png", {"a.png", "b.png"})
    assert ours.nodes["n1"]["properties"]["serverFilename"] == "b.png"


def test_the_model_sweeps_an_upload_linked_too_late_and_keeps_one_linked_in_time() -> None:
    profile = dataclasses.replace(LEGACY, file_sweep=FileSweep(first_after_s=10.0, every_s=100.0))
    env = simpy.Environment()
    server = ServerModel(env, profile, ModelParams(), random.Random(1))
    names = []
    for k in range(2):
        image = ImageSpec(k, f"img{k}", 1000, 64, 64, "s")
        server.store_upload(image, f"h-n{k + 1}", lambda result: names.append(result.body["serverFilename"]))
    env.run()
    desk = server.room("c1")
    for k in (1, 2):
        server.operation(f"n{k}", OpType.NODE_CREATE, spec(f"n{k}"), 100, desk, "s1", lambda *_: None)
    env.run()
    item = {"hash": "h-n1", "serverUrl": f"/uploads/{names[0]}", "serverFilename": names[0]}
    server.operation("u1", OpType.IMAGE_UPLOAD_COMPLETE, item, 100, desk, "s1", lambda *_: None)
    env.run()  # a sweep due is no event: the run ends when the work does
    assert env.now < 10.0 and set(names) <= server.stored
    env.run(until=10.0)
    server.sweeps_due()
    assert server.stored == {names[0]} and server.swept == 1
    kept, gone = (name.rsplit(".", 1)[0] for name in names)
    assert server.get_status(thumbnail_url(64, kept)) == 200 and server.get_status(thumbnail_url(64, gone)) == 404


@pytest.mark.parametrize("uptime_s, due_at", [(0.0, 1800.0), (1790.0, 10.0), (1810.0, 21590.0)])
def test_a_server_up_for_a_while_sweeps_where_its_schedule_falls(uptime_s: float, due_at: float) -> None:
    """ImageCanvas's schedule (``legacy``: 30 min after its start, then every 6 h) from a model's time 0 that
    is ``uptime_s`` into the server's life (``bulkbench sim --server-uptime-s``)."""
    env = simpy.Environment()
    server = ServerModel(env, LEGACY, ModelParams(), random.Random(1), uptime_s=uptime_s)
    server.store_upload(ImageSpec(0, "img0", 1000, 64, 64, "s"), "h", lambda result: None)
    env.run(until=due_at - 0.001)
    server.sweeps_due()
    assert server.swept == 0 and len(server.stored) == 1
    env.run(until=due_at)
    server.sweeps_due()
    assert server.swept == 1 and not server.stored
