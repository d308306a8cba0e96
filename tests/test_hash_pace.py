"""The hash-pace reading (``reports.pace``; ``benchmarks.validation.hash_pace`` prints it) on the model's own
drops: the stand-in's frame feedback must show in it, and vanish without it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from reports.data import read_images
from reports.pace import STEP, pace
from sim.run import SimOptions, run_sim


def drop_pace(out: Path, feedback: float) -> list[tuple[int, float, int]]:
    run_sim(SimOptions(strategy="individual:fc1316b", images=120, profile="legacy", seed=3, uplink_mbit=20.0,
                       strategy_overrides=(("page_s_per_uploaded_image", feedback),), out=out))
    return pace(read_images(out))


def test_the_pace_slows_with_the_images_uploaded_only_under_the_feedback(tmp_path: Path) -> None:
    fed, free = drop_pace(tmp_path / "fed", 0.025), drop_pace(tmp_path / "free", 0.0)
    assert [nodes for nodes, _, _ in fed] == list(range(STEP, 120, STEP))
    assert all(later >= earlier for (_, _, earlier), (_, _, later) in zip(fed, fed[1:], strict=False))
    assert fed[-1][1] > 5 * fed[0][1] and fed[-1][2] > fed[0][2]  # slower as uploads came back
    assert max(seconds for _, seconds, _ in free) < fed[-1][1] / 5


def test_it_refuses_a_folder_without_images(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.validation.hash_pace", str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "images.jsonl" in done.stderr
