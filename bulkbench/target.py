"""A target: a canvas server bulkbench did not start, described well enough to drive it and judge it.

bulkbench's strategies speak one canonical protocol (``bulkbench.protocol``); a target description
(TOML, ``scenarios/targets/NAME.toml``, documented by example in ``reference.toml``) says how that
protocol looks on a given server's wire: its transport (raw WebSocket JSON frames or Socket.IO),
how a drop gets a canvas and joins it, what its node creates carry, its upload route and answer
fields, how to read its truth and check a stored file, which operations it supports, and how it
tells one browser from another (a per-IP limiter needs each simulated browser on its own loopback
address). Plain data and pure functions here; the transports in ``loadtests/`` read it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bulkbench.config import ConfigError, from_table, read_extended, scenarios_dir
from bulkbench.protocol import BATCH_OPS, OpType

Transport = Literal["websocket", "socketio"]
TEMPLATE = re.compile(r"\{(\w+)\}")
LOOPBACK_FIRST_BROWSER = 2
"""Simulated browser N sends from 127.0.0.(N + this): 127.0.0.1 stays the server's own address."""
LOOPBACK_JUDGE = "127.0.0.254"
"""The judge's source address: its truth reads never share a rate-limit bucket with a browser."""
MAX_BROWSER_ADDRESSES = 250
"""127.0.0.2 .. 127.0.0.251: browsers beyond these share addresses (and rate-limit buckets)."""


@dataclass(frozen=True, slots=True)
class SocketSpec:
    transport: Transport = "websocket"
    path: str = "/ws"
    """The raw socket's route, or Socket.IO's path (``/socket.io/``)."""


@dataclass(frozen=True, slots=True)
class CanvasSpec:
    """How a drop gets its canvas. ``create = "join"``: joining an unknown id makes it (our server);
    ``"http"``: POST ``route`` with ``body`` first and take the new id from ``id_field``."""

    create: Literal["join", "http"] = "join"
    route: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    id_field: str = "id"


@dataclass(frozen=True, slots=True)
class JoinSpec:
    event: str = "join_canvas"
    payload: dict[str, Any] = field(default_factory=lambda: {"canvasId": "{canvas}"})
    answer: str = "canvas_joined"
    full_sync: bool = False
    """Ask ``request_full_sync`` after joining and wait for it before the drop (the real client does;
    on ImageCanvas it loads the canvas into the server's memory before the first operation)."""


@dataclass(frozen=True, slots=True)
class OperationsSpec:
    supported: tuple[str, ...] = tuple(str(op) for op in OpType)
    node_id: Literal["client", "server"] = "client"
    """``client``: creates carry the image's id; ``server``: no id, the server makes one (the judge then
    finds nodes by ``truth.node_key``)."""
    node_type: str = "media/image"
    node_properties: dict[str, str] = field(default_factory=dict)
    """The properties a create carries, as templates over the image: ``{hash}``, ``{filename}``,
    ``{width}``, ``{height}``, ``{size_bytes}``. Empty: bulkbench's own (``strategies.common``)."""
    payload: dict[str, Any] = field(default_factory=dict)
    """Extra fields of every ``execute_operation`` beside operationId/type/params (``stateVersion``...)."""
    rejection_code: str = "code"
    """The rejection's field that says why (ours: ``code``; ImageCanvas: ``error``, a sentence)."""

    def missing(self, needed: frozenset[str]) -> list[str]:
        return sorted(needed - set(self.supported))


@dataclass(frozen=True, slots=True)
class UploadSpec:
    route: str = "/api/upload"
    file_field: str = "file"
    hash_field: str = "hash"
    fields: dict[str, str] = field(default_factory=dict)
    """Further form fields, as templates (``{canvas}``, ``{user}``)."""
    url_field: str = "url"
    server_filename_field: str = "serverFilename"


@dataclass(frozen=True, slots=True)
class TruthSpec:
    """Where the server's own state says what it holds."""

    via: Literal["http", "full_sync"] = "http"
    route: str = "/api/canvases/{canvas}"
    nodes: str = "nodes"
    """Dotted path from the answer to the list of nodes."""
    node_key: str = "id"
    """Dotted path in a node that names its image: ``id`` or ``properties.hash``."""
    server_url: str = "properties.serverUrl"
    server_filename: str = "properties.serverFilename"
    """Where the node keeps its stored file's name; where it has none, the URL's last segment is."""
    file_check: Literal["HEAD", "GET"] = "HEAD"
    file_route: str = "/uploads/{server_filename}"


@dataclass(frozen=True, slots=True)
class ClientsSpec:
    """How the target tells browsers apart."""

    identity: Literal["source-address", "header"] = "source-address"
    """``source-address``: each simulated browser binds its own loopback address (a per-IP limiter
    sees distinct browsers); ``header``: one address, a ``header`` per browser."""
    header: str = "X-Client-Id"
    username: str = "{user}"
    """The name a browser joins with, as a template."""


@dataclass(frozen=True, slots=True)
class AppSpec:
    """The web app a real browser opens (``bulkbench browser-run``): where, when it can take a drop,
    where to drop, and when it has finished. JavaScript, with ``{canvas}`` filled in."""

    url: str = ""
    select_canvas: str = ""
    """A script run before the page's own (an init script) that makes it open the drop's canvas."""
    ready: str = ""
    """An expression that is true once the page has joined the canvas and can take a drop."""
    prepare: str = ""
    """Statements run once the page is ready, before the drop (hooks the harness reads later)."""
    drop_on: str = ""
    """The CSS selector of the element files are dropped on."""
    idle: str = ""
    """An expression that is true while the page has nothing left to send; held ``quiet_s``, the drop
    has settled. Empty: the network's own quiet (no upload and no operation for ``quiet_s``)."""
    claimed: str = ""
    """An expression for what the page itself tells its user about the drop (its own count)."""
    starting: str = ""
    """An expression for how far the page's own start got, read only when it is not ready in time (which
    of its awaited steps finished: a page that never asks its server leaves nothing else to read)."""
    client_strategy: str = ""
    """The strategy that stands for this page's own client where no browser runs: the model simulates a
    browser row with it (``bulkbench validate``), the protocol-level twin of a browser row runs it."""
    heartbeat: tuple[str, ...] = ()
    """The page's own heartbeat: the Socket.IO event it sends and the one the server answers with, echoing
    its data. How late the answers are handled is how far behind the page's main thread is; empty: none."""


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    description: str = ""
    model_profile: str = "legacy"
    """The server profile that stands for this target in the model (``compare --target``)."""
    socket: SocketSpec = field(default_factory=SocketSpec)
    canvas: CanvasSpec = field(default_factory=CanvasSpec)
    join: JoinSpec = field(default_factory=JoinSpec)
    operations: OperationsSpec = field(default_factory=OperationsSpec)
    upload: UploadSpec = field(default_factory=UploadSpec)
    truth: TruthSpec = field(default_factory=TruthSpec)
    clients: ClientsSpec = field(default_factory=ClientsSpec)
    app: AppSpec = field(default_factory=AppSpec)

    def supports(self, op_types: frozenset[str]) -> bool:
        return not self.operations.missing(op_types)

    @property
    def batch(self) -> bool:
        return self.supports(frozenset(str(op) for op in BATCH_OPS))


class TargetError(ConfigError):
    """A target that cannot be used, or cannot be used this way (a strategy it cannot serve)."""


def browser_address(user: int) -> str:
    """The loopback source address of simulated browser ``user``."""
    return f"127.0.0.{LOOPBACK_FIRST_BROWSER + user % MAX_BROWSER_ADDRESSES}"


def fill(template: Any, values: dict[str, Any]) -> Any:
    """A template with ``{name}`` fields filled, through lists and tables. A string that is exactly one
    field takes the value's own type (``"{canvas}"`` -> the integer id ImageCanvas wants)."""
    if isinstance(template, str):
        whole = TEMPLATE.fullmatch(template)
        if whole:
            return _value(values, whole.group(1), template)
        return TEMPLATE.sub(lambda m: str(_value(values, m.group(1), template)), template)
    if isinstance(template, dict):
        return {key: fill(value, values) for key, value in template.items()}
    if isinstance(template, list | tuple):
        return [fill(value, values) for value in template]
    return template


def _value(values: dict[str, Any], name: str, template: str) -> Any:
    if name not in values:
        raise TargetError(f"template {template!r}: no field {name!r}; known: {sorted(values)}")
    return values[name]


def dig(data: Any, path: str) -> Any:
    """``data`` at a dotted path (``canvas_data.nodes``), or None where it stops."""
    for part in path.split(".") if path else ():
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def targets_dir() -> Path:
    return scenarios_dir() / "targets"


TABLES: dict[str, type] = {
    "socket": SocketSpec, "canvas": CanvasSpec, "join": JoinSpec, "operations": OperationsSpec,
    "upload": UploadSpec, "truth": TruthSpec, "clients": ClientsSpec, "app": AppSpec,
}


def target_from_dict(raw: dict[str, Any], where: str) -> Target:
    raw = dict(raw)
    raw.pop("kind", None)
    parts: dict[str, Any] = {}
    for key, cls in TABLES.items():
        table = dict(raw.pop(key, {}))
        if key == "operations" and "supported" in table:
            table["supported"] = tuple(table["supported"])
            unknown = sorted(set(table["supported"]) - {str(op) for op in OpType})
            if unknown:
                raise TargetError(f"{where} [operations] supported: unknown operation(s) {unknown}; "
                                  f"known: {sorted(str(op) for op in OpType)}")
        if key == "app" and isinstance(table.get("heartbeat"), list):
            table["heartbeat"] = tuple(table["heartbeat"])
        parts[key] = from_table(cls, table, f"{where} [{key}]")
    target = from_table(Target, {**raw, **parts}, where)
    choices = {
        "socket.transport": (target.socket.transport, ("websocket", "socketio")),
        "canvas.create": (target.canvas.create, ("join", "http")),
        "operations.node_id": (target.operations.node_id, ("client", "server")),
        "truth.via": (target.truth.via, ("http", "full_sync")),
        "truth.file_check": (target.truth.file_check, ("HEAD", "GET")),
        "clients.identity": (target.clients.identity, ("source-address", "header")),
    }
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise TargetError(f"{where}: {name} must be one of {list(allowed)}, not {value!r}")
    if target.canvas.create == "http" and not target.canvas.route:
        raise TargetError(f"{where}: [canvas] create = 'http' needs a route")
    if target.app.heartbeat and (len(target.app.heartbeat) != 2 or not all(
            isinstance(e, str) and e for e in target.app.heartbeat)):
        raise TargetError(f"{where}: [app] heartbeat names two events, the page's and the server's answer "
                          f"(['ping', 'pong']), not {list(target.app.heartbeat)}")
    if target.operations.node_id == "server" and target.truth.node_key == "id":
        raise TargetError(f"{where}: the server names nodes (operations.node_id = 'server'), so the judge "
                          "cannot find them by id: set truth.node_key (for example 'properties.hash')")
    return target


def load_target(name_or_path: str | os.PathLike[str]) -> Target:
    """A target by name (``imagecanvas``) or by path (``my-server.toml``); it may ``extends`` another."""
    try:
        raw = read_extended(name_or_path, targets_dir(), "target")
    except TargetError:
        raise
    except ConfigError as exc:
        raise TargetError(str(exc)) from exc
    return target_from_dict(raw, str(name_or_path))


REFERENCE = "reference"
"""The target our own reference server is: what ``run`` drives when it starts the server itself."""
APP_TARGETS = {"today": "imagecanvas", "as-reported": "imagecanvas-as-reported"}
"""The target description of each state of the real ImageCanvas (``run --app STATE`` starts it)."""


def app_client_strategy(state: str) -> str:
    """The strategy that stands for the page's own client of a state of the real app (``APP_TARGETS``):
    its target's ``app.client_strategy``."""
    return load_target(APP_TARGETS[state]).app.client_strategy


def with_socket(target: Target, transport: Transport) -> Target:
    """The same target over another transport (our server speaks both)."""
    path = {"websocket": "/ws", "socketio": "/socket.io/"}[transport]
    return dataclasses.replace(target, socket=SocketSpec(transport, path))
