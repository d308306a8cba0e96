"""The canvas and what operations do to it: pure state, no I/O.

An operation is applied item by item: an item that cannot be applied fails alone, with its reason,
and the rest go in. ``apply`` returns what changed (for ``state_update``), the per-item results
(for the ack) and an ``undo`` that puts the canvas back if persisting fails, so memory never holds
what the disk does not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bulkbench.limits import Limits
from bulkbench.protocol import (
    BatchNodeCreate,
    BatchUploadComplete,
    ErrorCode,
    ImageUploadComplete,
    NodeCreate,
    NodeSpec,
    Operation,
    ProtocolError,
    UploadItem,
)

UploadExists = Callable[[str], bool]
"""Whether a stored upload has this server filename."""


@dataclass(frozen=True, slots=True)
class Linking:
    """How ``image_upload_complete`` links an upload to the nodes carrying its hash (a profile's ``[linking]``)."""

    checks_upload: bool = True
    """Refuse a file the server does not hold (``unknown_upload``). ImageCanvas checks only that a hash and
    a URL are given (``CanvasStateManager.js:936-941``), so a node may point at a file it deleted."""
    first_url_stays: bool = False
    """A node that has a URL keeps it; only nodes without one take the new (ImageCanvas,
    ``CanvasStateManager.js:707-712``). False: every node with the hash takes the newest."""


@dataclass(slots=True)
class Applied:
    results: list[dict[str, Any]]
    added: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    undo: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    """(node id, node before or None if it was added), newest last."""
    accepted_unchanged: bool = False
    """An item was accepted that changed no node (a link to nodes that keep their first URL): ImageCanvas
    still bumps the version, saves the canvas and broadcasts it (``CanvasStateManager.js:88-99``)."""

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.accepted_unchanged)

    @property
    def ok_count(self) -> int:
        return sum(1 for r in self.results if r["ok"])


def _failure(index: int, error: ProtocolError | str, code: ErrorCode | None = None) -> dict[str, Any]:
    """A failed item's result. Results are positional (result i answers item i); failures also
    carry their ``index`` so a log line of one failure says which item it was."""
    if isinstance(error, ProtocolError):
        return {"index": index, "ok": False, "code": error.code.value, "error": error.message}
    return {"index": index, "ok": False, "code": (code or ErrorCode.INVALID_PARAMS).value, "error": error}


class Canvas:
    """One canvas: its nodes by id, an index of nodes by image hash, and its version."""

    def __init__(self, canvas_id: str, limits: Limits, linking: Linking = Linking()) -> None:
        self.id = canvas_id
        self.limits = limits
        self.linking = linking
        self.version = 0
        self.nodes: dict[str, dict[str, Any]] = {}
        self._by_hash: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ views

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "nodes": list(self.nodes.values())}

    @classmethod
    def from_json(cls, data: dict[str, Any], limits: Limits, linking: Linking = Linking()) -> Canvas:
        canvas = cls(data["id"], limits, linking)
        canvas.version = data["version"]
        for node in data["nodes"]:
            canvas._put(node)
        return canvas

    # ------------------------------------------------------------------ changes

    def _put(self, node: dict[str, Any]) -> None:
        self.nodes[node["id"]] = node
        image_hash = node["properties"].get("hash")
        if isinstance(image_hash, str):
            self._by_hash.setdefault(image_hash, set()).add(node["id"])

    def _remove(self, node_id: str) -> None:
        node = self.nodes.pop(node_id)
        image_hash = node["properties"].get("hash")
        if isinstance(image_hash, str):
            self._by_hash.get(image_hash, set()).discard(node_id)

    def _create(self, index: int, spec: NodeSpec, applied: Applied) -> None:
        node_id = spec.id if spec.id is not None else self.server_node_id(index)
        if node_id in self.nodes:
            applied.results.append(
                _failure(index, f"node {node_id!r} exists", ErrorCode.DUPLICATE_NODE) | {"id": node_id}
            )
            return
        if len(self.nodes) >= self.limits.max_canvas_nodes:
            applied.results.append(
                _failure(index, f"canvas holds max_canvas_nodes={self.limits.max_canvas_nodes}",
                         ErrorCode.CANVAS_FULL) | {"id": node_id}
            )
            return
        node = spec.to_json()
        node["id"] = node_id
        self._put(node)
        applied.added.append(node)
        applied.undo.append((node_id, None))
        applied.results.append({"ok": True, "id": node_id})

    def server_node_id(self, index: int) -> str:
        """The id the server gives item ``index`` of the operation being applied when the client gave none:
        the version that operation makes and the item's place (unique, and the same on every replay)."""
        return f"v{self.version + 1}.{index}"

    def _attach(self, index: int, item: UploadItem, upload_exists: UploadExists, applied: Applied) -> None:
        if self.linking.checks_upload and not upload_exists(item.server_filename):
            applied.results.append(
                _failure(index, f"no stored upload {item.server_filename!r}", ErrorCode.UNKNOWN_UPLOAD)
                | {"hash": item.hash}
            )
            return
        carrying = sorted(self._by_hash.get(item.hash, ()))
        if not carrying:
            applied.results.append(
                _failure(index, f"no node carries hash {item.hash!r}", ErrorCode.UNKNOWN_HASH)
                | {"hash": item.hash}
            )
            return
        stays = self.linking.first_url_stays
        node_ids = [n for n in carrying if not (stays and self.nodes[n]["properties"].get("serverUrl"))]
        applied.accepted_unchanged |= not node_ids
        for node_id in node_ids:
            before = self.nodes[node_id]
            node = {**before, "properties": {**before["properties"],
                                            "serverUrl": item.server_url,
                                            "serverFilename": item.server_filename}}
            self.nodes[node_id] = node
            applied.updated.append(node)
            applied.undo.append((node_id, before))
        applied.results.append({"ok": True, "hash": item.hash, "nodes": node_ids})

    def apply(self, operation: Operation, upload_exists: UploadExists) -> Applied:
        """Apply every item that can be applied; bump the version once if anything changed."""
        applied = Applied(results=[])
        match operation:
            case NodeCreate(node):
                self._create(0, node, applied)
            case ImageUploadComplete(item):
                self._attach(0, item, upload_exists, applied)
            case BatchNodeCreate(nodes):
                for index, spec in enumerate(nodes):
                    if isinstance(spec, ProtocolError):
                        applied.results.append(_failure(index, spec))
                    else:
                        self._create(index, spec, applied)
            case BatchUploadComplete(items):
                for index, item in enumerate(items):
                    if isinstance(item, ProtocolError):
                        applied.results.append(_failure(index, item))
                    else:
                        self._attach(index, item, upload_exists, applied)
        if applied.changed:
            self.version += 1
        return applied

    def undo(self, applied: Applied) -> None:
        """Put back what ``apply`` changed (used when persisting it failed)."""
        for node_id, before in reversed(applied.undo):
            self._remove(node_id)
            if before is not None:
                self._put(before)
        if applied.changed:
            self.version -= 1
