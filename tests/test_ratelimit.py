"""The rate limiter's rules, by its own clock: ImageCanvas's (rate-limiter-flexible, 500 / 60 s, block 10 s)
as measured against the real app -- a window from the first request, a block that ends the window,
refusals that do not extend it, the next window from the first request after it."""

from __future__ import annotations

from bulkbench.effects import parse_retry_after
from bulkbench.profile import RateLimit
from bulkbench.ratelimit import RateLimiter

RULE = RateLimit(requests=3, window_s=60.0, block_s=10.0)


def answers(limiter: RateLimiter, times: list[float], client: str = "a") -> list[float | None]:
    return [limiter.check(client, t) for t in times]


def test_the_request_over_the_limit_is_refused_for_the_block() -> None:
    limiter = RateLimiter(RULE)
    assert answers(limiter, [0.0, 1.0, 2.0, 3.0]) == [None, None, None, 10.0]


def test_refusals_during_the_block_do_not_extend_it() -> None:
    limiter = RateLimiter(RULE)
    answers(limiter, [0.0, 0.0, 0.0, 5.0])  # blocked from 5 s until 15 s
    assert answers(limiter, [6.0, 10.0, 14.5]) == [9.0, 5.0, 0.5]
    assert limiter.check("a", 15.0) is None  # the block ended when it said it would


def test_the_window_after_a_block_starts_at_the_first_request_after_it() -> None:
    limiter = RateLimiter(RULE)
    answers(limiter, [0.0, 0.0, 0.0, 5.0])  # block 5..15
    assert answers(limiter, [40.0, 41.0, 42.0]) == [None, None, None]  # a new window opened at 40
    assert limiter.check("a", 99.0) == 10.0  # still that window (40 + 60 > 99): the 4th request in it
    assert limiter.check("a", 109.0) is None  # block over, a fresh window


def test_a_window_resets_after_window_s_without_a_block() -> None:
    limiter = RateLimiter(RULE)
    assert answers(limiter, [0.0, 1.0, 2.0, 60.0, 61.0, 62.0]) == [None] * 6


def test_clients_are_counted_apart() -> None:
    limiter = RateLimiter(RULE)
    answers(limiter, [0.0, 0.0, 0.0, 0.0], client="a")
    assert limiter.check("b", 0.0) is None


def test_the_client_table_is_bounded_by_forgetting_idle_clients() -> None:
    limiter = RateLimiter(RULE, max_clients=2)
    limiter.check("a", 0.0)
    limiter.check("b", 0.0)
    limiter.check("c", 100.0)  # over max_clients: a and b, idle past window + block, are forgotten
    assert set(limiter._windows) == {"c"}


def test_retry_after_is_read_in_both_of_its_forms() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0  # a date past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
