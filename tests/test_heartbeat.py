"""The page's heartbeat: when a late answer makes the stand-in page drop its socket, and what follows in each engine."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Generator
from typing import Any

import pytest

from bulkbench.config import ConfigError
from bulkbench.effects import Now, Reconnect, Take
from bulkbench.strategies.common import DropLog
from bulkbench.strategies.heartbeat import HeartbeatRule, heartbeat
from bulkbench.strategies.individual import IndividualParams
from sim.run import SimOptions, run_sim

NO_SPREAD = 1e9
"""A gamma this narrow draws 1: each task waits exactly what ``step_wait_s`` says."""
FC1316B = HeartbeatRule(every_s=10.0, check_s=10.0, dead_s=30.0, rejoin=False, wait_scale=1.0, wait_shape=NO_SPREAD)


def play(process: Generator[Any, Any, None], until_s: float) -> list[tuple[float, bool]]:
    """Run the heartbeat's effects on a clock of its own until ``until_s``: its reconnections (when, rejoined).
    The heartbeat only reads the time, waits on its stop queue and reconnects; nothing else to drive."""
    now, reconnects, value = 0.0, [], None
    while True:
        effect = process.send(value)
        if isinstance(effect, Now):
            value = now
        elif isinstance(effect, Take):
            if now + effect.timeout_s > until_s:
                value = True  # the drop is over: its stop
                try:
                    process.send(value)
                except StopIteration:
                    return reconnects
                raise AssertionError("the heartbeat went on after its stop")
            now, value = now + effect.timeout_s, None
        elif isinstance(effect, Reconnect):
            reconnects.append((round(now, 3), effect.rejoin))
            value = None
        else:
            raise AssertionError(f"the heartbeat yields only Now, Take and Reconnect, not {effect!r}")


def beats(step_wait_s: Callable[[float], float], until_s: float, rule: HeartbeatRule = FC1316B):
    log = DropLog()
    reconnects = play(heartbeat(rule, step_wait_s, random.Random(1), log, "stop"), until_s)
    return log, reconnects


def test_answers_handled_on_time_keep_the_socket() -> None:
    log, reconnects = beats(lambda now: 0.1, until_s=300.0)
    assert reconnects == [] and log.reconnected_at == []
    assert len(log.heartbeats) == 29 and all(late == pytest.approx(0.1) for _sent, late in log.heartbeats)
    # the interval does not drift with its tasks' waits
    assert [sent for sent, _late in log.heartbeats[:3]] == pytest.approx([10.1, 20.1, 30.1])


def test_one_stalled_answer_holds_the_answers_behind_it_and_the_check_drops_the_socket() -> None:
    """The answer to the ping run at 150.1 s would wait 45 s; the socket hands the page its answers in order, so
    the next pings' answers wait behind it. The check of the ping run at 170.1 s (at 180.2 s) finds the last
    answer handled (140.2 s) 40 s old: the page drops its socket, and does not join its canvas again. The old
    socket's answers never come; the new one's handler pings at once and starts the interval again."""
    log, reconnects = beats(lambda now: 45.0 if 150.05 <= now < 150.2 else 0.1, until_s=300.0)
    assert reconnects == [(180.2, False)] and log.reconnected_at == [180.2]
    late = {round(sent, 1): late for sent, late in log.heartbeats}
    assert [late[at] for at in (140.1, 150.1, 160.1, 170.1)] == [pytest.approx(0.1), None, None, None]
    assert late[180.3] == pytest.approx(0.1) and late[190.4] == pytest.approx(0.1)  # connected at 180.3 s


def test_waits_alike_never_drop_the_socket_however_long() -> None:
    """Every task waits 25 s: each check runs before its own ping's answer, but answers keep coming 10 s apart,
    so the last one is never 30 s old and the page keeps its socket: waits alike never drop it, however long;
    a stall among them does (above). With a 5 s limit the same waits drop it at the first check."""
    log, reconnects = beats(lambda now: 25.0, until_s=300.0)
    assert reconnects == []
    assert max(late for _sent, late in log.heartbeats if late is not None) == pytest.approx(25.0, abs=0.01)
    strict = HeartbeatRule(10.0, 10.0, 5.0, False, 1.0, NO_SPREAD)
    _log, reconnects = beats(lambda now: 25.0, until_s=300.0, rule=strict)
    assert reconnects[0] == (pytest.approx(70.0, abs=0.01), False)


@pytest.mark.parametrize("bad", [{"heartbeat_every_s": -1.0}, {"heartbeat_every_s": 10.0, "heartbeat_dead_s": 0.0},
                                 {"heartbeat_every_s": 10.0, "heartbeat_wait_shape": 0.0}])
def test_a_heartbeat_that_cannot_be_is_refused_with_its_name(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="heartbeat"):
        IndividualParams(**bad)


def _model(tmp_path, name: str, **overrides: Any):
    out = tmp_path / name
    summary = run_sim(SimOptions(strategy="individual:fc1316b", images=200, profile="legacy-ratelimit", seed=2,
                                 uplink_mbit=20.0, horizon_s=900.0, out=out,
                                 strategy_layer="examples/validation/browser-slower/strategies.toml",
                                 strategy_overrides=tuple(sorted(overrides.items()))))
    return summary, json.loads((out / "drops" / "user-0.json").read_text())


def test_the_heartbeat_changes_nothing_until_it_drops_the_socket(tmp_path) -> None:
    """A heartbeat that never finds its socket dead leaves the drop as it was without one: it only watches."""
    without, _ = _model(tmp_path, "without", heartbeat_every_s=0.0)
    watching, drop = _model(tmp_path, "watching", heartbeat_dead_s=1e9)
    assert (watching.failure_rate, watching.drop_seconds, watching.failures_by_cause, watching.ws_messages_sent) == (
        without.failure_rate, without.drop_seconds, without.failures_by_cause, without.ws_messages_sent)
    assert drop["extra"]["reconnected_at"] == [] and len(drop["extra"]["heartbeats"]) >= 80
    assert watching.extra["heartbeat"]["pings"] == len(drop["extra"]["heartbeats"])
    assert watching.extra["sockets_reopened"] == 0 and "heartbeat" not in without.extra


def test_a_model_page_that_dropped_its_socket_has_its_later_operations_refused(tmp_path) -> None:
    """The model's server holds the new socket to the server's own rule (``server_core.Session``: not joined,
    refused); rejoining, the same waits lose nothing to refusals."""
    dropped, drop = _model(tmp_path, "dropped", heartbeat_wait_scale=20.0)
    assert drop["extra"]["reconnected_at"] and dropped.extra["sockets_reopened"] >= 1
    assert dropped.failures_by_cause.get("rejected", 0) > 0
    assert drop["extra"]["answers"]["rejected"] >= dropped.failures_by_cause["rejected"]
    rejoined, drop = _model(tmp_path, "rejoined", heartbeat_wait_scale=20.0, heartbeat_rejoin=True)
    assert drop["extra"]["reconnected_at"] and "rejected" not in rejoined.failures_by_cause


DYING_PAGE = """[individual]
page_frame_s = 0.05            # a page whose steps take time, so that its heartbeat's tasks wait ...
heartbeat_every_s = 0.5
heartbeat_check_s = 0.5
heartbeat_dead_s = 0.3
heartbeat_wait_scale = 40.0    # ... 2 s on average, against a 0.3 s limit: its first check drops the socket
"""


def test_our_client_drops_its_socket_as_the_model_does_and_the_server_refuses_it(start_server, tmp_path,
                                                                                 small_workload) -> None:
    """The same page in the protocol-level engine against our server: its heartbeat drops the socket, the new
    one never joins, and the server refuses the rest of its operations (``not_joined``), as in the model."""
    from loadtests.run import RunOptions, run

    layer = tmp_path / "dying.toml"
    layer.write_text(DYING_PAGE)
    server = start_server("legacy")
    out = tmp_path / "real"
    real = run(RunOptions(strategy="individual", strategy_layer=str(layer), images=12, profile="legacy", out=out,
                          target=server.url, workload=small_workload, quiet=True, max_seconds=120))
    drop = json.loads((out / "drops" / "user-0.json").read_text())
    model = run_sim(SimOptions(strategy="individual", strategy_layer=str(layer), images=12, profile="legacy",
                               workload=small_workload, out=tmp_path / "model"))
    modelled = json.loads((tmp_path / "model" / "drops" / "user-0.json").read_text())
    for summary in (real, model):
        assert summary.extra["sockets_reopened"] >= 1 and summary.failures_by_cause.get("rejected", 0) > 0
    assert drop["extra"]["reconnected_at"] and modelled["extra"]["reconnected_at"]
    assert drop["extra"]["reconnects"] >= 1 and drop["extra"]["answers"]["rejected"] > 0
    assert real.images_ok + real.failures_by_cause["rejected"] <= 12
