"""The report's figures draw what the runs hold: checked on the artists, not on pixels."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reports.data import Run
from reports.figures import (
    PHASES,
    TIMELINE_ROWS,
    ack_latency_over_time,
    busy_stages,
    client_queue,
    image_timeline,
    queues_over_time,
    scaling,
)

SUMMARY = {"engine": "real", "strategy": "individual", "profile": "legacy", "images": 2, "users": 1,
           "drop_seconds": 2.0, "ws_messages_sent": 4}


def _run(images: list[dict]) -> Run:
    return Run(Path("r"), {**SUMMARY, "images": len(images)}, pd.DataFrame(), images=images)


def _spans(ax) -> list[tuple[float, float]]:
    """(start, width) of every bar drawn, in seconds."""
    out = []
    for collection in ax.collections:
        for path in collection.get_paths():
            xs = path.vertices[:, 0]
            out.append((round(float(xs.min()), 3), round(float(xs.max() - xs.min()), 3)))
    return out


def test_the_timeline_draws_each_images_phases_and_marks_a_failure() -> None:
    ok = {"outcome": "ok", "cause": None, "timings": {
        "node_sent_at": 1.0, "node_acked_at": 1.5, "upload_started_at": 2.0, "upload_done_at": 4.0,
        "complete_sent_at": 6.0, "complete_acked_at": 6.5, "settled_at": 6.5}}
    lost = {"outcome": "failed", "cause": "orphaned", "timings": {"node_sent_at": 3.0, "settled_at": 30.0}}
    fig = image_timeline([_run([ok, lost])])
    ax = fig.axes[0]
    spans = sorted(_spans(ax))
    # the ok image: all five phases; the lost one: only its wait before its node was sent
    assert spans == sorted([(0.0, 1.0), (1.0, 0.5), (2.0, 2.0), (4.0, 2.0), (6.0, 0.5), (0.0, 3.0)])
    (cross,) = ax.lines
    assert list(cross.get_xdata()) == [30.0] and cross.get_marker() == "x"
    assert len(PHASES) == 5


def test_a_big_drop_is_sampled_evenly_in_drop_order() -> None:
    images = [{"outcome": "ok", "timings": {"node_sent_at": float(i)}} for i in range(1000)]
    ax = image_timeline([_run(images)]).axes[0]
    waits = sorted(start + width for start, width in _spans(ax))  # each image's wait ends when its node is sent
    assert len(waits) == TIMELINE_ROWS and waits[0] == 0.0 + 0.05 and waits[-1] == 999.0
    assert sorted(set(waits)) == waits  # no image drawn twice


def test_the_client_queue_counts_down_to_the_orphan_deadline() -> None:
    """Three images: one confirmed at 2 s, one at 5 s, one never (swept at the deadline, 30 s)."""
    images = [{"outcome": "ok", "timings": {"node_sent_at": 1.0, "node_acked_at": 2.0}},
              {"outcome": "ok", "timings": {"node_sent_at": 4.0, "node_acked_at": 5.0}},
              {"outcome": "failed", "cause": "orphaned", "timings": {"settled_at": 30.0}}]  # as fail() records it
    ax = client_queue([_run(images)]).axes[0]
    unconfirmed = next(line for line in ax.lines if line.get_label().endswith("nodes not yet confirmed"))
    assert list(unconfirmed.get_xdata()) == [0.0, 2.0, 5.0, 30.0] and list(unconfirmed.get_ydata()) == [3, 2, 1, 0]
    (deadline,) = [line for line in ax.lines if "orphan deadline" in line.get_label()]
    assert list(deadline.get_xdata()) == [30.0, 30.0]  # individual's sweep: 30 s for a small canvas


def test_a_client_without_a_sweep_has_no_deadline_drawn() -> None:
    run = _run([{"outcome": "ok", "timings": {"node_sent_at": 1.0, "node_acked_at": 2.0}}])
    run.summary["strategy"] = "individual:fc1316b"
    assert not [line for line in client_queue([run]).axes[0].lines if "deadline" in line.get_label()]


def test_ack_latency_over_time_plots_each_answer_when_it_was_sent() -> None:
    images = [{"outcome": "ok", "timings": {"node_sent_at": 1.0, "node_acked_at": 1.25,
                                            "complete_sent_at": 8.0, "complete_acked_at": 9.0}}]
    ax = ack_latency_over_time([_run(images)]).axes[0]
    points = {line.get_label().rsplit(": ", 1)[1]: (list(line.get_xdata()), list(line.get_ydata()))
              for line in ax.lines}
    assert points == {"node_create": ([1.0], [250.0]), "completion": ([8.0], [1000.0])}


def test_figures_that_would_say_nothing_are_left_out() -> None:
    idle = pd.DataFrame({"t": [0.0, 1.0], "queue_depth.ops": [0, 0], "busy_workers.ops": [0, 0],
                         "queue_depth.thumbnail": [0, 2], "busy_workers.thumbnail": [1, 4]})
    run = Run(Path("r"), {**SUMMARY}, idle)
    assert busy_stages([run]) == ["thumbnail"]  # ops never held a job: no flat line at zero
    assert len(queues_over_time([run]).axes) == 2  # the busy stage, and the connections
    assert queues_over_time([Run(Path("r"), {**SUMMARY}, idle.assign(**{"busy_workers.thumbnail": 0,
                                                                         "queue_depth.thumbnail": 0}))]) is None
    assert scaling([run, Run(Path("s"), {**SUMMARY}, idle)]) is None  # one drop size: no axis to scale on
    assert scaling([run, Run(Path("s"), {**SUMMARY, "images": 500, "drop_seconds": 1.0, "ws_messages_sent": 1},
                             idle)]) is not None


def test_the_headline_says_when_the_servers_file_sweep_deleted_uploads() -> None:
    from reports.data import headline
    base = {**SUMMARY, "images": 3, "images_failed": 3, "failure_rate": 1.0, "failures_by_cause": {"not_on_server": 3},
            "http_requests": 9, "op_ack_ms": {"p95": 1.0}}
    swept = Run(Path("a"), {**base, "extra": {"uploads_swept": 3}}, pd.DataFrame())
    table = headline([swept, Run(Path("b"), base, pd.DataFrame())])
    assert list(table["causes"]) == ["not_on_server 3 (the server's file sweep deleted 3 uploads)", "not_on_server 3"]


def test_the_headline_says_when_the_page_closed_or_lost_its_socket() -> None:
    from reports.data import headline
    base = {**SUMMARY, "engine": "browser", "images": 200, "images_failed": 108, "failure_rate": 0.54,
            "failures_by_cause": {"rejected": 10, "unfinished": 91}, "http_requests": 9, "op_ack_ms": {"p95": 1.0}}
    reopened = {"sockets_reopened": 1, "sockets_lost": 0, "heartbeat": {"late_max_s": 38.887}}
    runs = [Run(Path("a"), {**base, "extra": reopened}, pd.DataFrame()),
            Run(Path("b"), {**base, "extra": {"sockets_reopened": 2, "sockets_lost": 1}}, pd.DataFrame()),
            Run(Path("c"), {**base, "extra": {"sockets_reopened": 0, "sockets_lost": 0}}, pd.DataFrame())]
    assert list(headline(runs)["causes"]) == [
        "rejected 10, unfinished 91 (sockets opened again by the page: 1, its heartbeat's answers handled up to 39 s "
        "late)",
        "rejected 10, unfinished 91 (sockets opened again by the page: 2; pages that lost their socket for good: 1)",
        "rejected 10, unfinished 91"]
