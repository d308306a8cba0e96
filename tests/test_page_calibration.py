"""A client stand-in's page costs on the machine at hand (``bulkbench calibrate --page``), and the
strategies layer that carries them into every engine."""

from __future__ import annotations

import statistics
from pathlib import Path

import orjson
import pytest

from bulkbench.cli import build_parser
from bulkbench.config import ConfigError
from bulkbench.page_calibration import busy_s_per_node, calibrate_page, nodes_laid_out
from bulkbench.strategies import strategy_params
from bulkbench.strategies.individual import PAGE_CPU_PARAMS
from sim.run import SimOptions, run_sim

ROOT = Path(__file__).resolve().parent.parent
VALIDATION = ROOT / "examples" / "validation"


def _browser_runs(folder: Path) -> list[dict]:
    entries = [orjson.loads(line) for line in (folder / "matrix.jsonl").read_text().splitlines()]
    return [e["summary"] for e in entries if e["summary"]["engine"] == "browser"]


def test_the_page_is_timed_per_node_it_laid_out() -> None:
    """A page that laid out 40 of 50 nodes did the work of 40: its busy time is shared among those."""
    runs = _browser_runs(VALIDATION / "browser-spread")
    short = next(r for r in runs if nodes_laid_out(r) < r["images"])
    assert busy_s_per_node(short) == pytest.approx(short["extra"]["long_task_ms"] / 1000 / nodes_laid_out(short))
    older = {**short, "extra": {**short["extra"], "claimed": []}}  # a page that says nothing: every image
    assert nodes_laid_out(older) == 50 and busy_s_per_node(older) < busy_s_per_node(short)


def test_page_costs_scale_by_the_median_busy_time_per_node_on_drops_of_the_same_size() -> None:
    here, fitted = VALIDATION / "browser-spread", VALIDATION / "browser"
    calibration = calibrate_page([here], [fitted])
    expected_here = [busy_s_per_node(r) for r in _browser_runs(here)]
    expected_fitted = [busy_s_per_node(r) for r in _browser_runs(fitted) if r["images"] == 50]  # 200s: capped
    assert calibration.here_s_per_node == expected_here and calibration.fitted_s_per_node == expected_fitted
    assert calibration.speed == pytest.approx(statistics.median(expected_here) / statistics.median(expected_fitted))
    assert 0.7 < calibration.speed < 0.95  # this machine's page is faster than the first one's
    # sizes are compared each with its own: the first machine's repeats (50 and 200 images) against itself
    again = calibrate_page([VALIDATION / "browser-repeat"], [fitted])
    assert 0.85 < again.speed < 1.0 and len(again.here_s_per_node) == 5  # the 200-image run cut at 15 min: out
    shipped = strategy_params("individual:fc1316b")
    costs = {name: value for name, value in calibration.scaled.items() if name != "layout_unready_s"}
    assert set(costs) == {n for n in PAGE_CPU_PARAMS if getattr(shipped, n)}
    for name, value in costs.items():
        assert value == pytest.approx(getattr(shipped, name) * calibration.speed, rel=1e-3)


def test_the_layout_race_is_read_off_the_pages_own_count() -> None:
    """The page says how many previews it had at its layout; the median missing, at this machine's preview
    time per file, is how long it went without an idle moment, and the stand-in then lays out as many."""
    calibration = calibrate_page([VALIDATION / "browser-spread"], [VALIDATION / "browser"])
    said = [r["images"] - nodes_laid_out(r) for r in _browser_runs(VALIDATION / "browser-spread")]
    assert calibration.unplaced == said and max(said) > 0
    preview_s = calibration.scaled["page_preview_s_per_image"]
    assert calibration.scaled["layout_unready_s"] == pytest.approx(statistics.median(said) * preview_s, rel=1e-3)
    stand_in = strategy_params("individual:fc1316b", calibration.scaled)
    assert stand_in.unplaced(50) == int(statistics.median(said))
    first = calibrate_page([VALIDATION / "browser-repeat"], [VALIDATION / "browser"])  # the fitted machine
    assert first.unplaced == [0, 0, 0, 0, 24] and first.scaled["layout_unready_s"] == 0.0


def test_the_recorded_layer_is_what_calibrate_makes_of_the_recorded_runs(tmp_path) -> None:
    """``examples/validation/browser-spread/strategies.toml`` is not hand-edited: the command in its
    header makes it again from the recordings."""
    recorded = VALIDATION / "browser-spread" / "strategies.toml"
    args = build_parser().parse_args(["calibrate", "--page", str(VALIDATION / "browser-spread"), "--fitted-on",
                                      str(VALIDATION / "browser"), "--out", str(tmp_path / "layer.toml")])
    assert args.func(args) == 0
    strip = lambda text: [line for line in text.splitlines() if not line.startswith("#")]  # noqa: E731
    assert strip((tmp_path / "layer.toml").read_text()) == strip(recorded.read_text())


def test_a_layer_replaces_only_the_keys_it_names() -> None:
    layer = VALIDATION / "browser-spread" / "strategies.toml"
    shipped, calibrated = strategy_params("individual:fc1316b"), strategy_params("individual:fc1316b", layer=layer)
    assert calibrated.reread_s_per_file < shipped.reread_s_per_file
    assert calibrated.upload_tick_s == shipped.upload_tick_s == 2.0  # the page's clock, not its CPU
    assert strategy_params("individual", layer=layer) == strategy_params("individual")  # another set: untouched
    assert strategy_params("individual:fc1316b", {"reread_s_per_file": 3.0}, layer=layer).reread_s_per_file == 3.0


def test_a_layer_that_is_missing_or_names_no_strategy_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        strategy_params("individual", layer=tmp_path / "absent.toml")
    misspelt = tmp_path / "misspelt.toml"
    misspelt.write_text("[individul.fc1316b]\nreread_s_per_file = 1.0\n")
    with pytest.raises(ConfigError, match="unknown strategy table"):
        strategy_params("individual:fc1316b", layer=misspelt)
    unknown_key = tmp_path / "key.toml"
    unknown_key.write_text("[individual.fc1316b]\nreread_s_per_fil = 1.0\n")
    with pytest.raises(ConfigError, match="unknown key"):
        strategy_params("individual:fc1316b", layer=unknown_key)


def test_calibration_needs_browser_runs_on_both_sides_of_one_size(tmp_path) -> None:
    with pytest.raises(ConfigError, match="neither summary.json"):
        calibrate_page([tmp_path], [VALIDATION / "browser"])
    with pytest.raises(ConfigError, match="no uncapped browser run in"):
        calibrate_page([VALIDATION / "issue4"], [VALIDATION / "browser"])  # protocol-level runs only
    only_200 = [e for e in map(orjson.loads, (VALIDATION / "browser-spread" / "matrix.jsonl").read_bytes()
                                .splitlines()) if e["summary"]["engine"] == "browser"][:1]
    only_200[0]["summary"]["images"] = 123
    (tmp_path / "matrix.jsonl").write_bytes(orjson.dumps(only_200[0]) + b"\n")
    with pytest.raises(ConfigError, match="no uncapped browser run of \\[123\\] images"):
        calibrate_page([tmp_path], [VALIDATION / "browser"])
    with pytest.raises(ConfigError, match="nothing to scale"):
        calibrate_page([VALIDATION / "browser-spread"], [VALIDATION / "browser"], strategy="batched")


def test_the_model_runs_the_layer_and_says_so() -> None:
    """A faster page (the calibrated layer) ends the model's drop sooner; the summary names the layer."""
    layer = str(VALIDATION / "browser-spread" / "strategies.toml")
    spec = dict(strategy="individual:fc1316b", profile="legacy", images=20, uplink_mbit=20.0)
    shipped, calibrated = run_sim(SimOptions(**spec)), run_sim(SimOptions(**spec, strategy_layer=layer))
    assert calibrated.drop_seconds < shipped.drop_seconds
    assert calibrated.extra["strategy_layer"] == layer and "strategy_layer" not in shipped.extra
