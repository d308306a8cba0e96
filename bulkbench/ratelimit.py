"""The per-client HTTP rate limit the reference shipped after the report: N requests per window,
then blocked for a while, answered 429. The clock is handed in (testable, no I/O).

Its rules are ImageCanvas's (rate-limiter-flexible's ``RateLimiterMemory``, points 500, duration 60 s,
blockDuration 10 s), measured against the real app: a window starts at a client's first request; the
request over the limit blocks the client for ``block_s``, which replaces the rest of the window;
requests refused during the block do not extend it; the first request after it starts a new window.

A client is its ``X-Client-Id`` header when it sends one (load tests give each simulated browser its
own, as each real browser has its own IP), else its IP address.
"""

from __future__ import annotations

from dataclasses import dataclass

from bulkbench.profile import RateLimit


@dataclass(slots=True)
class _Window:
    started: float
    count: int = 0
    blocked_until: float = 0.0


class RateLimiter:
    def __init__(self, rule: RateLimit, max_clients: int = 100_000) -> None:
        self.rule = rule
        self.max_clients = max_clients
        self._windows: dict[str, _Window] = {}

    def check(self, client: str, now: float) -> float | None:
        """Count one request; return None to let it through, or the seconds to wait (Retry-After)."""
        window = self._windows.get(client)
        if window is None:
            if len(self._windows) >= self.max_clients:
                self._forget_idle(now)
            window = self._windows[client] = _Window(now)
        if now < window.blocked_until:
            return window.blocked_until - now
        if now - window.started >= self.rule.window_s:
            window.started, window.count = now, 0
        window.count += 1
        if window.count > self.rule.requests:
            window.blocked_until = now + self.rule.block_s
            # the block ends the window: the first request after it opens the next one
            window.started, window.count = window.blocked_until - self.rule.window_s, 0
            return self.rule.block_s
        return None

    def _forget_idle(self, now: float) -> None:
        horizon = self.rule.window_s + self.rule.block_s
        for key in [k for k, w in self._windows.items() if now - w.started > horizon]:
            del self._windows[key]
