"""The viewport's thumbnail GETs as one loader that the server can pause (``pipelined``).

The plan's client asks for each node's thumbnails on its own (``spawn_thumbnails``): nothing holds
the next GET back when the server says "not now". On 10,000 images (``optimized``, whose thumbnails
are made after the answer) that was 145,477 GETs, 85,728 of them answered 503 "not made yet", for
five minutes after the last image had settled. Here one loader owns them all:

- at most ``loaders`` images' GETs at a time (the browser's connections per host);
- a refusal (429, or 503 for a thumbnail still owed) pauses **every** GET until its Retry-After
  has passed (a doubling back-off when it names none), and that image's GETs stop at the refusal;
- a refused thumbnail is asked again after the pause, at the back of the line, at most
  ``attempts`` times; a 404 (never to be made) is not asked again;
- with ``cache``, the page keeps what it got: the viewport's many asks for one image come to one GET
  per size (19 asks of 2 sizes: 2 GETs). Without it, a per-address limit of 500 requests a minute
  would take 46 minutes to answer 1,200 images' 22,800 asks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from bulkbench.effects import BROWSER_CONNECTIONS_PER_HOST, NOW, Fetch, Sleep, Spawn
from bulkbench.strategies.common import viewport_paths


@dataclass(slots=True)
class ViewportLoader:
    gets_per_image: int
    backoff_s: Callable[[int], float]
    """The pause after the n-th back-off in a row (0 for the first): refusals with no Retry-After."""
    loaders: int = BROWSER_CONNECTIONS_PER_HOST
    attempts: int = 8
    """Times one thumbnail is asked for before the loader gives up on it."""
    cache: bool = True
    """Ask each size once: the viewport's repeated asks are answered from the page's own copy."""
    waiting: deque[tuple[str, ...]] = field(default_factory=deque)
    running: int = 0
    paused_since: float = 0.0
    paused_until: float = 0.0
    backoffs: int = 0
    """Back-offs in a row: a refusal of a GET sent after the last pause began counts, not those the
    pause found under way (six loaders meeting one block back off once, not six times)."""
    tries: dict[str, int] = field(default_factory=dict)

    def add(self, server_filename: str) -> Generator[Any, Any, None]:
        """Queue one image's GETs; start a loader if fewer than ``loaders`` run."""
        if self.gets_per_image <= 0:
            return
        paths = viewport_paths(server_filename, self.gets_per_image)
        self.waiting.append(tuple(dict.fromkeys(paths)) if self.cache else paths)
        if self.running < self.loaders:
            self.running += 1
            yield Spawn(self._load(), "viewport")

    def _load(self) -> Generator[Any, Any, None]:
        try:
            while self.waiting:
                now = yield NOW
                if now < self.paused_until:
                    yield Sleep(self.paused_until - now)
                    continue
                paths = self.waiting.popleft()
                results = yield Fetch(paths, until_refused=True)
                refused = results[-1] if results and results[-1].refused else None
                if refused is None:
                    self.backoffs = 0
                    continue
                self._pause(now, (yield NOW), refused.retry_after_s)
                self._again(paths[len(results) - 1:])
        finally:
            self.running -= 1

    def _pause(self, asked_at: float, now: float, retry_after_s: float | None) -> None:
        """Every GET waits until the server's Retry-After has passed, or a doubling back-off without one."""
        if retry_after_s is not None:
            pause = retry_after_s
        else:
            if asked_at >= self.paused_since or not self.backoffs:
                self.backoffs += 1
            pause = self.backoff_s(self.backoffs - 1)
        if now + pause > self.paused_until:
            self.paused_since, self.paused_until = now, now + pause

    def _again(self, paths: tuple[str, ...]) -> None:
        """The refused GET and those not asked yet, at the back of the line; each thumbnail counted once
        per refusal (the viewport asks for the same few sizes many times)."""
        refused = paths[0]
        self.tries[refused] = self.tries.get(refused, 0) + 1
        if self.tries[refused] < self.attempts:
            self.waiting.append(paths)
        elif rest := tuple(path for path in paths if path != refused):
            self.waiting.append(rest)
