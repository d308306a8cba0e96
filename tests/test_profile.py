"""Profiles load from TOML, extend each other, and refuse what they do not know."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulkbench.profile import ProfileError, load_profile


def test_shipped_profiles_load_with_the_reference_values() -> None:
    legacy = load_profile("legacy")
    assert legacy.persistence == "full_rewrite" and legacy.thumbnails == "sync"
    assert legacy.limits.max_message_bytes == 100 * 1024
    assert legacy.stage("ops").workers == 1 and legacy.stage("thumbnail").workers == 4
    assert legacy.rate_limit is None and not legacy.dedup_by_hash
    optimized = load_profile("optimized")
    assert optimized.persistence == "delta" and optimized.admission_control and optimized.dedup_by_hash


def test_legacy_ratelimit_is_legacy_plus_one_table() -> None:
    limited = load_profile("legacy-ratelimit")
    assert limited.name == "legacy-ratelimit"
    assert limited.rate_limit is not None
    assert (limited.rate_limit.requests, limited.rate_limit.window_s, limited.rate_limit.block_s) == (500, 60, 10)
    assert limited.stages == load_profile("legacy").stages


def test_unknown_keys_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\n[stages.ops]\nworkerz = 2\n')
    with pytest.raises(ProfileError, match="workerz"):
        load_profile(path)


def test_unknown_stage_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\n[stages.gpu]\nworkers = 2\n')
    with pytest.raises(ProfileError, match="gpu"):
        load_profile(path)


def test_unknown_profile_name_lists_the_known_ones() -> None:
    with pytest.raises(ProfileError, match="legacy"):
        load_profile("no-such-profile")
