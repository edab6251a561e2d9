"""Reward and knob plots: valid PNGs, and curves that vary one knob at a time."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from PIL import Image

from gsil_bench.report.plots import _modal_other_setting, mean_trajectory
from gsil_bench.report.study import load_study
from gsil_bench.report.table import build_table
from gsil_bench.report.write import write_report


def test_plots_are_valid_pngs(study_dir: Path) -> None:
    written = write_report(study_dir)
    assert "plots/rewards.png" in written
    with Image.open(written["plots/rewards.png"]) as image:
        image.verify()
    with Image.open(written["plots/rewards.png"]) as image:
        assert image.format == "PNG" and image.size[0] > 400
    assert not any(name.startswith("plots/knob-") for name in written)


def test_mean_trajectory_averages_seeds_step_by_step(study_dir: Path) -> None:
    """spin beta=1's two seeds log the same falling rewards: the mean is that curve."""
    spin = [r for r in load_study(study_dir).records if r.method == "spin beta=1"]
    assert mean_trajectory(spin, "reward/real") == ([1, 2, 3, 4], [0.0, -0.1, -0.2, -0.3])
    assert mean_trajectory(spin, "reward/absent") == ([], [])


def test_knob_plot_fixes_other_knobs_at_their_modal_setting(
    knob_dir: Path, kit: SimpleNamespace
) -> None:
    table = build_table(load_study(knob_dir))
    assert _modal_other_setting(table.rows, 0) == (("data.quality.noise", 0.0),)
    assert _modal_other_setting(table.rows, 1) == (("data.quality.subsample", 1.0),)
    assert {row.series for row in table.rows} == {"sft", kit.STRONG}
    # A full grid ties every setting: the grid's first-listed (clean) value wins.
    full = [r for r in table.rows if r.knobs[1][1] == 0.0]
    grid = {"data.quality.subsample": [1.0, 0.5]}
    assert _modal_other_setting(full, 1) == (("data.quality.subsample", 0.5),)
    assert _modal_other_setting(full, 1, grid) == (("data.quality.subsample", 1.0),)
