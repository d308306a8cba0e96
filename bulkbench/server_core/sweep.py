"""The server's sweep of uploads no canvas uses: when it runs, and what it deletes.

ImageCanvas runs its cleanup 30 min after it starts and every 6 h after (``index.js:2771-2786``, the
handler of ``POST /database/cleanup``, ``index.js:1655-1990``). It deletes every upload that no node of
any canvas names (``serverFilename``, or the file in ``serverUrl``), with its thumbnails. Nothing spares
an upload still waiting for its ``image_upload_complete``: the files named by the last 30 min of
operations are meant to be kept, but it reads them from the table it has just emptied (``index.js:1693``,
then 1730). An image uploaded before the sweep and linked after it keeps a node that points at a
deleted file, and is lost although every frame was acknowledged. Only drops still running at the sweep
meet it. When it runs is a profile's ``[file_sweep]`` (``bulkbench.profile.FileSweep``); what it deletes
is ``unused``, for the reference server and the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def files_named(node: dict[str, Any]) -> set[str]:
    """The stored files one node uses, as the app reads them: its ``serverFilename`` and the last part
    of its ``serverUrl``."""
    properties = node.get("properties") or {}
    names = set()
    if isinstance(properties.get("serverFilename"), str):
        names.add(properties["serverFilename"])
    url = properties.get("serverUrl")
    if isinstance(url, str) and url:
        names.add(url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1])
    return names


def unused(stored: Iterable[str], nodes: Iterable[dict[str, Any]]) -> set[str]:
    """The stored files that ``nodes`` (every canvas's) do not use: what a sweep deletes."""
    used: set[str] = set()
    for node in nodes:
        used |= files_named(node)
    return {name for name in stored if name not in used}
