"""Fuzzing a real server with hypothesis: every broken, hostile or odd input gets a clear answer.

Cases come from ``tests/fuzzcases.py`` and go through ``tests/fuzzdriver.py`` to one real server (the
fuzz profile: ``optimized`` with small limits). Each must get a clear 4xx or error frame (never a 5xx,
never a crash, a socket closed only where the protocol says so), and leave the server's canvas as it
was plus exactly its good items. Bounded for CI: derandomized, about a hundred cases per target;
``python -m benchmarks.hardening.fuzz_bench`` runs the same targets for thousands.
"""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings

from bulkbench.protocol import OpType
from tests.fuzzcases import (
    MULTIPART,
    OP_ID,
    TAG,
    TARGETS,
    Applied,
    Echoed,
    NodeItem,
    Refused,
    UploadCase,
    WsCase,
    frame,
    fuzz_limits,
    nested,
    operation,
    sample_image,
    upload_body,
)
from tests.fuzzdriver import Canvas, Fuzzer, Violation, judge_answer, judge_http
from tests.helpers import image_bytes

LIMITS = fuzz_limits()


def ci(examples: int) -> settings:
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory: pytest.TempPathFactory):
    with Fuzzer(tmp_path_factory.mktemp("fuzz")) as fuzzer:
        yield fuzzer


def assert_clean(violations: list[Violation]) -> None:
    assert not violations, "\n".join(map(str, violations))


def gif_cut_after_a_semicolon() -> UploadCase:
    """A GIF cut right after a ';' byte of its image data (a GIF's trailer is a ';' too)."""
    data = sample_image("GIF", 64, 64, 3)
    cut = data.index(b";", 20) + 1
    assert cut < len(data)
    return UploadCase("a GIF cut after a ';' in its data", MULTIPART, upload_body(data[:cut], b"image/gif"),
                      frozenset({400}), frozenset({"invalid_image"}))


# Bugs fuzzing found, kept as examples that always run:
DEEP_PING = WsCase("ping data nested 254 deep (its pong would be 255: more than orjson writes)",
                   frame("ping", {"d": nested(253)}), Refused(frozenset({"bad_frame"})))
LONG_OPERATION_ID = WsCase("operationId over the profile's max_id_chars", operation(
    "o" * (LIMITS.max_id_chars + 1), OpType.NODE_CREATE, {"id": TAG, "type": "t", "pos": [0, 0]}),
    Refused(frozenset({"invalid_params"})))


@ci(150)
@given(case=TARGETS["ws_frames"](LIMITS))
@example(case=DEEP_PING)
@example(case=LONG_OPERATION_ID)
def test_every_frame_gets_one_clear_answer_and_changes_only_what_it_should(fuzzer: Fuzzer, case) -> None:
    assert_clean(fuzzer.run(case))


@ci(150)
@given(case=TARGETS["ws_batches"](LIMITS))
def test_a_batch_with_bad_items_applies_exactly_its_good_items(fuzzer: Fuzzer, case) -> None:
    assert_clean(fuzzer.run(case))


@ci(40)
@given(case=TARGETS["ws_transport"](LIMITS))
def test_a_frame_the_transport_refuses_closes_that_socket_only(fuzzer: Fuzzer, case) -> None:
    assert_clean(fuzzer.run(case))


@ci(150)
@given(case=TARGETS["http_uploads"](LIMITS))
@example(case=gif_cut_after_a_semicolon())
def test_every_upload_gets_a_clear_answer_and_only_a_whole_image_is_stored(fuzzer: Fuzzer, case) -> None:
    assert_clean(fuzzer.run(case))


@ci(120)
@given(case=TARGETS["http_paths"](LIMITS))
def test_odd_paths_get_a_4xx_and_only_stored_things_are_served(fuzzer: Fuzzer, case) -> None:
    assert_clean(fuzzer.run(case))


def test_the_server_still_answers_after_the_fuzzing(fuzzer: Fuzzer) -> None:
    """Whatever ran before (nothing else kills the shared server: the crash test has its own)."""
    assert fuzzer.healthy()
    assert fuzzer.starts == 1, "the server had to be started again during the fuzzing"


def test_the_fuzzed_canvases_load_as_they_were_after_a_restart(fuzzer: Fuzzer) -> None:
    """Twenty writes of its own first, so it holds in any order (after the fuzzing, on top of it)."""
    for n in range(20):
        node = {"id": f"{TAG}restart{n}", "type": "t", "pos": [n, 0]}
        assert_clean(fuzzer.run(WsCase("a good node", operation(OP_ID, OpType.NODE_CREATE, node),
                                       Applied(OP_ID, OpType.NODE_CREATE, (NodeItem(node, True),)))))
    assert sum(canvas.version for canvas in fuzzer.truths.values()) >= 20
    assert_clean(fuzzer.check_restart())


# --------------------------------------------------------------------------- the checks can fail


def test_the_checks_catch_a_wrong_answer_and_a_wrong_canvas(fuzzer: Fuzzer) -> None:
    node = {"id": TAG + "ok", "type": "t", "pos": [1, 2]}
    labelled_refused = WsCase("a good node labelled bad", operation(OP_ID, OpType.NODE_CREATE, node),
                              Refused(frozenset({"invalid_params"}), OP_ID))
    assert {v.kind for v in fuzzer.run(labelled_refused)} == {"protocol", "canvas"}
    labelled_good = WsCase("a bad node labelled good", operation(OP_ID, OpType.NODE_CREATE, {"id": TAG}),
                           Applied(OP_ID, OpType.NODE_CREATE, (NodeItem({**node, "id": TAG}, True),)))
    assert {v.kind for v in fuzzer.run(labelled_good)} == {"protocol", "canvas"}
    wrong_echo = WsCase("a ping expecting other data", frame("ping", {"a": 1}), Echoed({"a": 2}))
    assert [v.kind for v in fuzzer.run(wrong_echo)] == ["protocol"]


def test_the_checks_catch_a_stored_upload_that_should_have_been_refused(fuzzer: Fuzzer) -> None:
    data = image_bytes(seed=77)
    case = UploadCase("a good image labelled bad", MULTIPART, upload_body(data), frozenset({415}))
    assert [v.kind for v in fuzzer.run(case)] == ["protocol", "protocol"]  # the status, and the stored file


def test_the_checks_catch_5xx_answers() -> None:
    response = httpx.Response(500, json={"error": {"code": "internal", "message": "boom"}})
    assert [v.kind for v in judge_http("x", response, frozenset({400}), None)] == ["5xx"]
    answer = ("operation_rejected", {"operationId": "o", "code": "internal"}, "{}")
    violations, _ = judge_answer("x", Refused(frozenset({"invalid_params"}), "o"), answer, Canvas({}, 0), set())
    assert [v.kind for v in violations] == ["5xx"]


def test_the_checks_catch_a_crash_and_carry_on_with_a_new_server(tmp_path) -> None:
    with Fuzzer(tmp_path) as own:  # its own server: the shared one must not be killed under the others
        assert own.server is not None
        own.server.kill()
        violations = own.run(WsCase("ping", frame("ping", {"a": 1}), Echoed({"a": 1})))
        assert "crash" in {v.kind for v in violations}
        assert own.healthy() and own.starts == 2
        assert own.run(WsCase("ping", frame("ping", {"a": 1}), Echoed({"a": 1}))) == []
