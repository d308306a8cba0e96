"""``pipelined`` through the model's driver against the tiny in-memory world: its window, its pauses,
its progressive completions, its resends."""

from __future__ import annotations

import pytest

from bulkbench.workload import WorkloadSpec, draw_images
from sim.run import SimOptions, run_sim
from tests.test_strategies import drop_with

UPLOAD_S = 0.2


def concurrency_at(attempts: dict[str, list[float]], at: float) -> int:
    """Uploads under way at ``at`` in the instant world (each takes UPLOAD_S once it has a connection)."""
    return sum(1 for starts in attempts.values() for s in starts if s <= at < s + UPLOAD_S)


def test_a_small_window_grows_to_the_browsers_connections_while_goodput_grows() -> None:
    env, world, drop, client, records = drop_with("pipelined", images=80,
                                                  params={"thumbnail_gets_per_image": 0, "window_initial": 2},
                                                  world_kw={"upload_s": UPLOAD_S, "hash_s": 0.001})
    assert all(r.outcome == "ok" for r in records)
    starts = sorted(s for starts in world.attempts.values() for s in starts)
    early = [concurrency_at(world.attempts, s) for s in starts[:2]]
    late = max(concurrency_at(world.attempts, s) for s in starts)
    assert max(early) <= 2  # window_initial
    assert late == 6  # grew while each round ran faster, up to window_max


def test_a_429_halves_the_window_and_every_upload_waits_its_retry_after() -> None:
    images = draw_images(WorkloadSpec(images=40, seed=3))
    refused = images[20].id
    env, world, drop, client, records = drop_with(
        "pipelined", images=40, params={"thumbnail_gets_per_image": 0},
        world_kw={"refuse_uploads": {refused: [429]}, "retry_after_s": 3.7, "upload_s": UPLOAD_S, "hash_s": 0.001})
    assert all(r.outcome == "ok" for r in records)
    first, second = world.attempts[refused]
    refusal = first + UPLOAD_S
    assert second == pytest.approx(refusal + 3.7, abs=1e-6)  # told 3.7 s: waited exactly that
    started = [s for starts in world.attempts.values() for s in starts]
    assert not [s for s in started if refusal < s < refusal + 3.7 - 1e-9]  # nothing started meanwhile
    before = concurrency_at(world.attempts, refusal - 1e-6)
    assert concurrency_at(world.attempts, refusal + 3.7 + 1e-6) <= max(1, before // 2)  # halved (then regrows)


def test_completions_are_flushed_as_they_come_so_images_settle_during_the_drop() -> None:
    env, world, drop, client, records = drop_with(
        "pipelined", images=100, params={"thumbnail_gets_per_image": 0, "flush_items": 10},
        world_kw={"upload_s": UPLOAD_S, "hash_s": 0.001})
    assert all(r.outcome == "ok" for r in records)
    kinds = [kind for _, kind in world.ops_seen]
    assert kinds.count("batch_upload_complete") >= 100 // 10
    assert "image_upload_complete" not in kinds and "node_create" not in kinds
    settled = sorted(t.settled_at for t in drop.log.tracks.values())
    assert settled[len(settled) // 2] < 0.75 * settled[-1]  # half settled well before the end
    assert settled[0] < 0.25 * settled[-1]


def test_a_lost_answer_is_resent_with_its_id_and_a_reset_upload_is_tried_again() -> None:
    images = draw_images(WorkloadSpec(images=30, seed=3))
    env, world, drop, client, records = drop_with(
        "pipelined", images=30, params={"thumbnail_gets_per_image": 0, "ack_timeout_s": 1.0, "batch_retries": 1},
        world_kw={"lose_answers": {"client-u00"}, "refuse_uploads": {images[3].id: [0, 0]}})
    assert [op for op, _ in world.ops_seen].count("client-u00") == 2  # resent once, with the same id
    assert len(world.attempts[images[3].id]) == 3  # reset twice (the server restarting), then stored
    assert all(r.outcome == "ok" for r in records)  # the server applied the first send of client-u0


@pytest.mark.parametrize("after_uploads", [True, False])
def test_thumbnails_wait_for_the_last_upload(after_uploads: bool) -> None:
    env, world, drop, client, records = drop_with("pipelined", images=30, world_kw={"upload_s": UPLOAD_S},
                                                  params={"thumbnails_after_uploads": after_uploads})
    assert world.fetches == 30 * 2  # 19 asks of 2 sizes: the page keeps what it got
    last_upload = max(s for starts in world.attempts.values() for s in starts) + UPLOAD_S
    assert min(t.settled_at for t in drop.log.tracks.values()) < last_upload  # settled early ...
    assert (min(world.fetched_at) >= last_upload) is after_uploads  # ... fetched after the last upload


@pytest.mark.parametrize("uplink", [10.0, 100.0])
def test_in_the_model_it_runs_at_its_bound_and_settles_half_its_images_by_mid_drop(uplink: float) -> None:
    pipelined = run_sim(SimOptions(strategy="pipelined", images=120, uplink_mbit=uplink, seed=4))
    batched = run_sim(SimOptions(strategy="batched", images=120, uplink_mbit=uplink, seed=4))
    assert pipelined.images_failed == 0
    assert pipelined.drop_over_bound <= 1.05 < batched.drop_over_bound
    assert pipelined.settled_p50_s <= 0.6 * pipelined.drop_seconds
    assert batched.settled_p50_s >= 0.95 * batched.drop_seconds


@pytest.mark.parametrize("retry_after", [2.5, None])
def test_a_refused_thumbnail_pauses_every_get_and_is_asked_again(retry_after: float | None) -> None:
    """The viewport's GETs as one loader: a 503 (not made yet) stops that image's GETs, no GET is sent
    until its Retry-After (or the back-off) has passed, then the refused one is asked again."""
    env, world, drop, client, records = drop_with(
        "pipelined", images=12, params={"thumbnail_gets_per_image": 3, "thumbnail_cache": False},
        world_kw={"upload_s": UPLOAD_S, "refuse_gets": [503], "get_retry_after_s": retry_after})
    assert all(r.outcome == "ok" for r in records)
    refused_at, refused_path = world.gets[0]
    pause = retry_after if retry_after is not None else 1.0  # retry_base_s: the first back-off
    during = [at for at, _ in world.gets if refused_at < at < refused_at + pause - 1e-9]
    # only the GETs of the images already under way on the other 5 connections end meanwhile (their
    # last asks); unpaced, all 37 would be over within 0.05 s
    assert len(during) <= 5 * 2
    stem = refused_path.rsplit("/", 1)[1]
    asked = [(at >= refused_at + pause - 1e-9, path.split("/")[2]) for at, path in world.gets if path.endswith(stem)]
    # refused at its first GET, its GETs stopped there; after the pause, all three from the refused one
    assert asked == [(False, "64"), (True, "64"), (True, "256"), (True, "64")]
    assert world.fetches == 12 * 3 + 1  # every GET once, the refused one twice


@pytest.mark.parametrize("cache", [True, False])
def test_the_page_keeps_the_thumbnails_it_got(cache: bool) -> None:
    env, world, drop, client, records = drop_with(
        "pipelined", images=10, params={"thumbnail_gets_per_image": 19, "thumbnail_cache": cache},
        world_kw={"upload_s": UPLOAD_S})
    assert all(r.outcome == "ok" for r in records)
    assert world.fetches == 10 * (2 if cache else 19)  # 19 asks of the 2 sizes
    assert len({path for _, path in world.gets}) == 10 * 2


def test_a_thumbnail_refused_every_time_is_given_up_after_its_attempts() -> None:
    env, world, drop, client, records = drop_with(
        "pipelined", images=1, params={"thumbnail_gets_per_image": 2, "thumbnail_attempts": 3},
        world_kw={"upload_s": UPLOAD_S, "refuse_gets": [503] * 3, "get_retry_after_s": 0.5})
    assert all(r.outcome == "ok" for r in records)
    paths = [path for _, path in world.gets]
    assert paths.count(paths[0]) == 3 and len(paths) == 4  # three refusals, then the other size once


def test_refusals_the_pause_found_under_way_do_not_lengthen_the_back_off() -> None:
    """Six loaders meet one limiter block (429, no Retry-After) at once: that is one refusal to back off
    from (1 s), not six in a row (which would have doubled to the 8 s cap)."""
    env, world, drop, client, records = drop_with(
        "pipelined", images=6, params={"thumbnail_gets_per_image": 2},
        world_kw={"upload_s": UPLOAD_S, "refuse_gets": [429] * 6})
    assert all(r.outcome == "ok" for r in records)
    refused_at = [at for at, _ in world.gets[:6]]
    assert max(refused_at) - min(refused_at) < 1e-9  # all six at once
    resumed = min(at for at, _ in world.gets[6:])
    assert resumed - refused_at[0] == pytest.approx(1.0 + 0.005)  # retry_base_s, then the GET's own 5 ms
