"""Fuzz cases for the reference server: what a broken or hostile client sends, and what must come back.

Every case is built to be bad in one known way (or to be good), so it carries its expected answer: a
refusal with its code, an echo, a closed socket, an HTTP status; for operations, an oracle
(``expected_outcome``) judges each item against the canvas the server held before the case, so a batch
with bad items among good ones must apply exactly its good items. Hypothesis strategies below make the
cases; ``tests/fuzzdriver.py`` sends them to a real server and checks the answers and the canvas;
``tests/test_fuzz.py`` (bounded, derandomized) and ``benchmarks/hardening/fuzz_bench.py`` (the long run) share both.

Strings in a case may hold placeholders, replaced when the case is sent (``render``): ``TAG`` becomes a
tag unique to the case (fresh node and operation ids), ``stored_file(k)`` the server's name of the
k-th seeded upload. ``Raw`` puts JSON text that ``json.dumps`` cannot write (``1e400``, ``NaN``, 2000
nested lists) into a frame as is.
"""

from __future__ import annotations

import dataclasses
import json
import re
import struct
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from hypothesis import strategies as st

from bulkbench.limits import KIB, Limits
from bulkbench.profile import load_profile
from bulkbench.protocol import MAX_COORDINATE, Event, OpType
from tests.helpers import image_bytes, sha256_hex

# --------------------------------------------------------------------------- the server under fuzz

LIMIT_OVERRIDES: dict[str, int] = {
    "max_message_bytes": 16 * KIB,
    "max_frame_bytes": 64 * KIB,
    "max_batch_items": 20,
    "max_upload_bytes": 256 * KIB,
    "max_image_pixels": 1_000_000,
    "max_id_chars": 64,
}
"""Small limits, so that cases can straddle every one of them cheaply."""


def fuzz_profile_text(base: str = "optimized") -> str:
    """A profile: ``base`` with the fuzz limits and no emulated service times."""
    limits = "\n".join(f"{key} = {value}" for key, value in LIMIT_OVERRIDES.items())
    return f'extends = "{base}"\nname = "fuzz-{base}"\nemulation = false\n\n[limits]\n{limits}\n'


def fuzz_limits(base: str = "optimized") -> Limits:
    """The limits a server started with ``fuzz_profile_text(base)`` enforces."""
    return dataclasses.replace(load_profile(base).limits, **LIMIT_OVERRIDES)


SEED_IMAGES = tuple(image_bytes("PNG", (48, 32), seed=900 + k) for k in range(4))
"""Uploaded when a canvas is seeded. Nodes ``seed-0..2`` carry the hashes of images 0..2; image 3 is
stored but no node carries its hash."""
SEED_HASHES = tuple(sha256_hex(data) for data in SEED_IMAGES)
SEED_NODE_IDS = tuple(f"seed-{k}" for k in range(3))

# --------------------------------------------------------------------------- placeholders

TAG = "\ue000"
_FILE = "\ue001"
_RAW = "\ue002"
CANVAS = "\ue003"
"""Becomes the id of the canvas the fuzzer's socket is joined to."""
PLACEHOLDERS = TAG + _FILE + _RAW + CANVAS


def stored_file(k: int) -> str:
    return f"{_FILE}{k}"


@dataclass(frozen=True)
class Raw:
    """JSON text written into a frame as is; ``depth`` > 0 for ``depth`` nested lists or objects."""

    text: str
    depth: int = 0
    kind: str = "list"


def nested(depth: int, kind: str = "list") -> Raw:
    if kind == "list":
        return Raw("[" * depth + "]" * depth, depth, kind)
    return Raw('{"a":' * depth + "0" + "}" * depth, depth, kind)


def to_text(value: Any) -> str:
    """Compact JSON, with ``Raw`` values spliced in as they are."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                      default=lambda raw: _RAW + raw.text)
    return re.sub(f'"{_RAW}([^"]*)"', lambda m: m.group(1), text)


def render_text(text: str, tag: str, files: list[str], canvas: str) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(1):
            return files[int(match.group(1))]
        return tag if match.group(0) == TAG else canvas
    return re.sub(f"{TAG}|{CANVAS}|{_FILE}(\\d)", one, text)


def render(value: Any, tag: str, files: list[str], canvas: str) -> Any:
    """``value`` with every placeholder replaced, through lists, dicts and case dataclasses."""
    if isinstance(value, str):
        return render_text(value, tag, files, canvas)
    if isinstance(value, list | tuple):
        return type(value)(render(v, tag, files, canvas) for v in value)
    if isinstance(value, dict):
        return {render(k, tag, files, canvas): render(v, tag, files, canvas) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type | Raw):
        return dataclasses.replace(value, **{f.name: render(getattr(value, f.name), tag, files, canvas)
                                            for f in dataclasses.fields(value)})
    return value


# --------------------------------------------------------------------------- WebSocket cases


@dataclass(frozen=True)
class Refused:
    """An ``error`` frame (no operation id) or ``operation_rejected`` (for ``operation_id``)."""

    codes: frozenset[str]
    operation_id: str | None = None


@dataclass(frozen=True)
class Echoed:
    """A ``pong`` carrying ``data``; ``text``: its frame's exact text (data too deep to compare)."""

    data: Any = None
    text: str | None = None
    may_refuse: bool = False


@dataclass(frozen=True)
class Synced:
    """A ``full_state_sync`` holding the canvas as the server's HTTP view shows it."""


@dataclass(frozen=True)
class UndoState:
    """An ``undo_state_update``."""


@dataclass(frozen=True)
class Joined:
    """A ``canvas_joined`` for this canvas id (then the fuzzer's socket joins its own canvas again)."""

    canvas_id: str


@dataclass(frozen=True)
class NodeItem:
    raw: Any
    valid: bool
    """False: malformed by construction (answered ``invalid_params``); True: the oracle decides."""


@dataclass(frozen=True)
class UploadRef:
    raw: Any
    valid: bool


@dataclass(frozen=True)
class Applied:
    """An operation: its items are judged by ``expected_outcome``. ``may_refuse``: a refusal of the
    whole operation is a clean answer too (payloads nested too deep to be worth storing)."""

    operation_id: str
    op_type: OpType
    items: tuple[NodeItem | UploadRef, ...]
    may_refuse: bool = False


@dataclass(frozen=True)
class Closed:
    """The socket is closed with this code (the transport's own limits); the server serves on."""

    code: int


Expect = Refused | Echoed | Synced | UndoState | Joined | Applied | Closed


@dataclass(frozen=True)
class WsCase:
    note: str
    frame: str | bytes
    expect: Expect


@dataclass(frozen=True)
class TransportCase:
    """A frame the transport itself refuses, sent on a socket of its own (``size`` bytes, made when sent)."""

    note: str
    kind: str
    """``text`` | ``binary`` | ``bad_utf8`` | ``json_text`` (a ping padded to ``size`` bytes)."""
    size: int
    seed: int
    expect: Expect


# --------------------------------------------------------------------------- the oracle


@dataclass
class Outcome:
    """What an operation must do: per item (ok, failure code), and the canvas after it."""

    results: list[tuple[bool, str | None]]
    nodes: dict[str, dict[str, Any]]
    version: int
    attached: dict[int, list[str]] = field(default_factory=dict)
    """For each attached upload item (by index): the ids of the nodes it updated."""


def stored_node(raw: dict[str, Any], node_id: str) -> dict[str, Any]:
    """The node a valid ``node_create`` item becomes on the canvas."""
    size = raw.get("size", [150.0, 100.0])
    return {"id": node_id, "type": raw["type"], "pos": [float(v) for v in raw["pos"]],
            "size": [float(v) for v in size], "properties": raw.get("properties", {})}


def expected_outcome(expect: Applied, canvas: dict[str, Any], stored_files: set[str]) -> Outcome:
    """Judge each item of a (rendered) operation against ``canvas``, the server's truth before it."""
    nodes = {node["id"]: node for node in canvas["nodes"]}
    outcome = Outcome([], nodes, canvas["version"])
    for index, item in enumerate(expect.items):
        if not item.valid:
            outcome.results.append((False, "invalid_params"))
        elif isinstance(item, NodeItem):
            # no id (or null): the server names it after the version the operation makes and the item's place
            node_id = item.raw.get("id")
            node_id = f"v{canvas['version'] + 1}.{index}" if node_id is None else node_id
            if node_id in nodes:
                outcome.results.append((False, "duplicate_node"))
            else:
                nodes[node_id] = stored_node(item.raw, node_id)
                outcome.results.append((True, None))
        else:
            raw = item.raw
            carriers = sorted(i for i, n in nodes.items() if n["properties"].get("hash") == raw["hash"]
                              and isinstance(n["properties"].get("hash"), str))
            if raw["serverFilename"] not in stored_files:
                outcome.results.append((False, "unknown_upload"))
            elif not carriers:
                outcome.results.append((False, "unknown_hash"))
            else:
                for node_id in carriers:
                    node = nodes[node_id]
                    nodes[node_id] = {**node, "properties": {**node["properties"], "serverUrl": raw["serverUrl"],
                                                             "serverFilename": raw["serverFilename"]}}
                outcome.results.append((True, None))
                outcome.attached[index] = carriers
    if any(ok for ok, _ in outcome.results):
        outcome.version += 1
    return outcome


def same_json(expected: Any, actual: Any) -> bool:
    """Equal as JSON values; a ``Raw`` nesting matches a value nested as deep, checked without recursion."""
    if isinstance(expected, Raw):
        value = actual
        for _ in range(expected.depth):
            if expected.kind == "list" and isinstance(value, list) and len(value) <= 1:
                value = value[0] if value else None
            elif expected.kind == "object" and isinstance(value, dict) and list(value) == ["a"]:
                value = value["a"]
            else:
                return False
        return value == (None if expected.kind == "list" else 0)
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and expected.keys() == actual.keys()
                and all(same_json(v, actual[k]) for k, v in expected.items()))
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(same_json(e, a) for e, a in zip(expected, actual, strict=True)))
    return type(expected) is type(actual) and expected == actual or (
        isinstance(expected, int | float) and not isinstance(expected, bool)
        and isinstance(actual, int | float) and not isinstance(actual, bool) and expected == actual)


# --------------------------------------------------------------------------- building blocks

CLIENT_EVENTS = frozenset({Event.JOIN_CANVAS, Event.EXECUTE_OPERATION, Event.REQUEST_FULL_SYNC,
                           Event.REQUEST_UNDO_STATE, Event.PING})
_CHARS = st.characters(exclude_categories=("Cs",), exclude_characters=PLACEHOLDERS)
texts = st.text(_CHARS, max_size=12)
DELETE = object()
"""A defect that removes the key."""


def idents(limits: Limits) -> st.SearchStrategy[str]:
    """Usable identifiers: 1 to ``max_id_chars`` characters, the bounds included."""
    return st.one_of(st.text(_CHARS, min_size=1, max_size=12),
                     st.text(_CHARS, min_size=limits.max_id_chars, max_size=limits.max_id_chars))


def bad_idents(limits: Limits) -> st.SearchStrategy[Any]:
    too_long = st.text(_CHARS, min_size=limits.max_id_chars + 1, max_size=limits.max_id_chars + 80)
    not_text = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                         st.lists(texts, max_size=2), st.dictionaries(texts, texts, max_size=2))
    return st.one_of(st.just(DELETE), st.just(""), too_long, not_text)


def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """JSON values every JSON library reads back exactly (integers within 64 bits, finite floats)."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                        st.floats(allow_nan=False, allow_infinity=False), texts)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
                        max_leaves=max_leaves)


def json_objects(max_leaves: int = 8) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(texts, json_values(max_leaves), max_size=4)


coordinates = st.one_of(st.integers(-int(MAX_COORDINATE), int(MAX_COORDINATE)),
                        st.floats(-MAX_COORDINATE, MAX_COORDINATE, allow_nan=False),
                        st.sampled_from([0, -0.0, MAX_COORDINATE, -MAX_COORDINATE, 5e-324, 0.1]))
bad_coordinates = st.one_of(
    st.floats(min_value=MAX_COORDINATE, exclude_min=True, allow_infinity=False),
    st.floats(max_value=-MAX_COORDINATE, exclude_max=True, allow_infinity=False),
    st.integers(min_value=int(MAX_COORDINATE) + 1), st.integers(max_value=-int(MAX_COORDINATE) - 1),
    st.sampled_from([2**64, 2**64 + 1, -(2**63) - 1, 10**30, 1e308, -1e308]),
    st.none(), st.booleans(), texts, st.lists(st.integers(), max_size=2),
    st.dictionaries(texts, st.integers(), max_size=1),
)
pairs = st.lists(coordinates, min_size=2, max_size=2)
bad_pairs = st.one_of(
    st.lists(coordinates, max_size=1), st.lists(coordinates, min_size=3, max_size=4),
    st.tuples(coordinates, bad_coordinates).map(list), st.tuples(bad_coordinates, coordinates).map(list),
    st.none(), st.booleans(), st.integers(), texts, st.dictionaries(texts, coordinates, max_size=2),
)
node_ids = st.one_of(
    st.sampled_from("abc").map(lambda s: TAG + s),   # collide inside one batch
    texts.map(lambda s: TAG + s),
    st.sampled_from(SEED_NODE_IDS),                  # already on the canvas
)
properties = st.one_of(
    json_objects(6),
    st.tuples(json_objects(4), st.sampled_from(SEED_HASHES)).map(lambda t: {**t[0], "hash": t[1]}),
)


def _node(id: Any, type: Any, pos: Any, size: Any, props: Any, extra: Any) -> dict[str, Any]:
    node = {"type": type, "pos": pos}
    for key, value in (("id", id), ("size", size), ("properties", props), ("extra", extra)):
        if value is not DELETE:
            node[key] = value
    return node


def good_nodes(limits: Limits) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(_node, node_ids | st.just(DELETE) | st.none(), idents(limits), pairs, st.just(DELETE) | pairs,
                     st.just(DELETE) | properties, st.just(DELETE) | json_values(4))


def _break(node: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    node = dict(node)
    if value is DELETE:
        node.pop(key, None)
    else:
        node[key] = value
    return node


def bad_nodes(limits: Limits) -> st.SearchStrategy[Any]:
    """Nodes malformed in one way: not an object, or one field missing or of the wrong kind."""
    defects = st.one_of(
        st.tuples(st.just("id"), bad_idents(limits).filter(lambda v: v is not DELETE and v is not None)),
        st.tuples(st.just("type"), bad_idents(limits)),
        st.tuples(st.just("pos"), st.just(DELETE) | bad_pairs),
        st.tuples(st.just("size"), bad_pairs),
        st.tuples(st.just("properties"), st.one_of(st.none(), st.booleans(), st.integers(), texts,
                                                   st.lists(json_values(2), max_size=2))),
    )
    broken = st.tuples(good_nodes(limits), defects).map(lambda t: _break(t[0], *t[1]))
    return st.one_of(broken, st.none(), st.integers(), texts, st.lists(json_values(2), max_size=2))


NASTY_FILENAMES = ["../bulkbench.sqlite3", "..", ".", "/etc/passwd", "uploads/x.png", "..\\..\\x.png",
                   "%2e%2e%2fbulkbench.sqlite3", ".hidden", "a\x00b.png", "server.log"]


def good_upload_items(limits: Limits) -> st.SearchStrategy[dict[str, Any]]:
    hashes = st.one_of(st.sampled_from(SEED_HASHES), st.text("0123456789abcdef", min_size=64, max_size=64),
                       idents(limits))
    files = st.one_of(st.sampled_from([stored_file(k) for k in range(len(SEED_IMAGES))]),
                      idents(limits), st.sampled_from(NASTY_FILENAMES))
    item = st.fixed_dictionaries({"hash": hashes, "serverUrl": idents(limits), "serverFilename": files})
    return st.one_of(item, st.tuples(item, json_values(3)).map(lambda t: {**t[0], "extra": t[1]}))


def bad_upload_items(limits: Limits) -> st.SearchStrategy[Any]:
    defects = st.tuples(st.sampled_from(["hash", "serverUrl", "serverFilename"]), bad_idents(limits))
    broken = st.tuples(good_upload_items(limits), defects).map(lambda t: _break(t[0], *t[1]))
    return st.one_of(broken, st.none(), st.integers(), texts, st.lists(json_values(2), max_size=2))


def frame(event: Any, data: Any = DELETE, **extra: Any) -> str:
    envelope = {"event": event} if data is DELETE else {"event": event, "data": data}
    return to_text({**envelope, **extra})


def operation(op_id: Any, op_type: Any = DELETE, params: Any = DELETE) -> str:
    data = {"operationId": op_id}
    for key, value in (("type", op_type), ("params", params)):
        if value is not DELETE:
            data[key] = value
    if op_id is DELETE:
        del data["operationId"]
    return frame(Event.EXECUTE_OPERATION, data)


OP_ID = TAG + "op"
"""A fresh operation id (one per case: a repeated id would be answered with the first answer)."""


# --------------------------------------------------------------------------- WebSocket frame strategies

NOT_JSON = ["", " ", "{oops", "{", "}", "[", "]", '{"event":"ping",}', "{'event': 'ping'}", "NaN", "Infinity",
            "-Infinity", "1e400", '{"event":"ping","data":{"x":1e400}}', '{"event":"ping","data":{"x":NaN}}',
            '"\\ud800"', '{"event":"ping","data":{"s":"\\udc00"}}', '{"event":"ping","data":{"s":"\x01"}}',
            '{"event":"ping"} trailing', "// comment", "tru", "nul", '"unterminated', "[" * 1100 + "]" * 1100,
            '{"event":"ping","data":' + "[" * 1100 + "]" * 1100 + "}", "0x10", "01", "+1", ".5", '{"a" 1}',
            '{"event":"ping","data":{"x":-}}', "\\", '{"event":"ping","data":{"s":"\\x41"}}']


def _not_json_text(text: str) -> bool:
    def refuse(_: str) -> Any:
        raise ValueError
    try:
        json.loads(text, parse_constant=refuse)
    except (ValueError, RecursionError):
        return True
    return False


def _valid_frames(limits: Limits) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda d: frame(Event.PING, d), json_objects()),
        st.builds(lambda n: operation(OP_ID, OpType.NODE_CREATE, n), good_nodes(limits)),
        st.builds(lambda items: operation(OP_ID, OpType.BATCH_UPLOAD_COMPLETE, {"items": items}),
                  st.lists(good_upload_items(limits), min_size=1, max_size=3)),
    )


def not_json(limits: Limits) -> st.SearchStrategy[WsCase]:
    truncated = st.tuples(_valid_frames(limits), st.floats(0, 1, exclude_max=True)).map(
        lambda t: t[0][: int(len(t[0]) * t[1])])
    texts_ = st.one_of(st.sampled_from(NOT_JSON), truncated, st.text(max_size=40).filter(_not_json_text))
    return st.builds(lambda t: WsCase("not JSON", t, Refused(frozenset({"bad_json"}))), texts_)


def not_an_envelope() -> st.SearchStrategy[WsCase]:
    bad = frozenset({"bad_frame"})
    non_objects = json_values(6).filter(lambda v: not isinstance(v, dict)).map(to_text)
    no_event = json_objects(6).filter(lambda d: "event" not in d).map(to_text)
    event_not_text = st.tuples(json_values(3).filter(lambda v: not isinstance(v, str)), json_objects(3)).map(
        lambda t: frame(t[0], t[1]))
    data_not_object = st.tuples(st.sampled_from(sorted(CLIENT_EVENTS)),
                                json_values(3).filter(lambda v: not isinstance(v, dict))).map(
        lambda t: frame(t[0], t[1]))
    return st.builds(lambda t: WsCase("not an envelope", t, Refused(bad)),
                     st.one_of(non_objects, no_event, event_not_text, data_not_object))


def unknown_events() -> st.SearchStrategy[WsCase]:
    server_events = sorted(set(Event) - CLIENT_EVENTS)
    names = st.one_of(texts.filter(lambda t: t not in CLIENT_EVENTS), st.sampled_from(server_events),
                      st.sampled_from(["PING", "Ping", " ping", "ping\x00", "join-canvas", "executeOperation",
                                       "node_create", "batch_node_create", "__proto__", "constructor"]))
    return st.builds(lambda name, data: WsCase("unknown event", frame(name, data),
                                               Refused(frozenset({"unknown_event"}))),
                     names, st.just(DELETE) | json_objects(4))


def bad_joins(limits: Limits) -> st.SearchStrategy[WsCase]:
    def case(canvas_id: Any, extra: dict[str, Any]) -> WsCase:
        data = dict(extra) if canvas_id is DELETE else {**extra, "canvasId": canvas_id}
        return WsCase("join_canvas without a usable canvasId", frame(Event.JOIN_CANVAS, data),
                      Refused(frozenset({"invalid_params"})))
    extra = st.fixed_dictionaries({}, optional={"token": json_values(2), "other": json_values(2)})
    return st.builds(case, bad_idents(limits), extra)


def odd_joins(limits: Limits) -> st.SearchStrategy[WsCase]:
    """``join_canvas`` with a usable but odd canvas id: any characters, up to ``max_id_chars``."""
    return st.builds(lambda canvas_id: WsCase("join_canvas with an odd canvasId", frame(Event.JOIN_CANVAS, {
        "canvasId": canvas_id}), Joined(canvas_id)), idents(limits) | st.sampled_from(NASTY_FILENAMES))


def bad_operations(limits: Limits) -> st.SearchStrategy[WsCase]:
    """``execute_operation`` frames whose envelope is wrong: id, type, params, or the batch list itself."""
    invalid = frozenset({"invalid_params"})
    op_types = st.sampled_from(list(OpType))
    no_id = st.builds(lambda op_id, op_type, params: WsCase(
        "operation without a usable operationId", operation(op_id, op_type, params), Refused(invalid)),
        bad_idents(limits), st.just(DELETE) | op_types, st.just(DELETE) | json_objects(3))
    no_type = st.builds(lambda op_type, params: WsCase(
        "operation without a usable type", operation(OP_ID, op_type, params), Refused(invalid, OP_ID)),
        st.just(DELETE) | json_values(3).filter(lambda v: not isinstance(v, str)), st.just(DELETE) | json_objects(3))
    unknown = st.builds(lambda op_type, params: WsCase(
        "unknown operation type", operation(OP_ID, op_type, params),
        Refused(frozenset({"unknown_operation"}), OP_ID)),
        st.one_of(texts, st.sampled_from(["node_delete", "NODE_CREATE", "node_create ", "batch", "undo"])).filter(
            lambda t: t not in set(OpType)), json_objects(3))
    no_params = st.builds(lambda op_type, params: WsCase(
        "params not an object", operation(OP_ID, op_type, params), Refused(invalid, OP_ID)),
        op_types, st.just(DELETE) | json_values(3).filter(lambda v: not isinstance(v, dict)))
    batch_keys = {OpType.BATCH_NODE_CREATE: "nodes", OpType.BATCH_UPLOAD_COMPLETE: "items"}
    no_list = st.builds(lambda op_type, value: WsCase(
        "batch without a non-empty list", operation(OP_ID, op_type, {} if value is DELETE
                                                     else {batch_keys[op_type]: value}), Refused(invalid, OP_ID)),
        st.sampled_from(sorted(batch_keys)),
        st.just(DELETE) | st.just([]) | json_values(3).filter(lambda v: not isinstance(v, list)))
    too_many = st.builds(lambda op_type, extra: WsCase(
        "batch over max_batch_items", operation(OP_ID, op_type, {batch_keys[op_type]: [
            {"id": f"{TAG}{i}", "type": "t", "pos": [i, 0]} for i in range(limits.max_batch_items + extra)]}),
        Refused(frozenset({"batch_too_large"}), OP_ID)),
        st.sampled_from(sorted(batch_keys)), st.integers(1, 10))
    return st.one_of(no_id, no_type, unknown, no_params, no_list, too_many)


def single_operations(limits: Limits) -> st.SearchStrategy[WsCase]:
    """``node_create`` and ``image_upload_complete`` with a good or malformed item."""
    def node_case(item: NodeItem) -> WsCase:
        return WsCase("node_create", operation(OP_ID, OpType.NODE_CREATE, item.raw),
                      Applied(OP_ID, OpType.NODE_CREATE, (item,)))

    def upload_case(item: UploadRef) -> WsCase:
        return WsCase("image_upload_complete", operation(OP_ID, OpType.IMAGE_UPLOAD_COMPLETE, item.raw),
                      Applied(OP_ID, OpType.IMAGE_UPLOAD_COMPLETE, (item,)))
    return st.one_of(
        st.builds(node_case, node_items(limits).filter(lambda i: i.valid or isinstance(i.raw, dict))),
        st.builds(upload_case, upload_items(limits).filter(lambda i: i.valid or isinstance(i.raw, dict))),
    )


def node_items(limits: Limits) -> st.SearchStrategy[NodeItem]:
    return st.one_of(good_nodes(limits).map(lambda n: NodeItem(n, True)),
                     bad_nodes(limits).map(lambda n: NodeItem(n, False)))


def upload_items(limits: Limits) -> st.SearchStrategy[UploadRef]:
    return st.one_of(good_upload_items(limits).map(lambda i: UploadRef(i, True)),
                     bad_upload_items(limits).map(lambda i: UploadRef(i, False)))


def oversized_messages(limits: Limits) -> st.SearchStrategy[WsCase]:
    """Frames over ``max_message_bytes`` (counted in UTF-8 bytes), under the transport cap."""
    too_large = frozenset({"message_too_large"})

    def case(over: int, char: str, as_op: bool) -> WsCase:
        pad = char * ((limits.max_message_bytes + over) // len(char.encode()) + 1)
        if as_op:
            node = {"id": TAG + "big", "type": "t", "pos": [0, 0], "properties": {"pad": pad}}
            return WsCase("operation over max_message_bytes", operation(OP_ID, OpType.NODE_CREATE, node),
                          Refused(too_large, OP_ID))
        return WsCase("frame over max_message_bytes", frame(Event.PING, {"pad": pad}), Refused(too_large))
    room = limits.max_frame_bytes - limits.max_message_bytes - 1024
    return st.builds(case, st.integers(1, room), st.sampled_from(["x", "é", "\u20ac", "\U0001f600"]), st.booleans())


def answered_requests(limits: Limits) -> st.SearchStrategy[WsCase]:
    """Frames with an answer that is not an error: ping (echoed), full sync, undo state."""
    def ping(data: Any) -> WsCase:
        return WsCase("ping", frame(Event.PING, data), Echoed({} if data is DELETE else data))

    def near_limit(char: str) -> WsCase:
        pad = char * ((limits.max_message_bytes - 200) // len(char.encode()))
        return WsCase("ping just under max_message_bytes", frame(Event.PING, {"pad": pad}), Echoed({"pad": pad}))
    return st.one_of(
        st.builds(ping, st.just(DELETE) | json_objects()),
        st.builds(near_limit, st.sampled_from(["x", "é", "\U0001f600"])),
        st.builds(lambda d: WsCase("request_full_sync", frame(Event.REQUEST_FULL_SYNC, d), Synced()),
                  st.just(DELETE) | json_objects(4)),
        st.builds(lambda d: WsCase("request_undo_state", frame(Event.REQUEST_UNDO_STATE, d), UndoState()),
                  st.just(DELETE) | json_objects(4)),
    )


def binary_frames(limits: Limits) -> st.SearchStrategy[WsCase]:
    payloads = st.one_of(st.binary(max_size=64), _valid_frames(limits).map(str.encode))
    return st.builds(lambda b: WsCase("binary frame", b, Refused(frozenset({"bad_frame"}))), payloads)


ORJSON_MAX_DEPTH = 1024
"""Deepest nesting the server's JSON parser reads; deeper frames are not JSON to it."""


def deep_nesting(limits: Limits) -> st.SearchStrategy[WsCase]:
    def ping(depth: int, kind: str) -> WsCase:
        value = nested(depth, kind)
        text = frame(Event.PING, {"d": value})
        if depth + 2 > ORJSON_MAX_DEPTH:
            return WsCase("ping nested too deep to parse", text, Refused(frozenset({"bad_json"})))
        pong = '{"event":"pong","data":{"d":' + value.text + "}}"
        return WsCase("deeply nested ping", text, Echoed(text=pong, may_refuse=True))

    def node(depth: int, kind: str) -> WsCase:
        raw = {"id": TAG + "deep", "type": "t", "pos": [0, 0], "properties": {"d": nested(depth, kind)}}
        text = operation(OP_ID, OpType.NODE_CREATE, raw)
        if depth + 4 > ORJSON_MAX_DEPTH:
            return WsCase("node nested too deep to parse", text, Refused(frozenset({"bad_json"})))
        return WsCase("deeply nested node properties", text,
                      Applied(OP_ID, OpType.NODE_CREATE, (NodeItem(raw, True),), may_refuse=True))
    depths = st.one_of(st.integers(1, 1100), st.sampled_from([63, 64, 65, 253, 254, 255, 256, 990, 1019, 1020, 1021]))
    kinds = st.sampled_from(["list", "object"])
    return st.one_of(st.builds(ping, depths, kinds), st.builds(node, depths, kinds))


def ws_frame_cases(limits: Limits) -> st.SearchStrategy[WsCase]:
    """One frame on a joined socket: broken, unknown, refused, or answered."""
    return st.one_of(not_json(limits), not_an_envelope(), unknown_events(), bad_joins(limits), odd_joins(limits),
                     bad_operations(limits), single_operations(limits), oversized_messages(limits),
                     answered_requests(limits), binary_frames(limits), deep_nesting(limits))


def ws_batch_cases(limits: Limits) -> st.SearchStrategy[WsCase]:
    """``batch_node_create`` / ``batch_upload_complete`` with bad items among good ones."""
    def nodes_case(items: list[NodeItem]) -> WsCase:
        return WsCase(f"batch_node_create of {len(items)}", operation(OP_ID, OpType.BATCH_NODE_CREATE, {
            "nodes": [i.raw for i in items]}), Applied(OP_ID, OpType.BATCH_NODE_CREATE, tuple(items)))

    def uploads_case(items: list[UploadRef]) -> WsCase:
        return WsCase(f"batch_upload_complete of {len(items)}", operation(
            OP_ID, OpType.BATCH_UPLOAD_COMPLETE, {"items": [i.raw for i in items]}),
            Applied(OP_ID, OpType.BATCH_UPLOAD_COMPLETE, tuple(items)))
    n = limits.max_batch_items
    return st.one_of(st.builds(nodes_case, st.lists(node_items(limits), min_size=1, max_size=n)),
                     st.builds(uploads_case, st.lists(upload_items(limits), min_size=1, max_size=n)))


def ws_transport_cases(limits: Limits) -> st.SearchStrategy[TransportCase]:
    """Frames the WebSocket layer refuses (closing that socket only), and the largest it lets through."""
    over = st.integers(limits.max_frame_bytes + 1, limits.max_frame_bytes + 32 * KIB)
    return st.one_of(
        st.builds(lambda size, kind, seed: TransportCase(f"{kind} frame over max_frame_bytes", kind, size, seed,
                                                         Closed(1009)),
                  over, st.sampled_from(["text", "binary"]), st.integers(0, 2**32)),
        st.builds(lambda size, seed: TransportCase("text frame that is not UTF-8", "bad_utf8", size, seed,
                                                   Closed(1007)),
                  st.integers(1, 2 * KIB), st.integers(0, 2**32)),
        st.builds(lambda size: TransportCase("ping under max_frame_bytes, over max_message_bytes", "json_text",
                                             size, 0, Refused(frozenset({"message_too_large"}))),
                  st.integers(limits.max_message_bytes + 1, limits.max_frame_bytes)),
    )


# --------------------------------------------------------------------------- HTTP upload cases

BOUNDARY = b"fuzzb0undary"
IMAGE_EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "WEBP": ".webp"}


@dataclass(frozen=True)
class UploadCase:
    note: str
    content_type: str
    body: bytes
    statuses: frozenset[int]
    codes: frozenset[str] | None = None
    """Error codes allowed for a 4xx (None: any code)."""
    image: bytes | None = None
    """The file, when the case may be stored: a 200 must store exactly it."""
    extension: str | None = None
    streamed: bool = False
    """Sent without Content-Length, in chunks: the cap must hold while the body streams."""


def part(name: bytes, data: bytes, filename: bytes | None = None, content_type: bytes | None = None) -> bytes:
    disposition = b'form-data; name="' + name + b'"'
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    headers = [b"Content-Disposition: " + disposition]
    if content_type is not None:
        headers.append(b"Content-Type: " + content_type)
    return b"\r\n".join(headers) + b"\r\n\r\n" + data


def multipart(parts: list[bytes], boundary: bytes = BOUNDARY) -> bytes:
    return b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts) + b"--" + boundary + b"--\r\n"


MULTIPART = "multipart/form-data; boundary=" + BOUNDARY.decode()


@lru_cache(maxsize=512)
def sample_image(fmt: str, width: int, height: int, seed: int) -> bytes:
    return image_bytes(fmt, (width, height), seed=seed)


images = st.builds(lambda fmt, w, h, seed: (fmt, sample_image(fmt, w, h, seed)),
                   st.sampled_from(sorted(IMAGE_EXTENSIONS)), st.integers(1, 64), st.integers(1, 64),
                   st.integers(0, 30))


def upload_body(data: bytes, content_type: bytes = b"image/png", filename: bytes = b"a.png",
                 hash_field: bytes | None = None) -> bytes:
    parts = [] if hash_field is None else [part(b"hash", hash_field)]
    return multipart([*parts, part(b"file", data, filename, content_type)])


def good_uploads() -> st.SearchStrategy[UploadCase]:
    def case(image: tuple[str, bytes], hash_style: str, filename: bytes, extra: list[bytes]) -> UploadCase:
        fmt, data = image
        digest = sha256_hex(data)
        hash_field = {"none": None, "exact": digest, "upper": digest.upper(), "padded": f"  {digest}\n"}[hash_style]
        parts = [part(b"note", value) for value in extra]
        parts.append(part(b"file", data, filename, f"image/{fmt.lower()}".encode()))
        if hash_field is not None:
            parts.insert(0, part(b"hash", hash_field.encode()))
        return UploadCase("a good image", MULTIPART, multipart(parts), frozenset({200}), image=data,
                          extension=IMAGE_EXTENSIONS[fmt])
    names = st.one_of(st.sampled_from([n.encode() for n in NASTY_FILENAMES]), st.just(b"x" * 300),
                      st.text(_CHARS, max_size=20).map(lambda t: re.sub('["\r\n]', "", t).encode()),
                      st.binary(max_size=20).filter(lambda b: not set(b) & set(b'"\r\n')))
    return st.builds(case, images, st.sampled_from(["none", "exact", "upper", "padded"]), names,
                     st.lists(st.binary(max_size=100), max_size=2))


def lying_types() -> st.SearchStrategy[UploadCase]:
    def not_image(image: tuple[str, bytes], declared: str) -> UploadCase:
        return UploadCase(f"an image declared {declared!r}", MULTIPART,
                          upload_body(image[1], declared.encode("latin-1")), frozenset({415}),
                          frozenset({"unsupported_media_type"}))

    def other_image(image: tuple[str, bytes], declared: str) -> UploadCase:
        fmt, data = image
        return UploadCase(f"a {fmt} declared {declared}", MULTIPART, upload_body(data, declared.encode()),
                          frozenset({200, 415}), frozenset({"unsupported_media_type"}), image=data,
                          extension=IMAGE_EXTENSIONS[fmt])
    declared = st.one_of(st.sampled_from(["text/plain", "application/octet-stream", "", "text/html",
                                          "application/x-msdownload", "imagepng", "image", "png", "video/mp4"]),
                         st.text(st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=20).filter(
                             lambda t: not t.strip().lower().startswith("image/")))
    return st.one_of(
        st.builds(not_image, images, declared),
        st.builds(other_image, images, st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp",
                                                        "image/svg+xml", "image/x-icon", "IMAGE/PNG"])),
    )


def non_images() -> st.SearchStrategy[UploadCase]:
    def case(data: bytes, declared: str) -> UploadCase:
        return UploadCase("bytes that are not an image, declared an image", MULTIPART,
                          upload_body(data, declared.encode()), frozenset({400, 413, 415}),
                          frozenset({"invalid_image", "unsupported_media_type", "image_too_large"}))
    data = st.one_of(st.binary(min_size=1, max_size=2000), st.text(min_size=1, max_size=200).map(str.encode),
                     st.sampled_from([b"MZ\x90\x00", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"%PDF-1.4",
                                      b"GIF89a", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\0\0\0\0WEBP",
                                      b"BM" + b"\0" * 60, b"PK\x03\x04"]))
    return st.builds(case, data, st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp"]))


def truncated_images() -> st.SearchStrategy[UploadCase]:
    def case(image: tuple[str, bytes], cut: float, with_hash: bool) -> UploadCase:
        fmt, data = image
        data = data[: int(len(data) * cut)]
        body = upload_body(data, f"image/{fmt.lower()}".encode(), hash_field=sha256_hex(data).encode()
                            if with_hash else None)
        return UploadCase(f"a truncated {fmt}", MULTIPART, body, frozenset({400}), frozenset({"invalid_image"}))
    return st.builds(case, images, st.floats(0, 1, exclude_max=True), st.booleans())


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def forged_header(fmt: str, width: int, height: int) -> bytes:
    """A minimal file of ``fmt`` whose header declares ``width`` x ``height`` (and holds no such pixels)."""
    if fmt == "PNG":
        return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b""))
    if fmt == "GIF":
        return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0) + b",\0\0\0\0"
                + struct.pack("<HH", width, height) + b"\0\x02\x02\x44\x01\x00;")
    if fmt == "JPEG":
        sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
        sos = b"\xff\xda" + struct.pack(">HB", 12, 3) + b"\x01\x00\x02\x00\x03\x00\x00\x3f\x00"
        return b"\xff\xd8" + sof + sos + b"\0" * 10 + b"\xff\xd9"
    vp8x = (b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + max(width - 1, 0).to_bytes(3, "little")
            + max(height - 1, 0).to_bytes(3, "little"))
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


@lru_cache(maxsize=8)
def blank_image(fmt: str, width: int, height: int) -> bytes:
    """A real image of one colour: tiny on disk, ``width`` x ``height`` once decoded."""
    import io

    from PIL import Image
    out = io.BytesIO()
    Image.new("L" if fmt != "WEBP" else "RGB", (width, height)).save(out, fmt)
    return out.getvalue()


def bombs(limits: Limits) -> st.SearchStrategy[UploadCase]:
    """Decompression bombs and absurd dimensions: over ``max_image_pixels``, or zero."""
    max_pixels = limits.max_image_pixels

    def forged(fmt: str, width: int, height: int) -> UploadCase:
        data = forged_header(fmt, width, height)
        if width * height == 0:
            return UploadCase(f"a {fmt} declaring {width}x{height} px", MULTIPART,
                              upload_body(data, f"image/{fmt.lower()}".encode()), frozenset({400}),
                              frozenset({"invalid_image"}))
        # libwebp refuses a header with no image data before its size can be read: a 400 is clear too
        statuses = frozenset({413} if fmt != "WEBP" else {400, 413})
        return UploadCase(f"a {fmt} header declaring {width}x{height} px", MULTIPART,
                          upload_body(data, f"image/{fmt.lower()}".encode()), statuses,
                          frozenset({"image_too_large", "invalid_image"}))

    def real(fmt: str, extra_rows: int) -> UploadCase:
        width = 1000
        data = blank_image(fmt, width, max_pixels // width + extra_rows)
        return UploadCase(f"a real {fmt} over max_image_pixels", MULTIPART,
                          upload_body(data, f"image/{fmt.lower()}".encode()), frozenset({413}),
                          frozenset({"image_too_large"}))
    side = 2**16 - 1
    big = st.tuples(st.integers(1, side), st.integers(1, side)).filter(lambda wh: wh[0] * wh[1] > max_pixels)
    return st.one_of(
        st.builds(lambda fmt, wh: forged(fmt, *wh), st.sampled_from(["PNG", "GIF", "JPEG", "WEBP"]), big),
        st.builds(lambda w, h: forged("PNG", w, h), st.integers(1, 2**31 - 1), st.integers(2**20, 2**31 - 1)),
        st.builds(lambda fmt, zero_w: forged(fmt, 0 if zero_w else 10, 10 if zero_w else 0),
                  st.sampled_from(["PNG", "GIF", "JPEG"]), st.booleans()),
        st.builds(real, st.sampled_from(["PNG", "GIF"]), st.sampled_from([1, 2, 500])),
    )


def broken_multipart() -> st.SearchStrategy[UploadCase]:
    invalid = frozenset({"invalid_upload"})

    def truncated(image: tuple[str, bytes], cut: float) -> UploadCase:
        body = upload_body(image[1], hash_field=sha256_hex(image[1]).encode())
        file_start = body.index(b"--" + BOUNDARY, 2)
        closing = len(body) - len(b"\r\n--" + BOUNDARY + b"--\r\n")
        cut_at = file_start + int((closing - file_start) * cut)
        return UploadCase("a multipart body cut short", MULTIPART, body[:cut_at], frozenset({400}), invalid)

    def mangled_type(content_type: str, image: tuple[str, bytes]) -> UploadCase:
        return UploadCase(f"Content-Type {content_type!r}", content_type, upload_body(image[1]), frozenset({400}),
                          invalid)

    def garbage(data: bytes) -> UploadCase:
        return UploadCase("random bytes as a multipart body", MULTIPART, data, frozenset({400}), invalid)

    def mutated(image: tuple[str, bytes], edits: list[tuple[float, bytes]]) -> UploadCase:
        body = bytearray(upload_body(image[1], hash_field=sha256_hex(image[1]).encode()))
        for where, new in edits:
            at = int(len(body) * where)
            body[at: at + len(new)] = new
        return UploadCase("a multipart body with bytes overwritten", MULTIPART, bytes(body),
                          frozenset({200, 400, 413, 415}), image=image[1], extension=IMAGE_EXTENSIONS[image[0]])

    def shape(kind: str, image: tuple[str, bytes]) -> UploadCase:
        data = image[1]
        file_part = part(b"file", data, b"a.png", b"image/png")
        parts = {
            "two file parts": [file_part, file_part],
            "file part under another name": [part(b"image", data, b"a.png", b"image/png")],
            "no file part": [part(b"hash", sha256_hex(data).encode())],
            "hash that is not the file's": [part(b"hash", b"0" * 64), file_part],
            "hash field over 1 KiB": [part(b"hash", b"a" * 1100), file_part],
            "part without headers": [b"\r\n" + data],
            "no parts": [],
        }[kind]
        return UploadCase(kind, MULTIPART, multipart(parts), frozenset({400}), invalid)
    content_types = st.one_of(
        st.sampled_from(["multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; boundary=other",
                         "multipart/form-data; boundary=" + "b" * 201, 'multipart/form-data; boundary="unclosed',
                         "multipart/form-data; charset=utf-8"]),
        st.text("abcxyz-_=;\" ", max_size=30).map(lambda t: ("multipart/form-data; boundary=" + t).strip()).filter(
            lambda t: t != MULTIPART and not t.endswith("=" + BOUNDARY.decode())),
    )
    return st.one_of(
        st.builds(truncated, images, st.floats(0, 1)),
        st.builds(mangled_type, content_types, images),
        st.builds(garbage, st.binary(max_size=3000)),
        st.builds(mutated, images, st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.binary(min_size=1,
                                                                                                  max_size=8)),
                                            min_size=1, max_size=4)),
        st.builds(shape, st.sampled_from(["two file parts", "file part under another name", "no file part",
                                          "hash that is not the file's", "hash field over 1 KiB",
                                          "part without headers", "no parts"]), images),
    )


def not_multipart() -> st.SearchStrategy[UploadCase]:
    def case(content_type: str, image: tuple[str, bytes]) -> UploadCase:
        return UploadCase(f"request Content-Type {content_type!r}", content_type, upload_body(image[1]),
                          frozenset({415}), frozenset({"unsupported_media_type"}))
    types = st.one_of(st.sampled_from(["application/json", "text/plain", "", "application/x-www-form-urlencoded",
                                       "multipart/mixed; boundary=" + BOUNDARY.decode(), "image/png",
                                       "multipart/form-datax; boundary=" + BOUNDARY.decode()]),
                      st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30).map(str.strip).filter(
                          lambda t: not t.strip().lower().startswith("multipart/form-data")))
    return st.builds(case, types, images)


def oversized_uploads(limits: Limits) -> st.SearchStrategy[UploadCase]:
    def case(over: int, streamed: bool) -> UploadCase:
        data = b"\x89PNG\r\n\x1a\n" + b"\0" * (limits.max_upload_bytes + over)
        return UploadCase("a file over max_upload_bytes" + (", streamed" if streamed else ""), MULTIPART,
                          upload_body(data), frozenset({413}), frozenset({"payload_too_large"}), streamed=streamed)
    return st.builds(case, st.integers(1, 128 * KIB), st.booleans())


def upload_cases(limits: Limits) -> st.SearchStrategy[UploadCase]:
    return st.one_of(good_uploads(), lying_types(), non_images(), truncated_images(), bombs(limits),
                     broken_multipart(), not_multipart(), oversized_uploads(limits))


# --------------------------------------------------------------------------- HTTP path cases


@dataclass(frozen=True)
class PathCase:
    """``GET target`` sent byte for byte; the driver knows which decoded paths exist."""

    note: str
    target: str


PATH_TOKENS = ["..", ".", "%2e%2e", "%2E%2E", "%2F", "%2f", "/", "//", "%00", "%ff", "%c0%ae", "%5c", "\\", "~",
               "bulkbench.sqlite3", "server.log", "uploads", "thumbnails", "incoming", "a.png", "x.webp", "%",
               "%zz", "?", "?a=1", "#", ";", "64", "0", "-1", "99999999999999999999", "%20", "+", "%0d%0a",
               "%e2%80%ae", "%ef%bf%bd", "\u00e9", "\U0001f600", "a" * 300, "CON", "nul", "*", "'", '"', "<", ">"]
PATH_PREFIXES = ["/uploads/", "/thumbnails/", "/thumbnails/64/", "/thumbnails/64/..%2F", "/api/canvases/",
                 "/uploads", "/api/canvases", "/thumbnails", "/", "//", "/api/", "/uploads/%2e%2e/"]


def path_cases() -> st.SearchStrategy[PathCase]:
    tokens = st.one_of(st.sampled_from(PATH_TOKENS), st.text("abc.-_%0123456789", max_size=8),
                       st.sampled_from([stored_file(k) for k in range(len(SEED_IMAGES))]))
    odd = st.builds(lambda prefix, parts: PathCase("odd path", prefix + "".join(parts)),
                    st.sampled_from(PATH_PREFIXES), st.lists(tokens, max_size=5))
    known = st.builds(lambda t: PathCase("a path that exists", t), st.sampled_from(
        [f"/uploads/{stored_file(k)}" for k in range(len(SEED_IMAGES))] + ["/api/canvases/" + CANVAS]))
    return st.one_of(odd, known)


TARGETS: dict[str, Any] = {
    "ws_frames": ws_frame_cases,
    "ws_batches": ws_batch_cases,
    "ws_transport": ws_transport_cases,
    "http_uploads": upload_cases,
    "http_paths": lambda limits: path_cases(),
}
"""Each fuzz target: a function of the server's limits giving the strategy of its cases."""
