"""Strategies driven by the SimPy driver against a tiny in-memory world (no network, no server)."""

from __future__ import annotations

import pytest
import simpy

from bulkbench.config import ConfigError
from bulkbench.limits import Limits
from bulkbench.strategies import Drop, start, strategy_params
from bulkbench.truth import judge
from bulkbench.workload import WorkloadSpec, draw_images
from sim.driver import SimClient
from tests.instant_world import InstantWorld


def drop_with(strategy: str, images: int = 20, world_kw: dict | None = None, params: dict | None = None,
              limits: Limits | None = None, seed: int = 0):
    env = simpy.Environment()
    world = InstantWorld(env, **(world_kw or {}))
    drop = Drop("c1", draw_images(WorkloadSpec(images=images, seed=3)), limits=limits or Limits(), seed=seed)
    client = SimClient(env, world, canvas_id="c1")
    client.run(start(strategy, drop, strategy_params(strategy, params)))
    env.run()
    records = judge(drop, world.canvas("c1").to_json(), world.stored.__contains__)
    return env, world, drop, client, records


def failures(records) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        if r.outcome == "failed":
            out[r.cause] = out.get(r.cause, 0) + 1
    return out


def test_individual_sends_one_node_create_and_one_upload_complete_per_image() -> None:
    env, world, drop, client, records = drop_with("individual", images=20)
    kinds = [kind for _, kind in world.ops_seen]
    assert kinds.count("node_create") == 20 and kinds.count("image_upload_complete") == 20
    assert all(r.outcome == "ok" for r in records)
    # single flight: ops, undo-state requests; 2 frames per image plus the undo requests
    assert client.ws_messages_sent == 40 + 40
    assert world.fetches == 20 * 19


def test_individual_is_single_flight_with_the_merge_window() -> None:
    env, world, drop, client, records = drop_with("individual", images=10, world_kw={"rtt_s": 0.05},
                                                  params={"thumbnail_gets_per_image": 0})
    # 20 operations, each at least merge window (0.1) + idle wait (0.05) + round trip (0.05), in turn
    assert env.now >= 20 * 0.2


def test_individual_orphans_the_tail_when_the_queue_is_slower_than_the_deadline() -> None:
    params = {"orphan_after_s": 3.0, "orphan_after_large_s": 3.0, "orphan_sweep_every_s": 1.0,
              "thumbnail_gets_per_image": 0}
    env, world, drop, client, records = drop_with("individual", images=40, world_kw={"rtt_s": 0.1}, params=params)
    lost = failures(records)
    assert set(lost) == {"orphaned"}
    assert 0 < lost["orphaned"] < 40
    ok_ids = {r.id for r in records if r.outcome == "ok"}
    assert ok_ids == {img.id for img in drop.images[: len(ok_ids)]}  # the queue's head survives, the tail dies


def test_individual_does_not_retry_a_refused_upload() -> None:
    images = draw_images(WorkloadSpec(images=5, seed=3))
    env, world, drop, client, records = drop_with(
        "individual", images=5, world_kw={"refuse_uploads": {images[2].id: [429]}})
    assert failures(records) == {"http_429": 1}


def test_individual_ack_timeout_is_not_retried() -> None:
    images = draw_images(WorkloadSpec(images=3, seed=3))
    env, world, drop, client, records = drop_with(
        "individual", images=3, world_kw={"lose_answers": {f"{images[1].id}-node"}},
        params={"orphan_after_s": 1000.0, "orphan_after_large_s": 1000.0})
    assert failures(records) == {}  # the node was applied: the server's truth is what counts
    assert drop.log.answers["timeout"] == 1


def test_batched_sends_few_messages_and_loses_nothing() -> None:
    env, world, drop, client, records = drop_with("batched", images=200)
    assert all(r.outcome == "ok" for r in records)
    # one batch of nodes and one of completions (200 fit the cap), then one deferred full sync
    assert [kind for _, kind in world.ops_seen] == ["batch_node_create", "batch_upload_complete"]
    assert client.ws_messages_sent == 2 + 1
    kinds = {kind for _, kind in world.ops_seen}
    assert kinds == {"batch_node_create", "batch_upload_complete"}


def test_batched_chunks_to_fit_the_message_cap() -> None:
    limits = Limits(max_message_bytes=20_000)
    env, world, drop, client, records = drop_with("batched", images=200, limits=limits)
    node_batches = [kind for _, kind in world.ops_seen if kind == "batch_node_create"]
    assert len(node_batches) > 1
    assert all(r.outcome == "ok" for r in records)


def test_batched_waits_out_429_and_succeeds() -> None:
    images = draw_images(WorkloadSpec(images=12, seed=3))
    env, world, drop, client, records = drop_with(
        "batched", images=12, world_kw={"refuse_uploads": {images[4].id: [429, 503]}})
    assert all(r.outcome == "ok" for r in records)
    assert client.http_requests - world.fetches == 12 + 2


def test_batched_resends_a_lost_batch_with_the_same_id_and_applies_it_once() -> None:
    env, world, drop, client, records = drop_with(
        "batched", images=10, world_kw={"lose_answers": {"client-n0"}},
        params={"ack_timeout_s": 1.0, "batch_retries": 1})
    # the answer to c1-n0 is always lost: two sends, then the client gives up on those nodes...
    assert [op for op, _ in world.ops_seen].count("client-n0") == 2
    # ...but the server applied the first send, and the upload completions still landed
    assert all(r.outcome == "ok" for r in records)


def test_chunked_runs_individual_operations_a_chunk_at_a_time() -> None:
    env, world, drop, client, records = drop_with("chunked", images=30, params={"chunk_size": 10})
    kinds = [kind for _, kind in world.ops_seen]
    assert kinds.count("node_create") == 30
    first_complete = kinds.index("image_upload_complete")
    assert kinds[:first_complete].count("node_create") <= 10  # chunk 2 has not started yet
    assert all(r.outcome == "ok" for r in records)


def test_same_seed_same_drop() -> None:
    a = drop_with("individual", images=15)[0].now
    b = drop_with("individual", images=15)[0].now
    assert a == b


def test_unknown_strategy_parameter_is_an_error() -> None:
    import pytest

    from bulkbench.profile import ProfileError
    with pytest.raises(ProfileError, match="wave_sise"):
        strategy_params("batched", {"wave_sise": 3})




PAGE = {"thumbnail_gets_per_image": 0}
"""The page client's mechanisms one at a time, without thumbnails in the way."""


def test_a_refused_upload_is_tried_again_after_its_pause_until_it_goes_through() -> None:
    params = {**PAGE, "upload_retry_pause_s": 2.0, "upload_attempts": 100}
    env, world, drop, client, records = drop_with("individual", images=5, params=params,
                                                  world_kw={"refuse_uploads": {"u0-img00002": [429, 429, 429]}})
    assert all(r.outcome == "ok" for r in records)
    assert client.upload_attempts == 5 + 3
    track = drop.log.tracks["u0-img00002"]
    assert track.upload_done_at - track.upload_started_at >= 3 * 2.0  # three pauses of 2 s, by the clock


def test_tries_are_bounded_and_a_drop_always_ends() -> None:
    params = {**PAGE, "upload_retry_pause_s": 0.5, "upload_attempts": 3}
    env, world, drop, client, records = drop_with("individual", images=4, params=params,
                                                  world_kw={"refuse_uploads": {"u0-img00001": [429] * 10}})
    assert failures(records) == {"http_429": 1} and client.upload_attempts == 3 + 3


def test_one_failure_closes_upload_slots_for_good() -> None:
    params = {**PAGE, "upload_concurrency": 4, "upload_concurrency_after_failure": 1, "upload_retry_pause_s": 0.1,
              "upload_attempts": 5}
    env, world, drop, client, records = drop_with("individual", images=12, params=params,
                                                  world_kw={"refuse_uploads": {"u0-img00000": [429]},
                                                            "upload_s": 1.0})
    assert all(r.outcome == "ok" for r in records)
    # after the first failure one upload at a time: the later uploads end at least a second apart
    ends = sorted(t.upload_done_at for t in drop.log.tracks.values())
    assert all(b - a >= 1.0 - 1e-9 for a, b in zip(ends[5:], ends[6:], strict=False))


def test_the_second_upload_stage_shares_an_upload_under_way_and_repeats_a_finished_one() -> None:
    """fc1316b: every image is completed twice; an upload still under way when the second stage looks is
    shared (one POST), a finished one is posted again (a second stored copy)."""
    params = {**PAGE, "second_upload": True, "upload_concurrency": 1, "reread_s_per_mb": 1.0}  # stage at ~2.5 s
    env, world, drop, client, records = drop_with("individual", images=6, params=params,
                                                  world_kw={"upload_s": 1.0})
    kinds = [kind for _, kind in world.ops_seen]
    assert kinds.count("node_create") == 6 and kinds.count("image_upload_complete") == 12
    assert all(r.outcome == "ok" for r in records)
    assert 6 < client.upload_attempts < 12  # some shared, some posted again


def test_files_laid_out_before_their_previews_exist_get_no_node_but_are_uploaded_and_completed_once() -> None:
    """fc1316b on a page without an idle moment for ``layout_unready_s`` before its layout: the last files'
    previews are not encoded, so they get no node; its own upload stage still uploads them, and completes
    them once (the page's frames: node_create per node laid out, completions = nodes + files)."""
    params = {**PAGE, "second_upload": True, "page_preview_s_per_image": 0.1, "layout_unready_s": 0.25}
    env, world, drop, client, records = drop_with("individual", images=8, params=params)
    kinds = [kind for _, kind in world.ops_seen]
    assert kinds.count("node_create") == 6 and kinds.count("image_upload_complete") == 6 + 8
    lost = [r for r in records if r.outcome == "failed"]
    assert [r.id for r in lost] == [image.id for image in drop.images[-2:]]
    assert {r.cause for r in lost} == {"never_sent"} and client.upload_attempts >= 8
    whole = drop_with("individual", images=8, params={**params, "layout_unready_s": 0.0})[4]
    assert all(r.outcome == "ok" for r in whole)
    # the page reads again only the files it has a node for: the stage starts after six reads, not eight
    slow = drop_with("individual", images=8, params={**params, "reread_s_per_file": 10.0})[2]
    started = [slow.track(image).upload_started_at for image in slow.images[-2:]]
    assert all(60.0 <= t < 70.0 for t in started), started


def test_the_layout_race_is_drawn_per_drop_from_its_seed() -> None:
    """Several ``layout_unready_s`` times (the page's, run by run): each drop draws one, the same for the
    same seed, and across seeds each of them, so the engines' runs spread as the page's did."""
    params = {**PAGE, "second_upload": True, "page_preview_s_per_image": 0.1, "layout_unready_s": [0.0, 0.1, 0.35]}

    def lost(seed: int) -> int:
        return sum(r.outcome == "failed" for r in drop_with("individual", images=8, params=params, seed=seed)[4])

    by_seed = {seed: lost(seed) for seed in range(12)}
    assert set(by_seed.values()) == {0, 1, 3}
    assert all(lost(seed) == n for seed, n in list(by_seed.items())[:3])
    with pytest.raises(ValueError, match="which drop's chance"):
        strategy_params("individual:fc1316b", {"layout_unready_s": [0.0, 0.1]}).unplaced(8)


@pytest.mark.parametrize("unready_s", [-0.1, 1.01, [0.2, 1.01], [], "0.2"])
def test_a_layout_unready_longer_than_chromiums_toblob_timeout_is_refused(unready_s: object) -> None:
    with pytest.raises(ConfigError, match="layout_unready_s"):
        strategy_params("individual:fc1316b", {"layout_unready_s": unready_s})


def test_the_page_sends_nothing_before_its_previews_are_made() -> None:
    params = {**PAGE, "page_preview_s_per_image": 0.5}
    env, world, drop, client, records = drop_with("individual", images=4, params=params)
    assert min(t.node_sent_at for t in drop.log.tracks.values()) >= 4 * 0.5
    assert all(r.outcome == "ok" for r in records)


def test_a_busy_page_makes_every_operation_wait_for_a_frame_before_its_send_and_after_its_answer() -> None:
    frame = 0.4
    params = {**PAGE, "page_frame_s": frame, "merge_window_s": 0.0, "idle_wait_s": 0.0}
    env, world, drop, client, records = drop_with("individual", images=4, params=params)
    sent = sorted(t.node_sent_at for t in drop.log.tracks.values())
    assert all(b - a >= 2 * frame - 1e-9 for a, b in zip(sent, sent[1:], strict=False))
    quiet = drop_with("individual", images=4, params={**PAGE, "merge_window_s": 0.0, "idle_wait_s": 0.0})[2]
    assert all(t.node_sent_at < frame for t in quiet.log.tracks.values())


def test_the_frame_grows_with_the_images_uploaded_only_while_hashing_runs() -> None:
    """While files are still being hashed every step waits 0.5 s per image uploaded; the operations sent
    once the last hash is in wait for nothing."""
    params = {**PAGE, "page_s_per_uploaded_image": 0.5, "hash_parallel": 1, "hash_gap_s": 1.0,
              "merge_window_s": 0.0, "idle_wait_s": 0.0}
    env, world, drop, client, records = drop_with("individual", images=6, params=params)
    tracks = list(drop.log.tracks.values())
    last_node = max(t.node_sent_at for t in tracks)
    late = sorted(t.complete_sent_at for t in tracks if t.complete_sent_at > last_node + 1e-9)
    assert len(late) >= 2 and late[-1] - late[0] < 0.1  # back to back: no frame to wait for
    quiet = drop_with("individual", images=6, params={**params, "page_s_per_uploaded_image": 0.0})[2]
    quiet_last_node = max(t.node_sent_at for t in quiet.log.tracks.values())
    assert last_node - quiet_last_node >= 0.5  # hashing itself waited for frames of uploaded images
    assert all(r.outcome == "ok" for r in records)


def test_short_steps_of_the_page_do_not_wait_for_each_other_but_wait_for_its_long_work() -> None:
    """Four upload slots start together after the coordinator's tick (each waits its own frames, not the
    others'); the second reads are long work, one after another, each after a frame, so the drop lasts
    at least as long as all of them."""
    frame = 0.05
    params = {**PAGE, "page_frame_s": frame, "upload_tick_s": 1.0, "upload_concurrency": 4,
              "second_upload": True, "reread_s_per_mb": 1.0}
    env, world, drop, client, records = drop_with("individual", images=4, params=params)
    starts = sorted(t.upload_started_at for t in drop.log.tracks.values())
    assert starts[-1] - starts[0] < 1e-9
    reread_s = sum(1.0 * image.size_bytes / 1e6 + frame for image in drop.images)
    assert client.upload_attempts == 8  # the second stage found every first upload finished
    assert all(r.outcome == "ok" for r in records)
    assert env.now >= reread_s


def test_a_serial_page_runs_its_steps_one_at_a_time_so_its_upload_slots_start_a_frame_apart() -> None:
    """The same four slots on a page whose thread is busy all the time: each step holds the thread for its
    frame, in the order posted, so the slots' requests leave one frame apart, not together."""
    frame = 0.05
    params = {**PAGE, "page_frame_s": frame, "upload_tick_s": 1.0, "upload_concurrency": 4,
              "page_tasks_per_upload": 1, "page_thread_serial": True}
    env, world, drop, client, records = drop_with("individual", images=4, params=params)
    starts = sorted(t.upload_started_at for t in drop.log.tracks.values())
    assert all(b - a >= frame - 1e-9 for a, b in zip(starts, starts[1:], strict=False))
    together = drop_with("individual", images=4, params={**params, "page_thread_serial": False})[2]
    assert max(t.upload_started_at for t in together.log.tracks.values()) \
        - min(t.upload_started_at for t in together.log.tracks.values()) < 1e-9
    assert all(r.outcome == "ok" for r in records)


def test_the_frame_grows_with_time_from_its_start() -> None:
    """``page_frame_s_per_s``: the page's tasks grow longer with every second of the drop past
    ``page_frame_growth_from_s`` (fc1316b's mean long task on a slow machine), however many images it uploaded."""
    params = {**PAGE, "page_frame_s": 0.01, "merge_window_s": 0.0, "idle_wait_s": 0.0, "hash_parallel": 1,
              "hash_gap_s": 2.0}
    def gaps(extra: dict) -> list[float]:
        sent = sorted(t.node_sent_at for t in drop_with("individual", images=6, params={**params, **extra})[2]
                      .log.tracks.values())
        return [b - a for a, b in zip(sent, sent[1:], strict=False)]
    flat, growing = gaps({}), gaps({"page_frame_s_per_s": 0.5, "page_frame_growth_from_s": 4.0})
    assert max(flat) - min(flat) < 1e-6  # the hashes' pace, nothing else
    assert growing[0] == pytest.approx(flat[0], abs=1e-6) and max(growing) > max(flat) + 1.0  # slower past 4 s


def test_without_the_orphan_sweep_a_slow_queue_loses_nothing() -> None:
    params = {**PAGE, "orphan_sweep": False, "orphan_after_s": 3.0, "orphan_after_large_s": 3.0}
    env, world, drop, client, records = drop_with("individual", images=40, world_kw={"rtt_s": 0.1}, params=params)
    assert failures(records) == {}


def test_a_named_parameter_set_sits_on_top_of_its_strategy() -> None:
    base, page = strategy_params("individual"), strategy_params("individual:fc1316b")
    assert base.orphan_sweep and base.upload_attempts == 1
    assert not page.orphan_sweep and page.upload_attempts > 1 and page.hash_parallel == base.hash_parallel


def test_the_page_asks_for_every_thumbnail_size_with_a_post_before_each_get() -> None:
    params = {"page_thumbnail_sizes": [64, 256, 2048]}
    env, world, drop, client, records = drop_with("individual", images=4, params=params)
    assert world.posts == 4 * 3 and world.fetches == 4 * 3  # every GET answered 200 here: no retries


def test_batched_waits_exactly_the_retry_after_it_is_told() -> None:
    """A Retry-After unlike any default (3.7 s; the client's own backoff starts at 1 s): the retry comes
    when the server said, not when the client would have tried on its own."""
    env, world, drop, client, records = drop_with(
        "batched", images=3, params={"thumbnail_gets_per_image": 0},
        world_kw={"refuse_uploads": {"u0-img00001": [429]}, "retry_after_s": 3.7, "upload_s": 0.2})
    first, second = world.attempts["u0-img00001"]
    assert second - first == pytest.approx(0.2 + 3.7, abs=1e-9)
    assert all(r.outcome == "ok" for r in records)
