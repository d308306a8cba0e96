"""Profiles load from TOML, extend each other, and refuse what they do not know."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from bulkbench.profile import ProfileError, load_profile
from reference_server.uploads import make_thumbnails
from tests.helpers import image_bytes


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


def test_an_unknown_thumbnail_decode_is_an_error_that_names_the_choices(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\nthumbnail_decode = "gpu"\n')
    with pytest.raises(ProfileError, match="per_size"):
        load_profile(path)


@pytest.mark.parametrize("decode", ["per_size", "once", "chained"])
def test_every_thumbnail_decode_makes_the_same_sizes_never_enlarged(tmp_path: Path, decode: str) -> None:
    source = tmp_path / "photo.png"
    source.write_bytes(image_bytes("PNG", size=(1200, 800), seed=3))
    sizes = (64, 256, 1024, 2048)
    assert make_thumbnails(source, "photo.png", sizes, tmp_path, quality=85, decode=decode) == len(sizes)
    for size in sizes:
        with Image.open(tmp_path / str(size) / "photo.webp") as thumb:
            assert thumb.format == "WEBP"
            assert thumb.size == ((size, round(size * 800 / 1200)) if size < 1200 else (1200, 800))
