"""The comparison table: rows, hand-computed cells, paired tests against the baseline, knob
settings. The main study's arithmetic is in ``conftest.py``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from gsil_bench.errors import UserError
from gsil_bench.report.study import load_study
from gsil_bench.report.table import build_table
from gsil_bench.report.write import write_report


def test_markdown_table_has_hand_computed_cells(study_dir: Path, kit: SimpleNamespace) -> None:
    written = write_report(study_dir)
    lines = kit.table_lines(written["table.md"].read_text(encoding="utf-8"))
    assert lines[0] == "| method | loss | seeds | mini/code pass@1 | mini/math accuracy |"
    order = [line.split("|")[1].strip() for line in lines[1:]]
    # The study ran seeds 0, 1, 2: hinge (seed 0) and spin (seeds 0, 1) are partial.
    assert order == [
        "gsil-hinge beta=1 (partial: n=1)",
        "gsil-logistic beta=1 ★",
        "gsil-logistic beta=3",
        "sft (baseline)",
        "spin beta=1 (partial: n=2)",
    ]
    row_of = kit.row_of
    assert row_of(lines, "sft") == ["sft (baseline)", "sft", "3", "0.500 ± 0.000", "0.550 ± 0.124"]
    assert row_of(lines, "gsil-logistic beta=1")[3:] == ["0.625 ± 0.311", "0.850 ± 0.124 †"]
    assert row_of(lines, "gsil-logistic beta=3")[3:] == ["0.500 ± 0.000", "0.550 ± 0.124"]
    assert row_of(lines, "gsil-hinge")[2:] == ["1", "0.500 (n=1, no CI)", "0.500 (n=1, no CI)"]
    # Run-level p = 0.179 (conftest): the item-level p = 0.031 no longer earns a †.
    assert row_of(lines, "spin")[2:] == ["2", "—", "0.350 ± 0.635"]


def test_paired_comparison_section(study_dir: Path, kit: SimpleNamespace) -> None:
    """Run-level difference [interval], p and test, then the item-level p (conftest)."""
    markdown = write_report(study_dir)["table.md"].read_text(encoding="utf-8")
    section = markdown.split("## Paired comparison with the baseline (sft)")[1].split("\n## ")[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    strong = kit.row_of(lines, "gsil-logistic beta=1")
    assert strong[1].startswith("+0.125 [")
    assert strong[1].endswith("p=0.305 (paired t, 3 seeds); items: p=0.500 (8 items)")
    assert strong[2].startswith("+0.300 [")
    assert strong[2].endswith("p=0.005 (paired t, 3 seeds); items: p=0.008 (20 items)")
    assert kit.row_of(lines, "gsil-logistic beta=3")[2].endswith(
        "p=1.000 (paired t, 3 seeds); items: p=1.000 (20 items)"
    )
    spin = kit.row_of(lines, "spin")
    assert spin[1] == "—"
    assert spin[2].startswith("-0.175 [")
    assert spin[2].endswith("p=0.179 (paired t, 2 seeds); items: p=0.031 (20 items)")
    hinge = kit.row_of(lines, "gsil-hinge")
    assert hinge[2] == "no run-level test (a side has one seed); items: p=0.500 (20 items)"
    assert not any(line.startswith("| sft") for line in lines)
    assert "paired t-test over seeds" in markdown and "sign-flip test over items" in markdown


def test_baseline_override_and_unknown_baseline(study_dir: Path) -> None:
    markdown = write_report(study_dir, baseline="spin beta=1")["table.md"].read_text()
    assert "## Paired comparison with the baseline (spin beta=1)" in markdown
    with pytest.raises(UserError, match="'nope' is not a method .*sft, spin beta=1"):
        write_report(study_dir, baseline="nope")


def test_baseline_whose_runs_all_failed_is_a_note(tmp_path: Path, kit: SimpleNamespace) -> None:
    records = [kit.record("sft", "sft", s, set(range(10))) for s in range(2)]
    failures = [{"trial": 1, "method": "spin beta=1", "reason": "out of memory"}]
    folder = kit.write(tmp_path / "s", records, {"baseline": "spin", "failures": failures})
    for baseline in (None, "spin"):  # from study.json, or passed on by the sweep
        markdown = write_report(folder, baseline=baseline, paper_dir=tmp_path)["table.md"]
        text = markdown.read_text(encoding="utf-8")
        assert "baseline 'spin' has no finished run" in text
        assert "Paired comparison" not in text


def test_duplicate_seed_records_are_counted_once(tmp_path: Path, kit: SimpleNamespace) -> None:
    records = [kit.record("sft", "sft", 0, set(range(10))) for _ in range(2)]
    records.append(kit.record("sft", "sft", 1, set(range(12))))
    folder = kit.write(tmp_path / "s", records, {})
    markdown = write_report(folder, paper_dir=tmp_path)["table.md"].read_text()
    assert kit.row_of(kit.table_lines(markdown), "sft")[2] == "2"
    assert "duplicate record for seed 0 of sft: kept 000.json, ignored 001.json" in markdown


def test_baseline_prefix_with_several_rows_uses_the_best(
    tmp_path: Path, kit: SimpleNamespace
) -> None:
    records = [kit.record("sft lr=0.0003", "sft", s, set(range(10 + s))) for s in range(2)]
    records += [kit.record("sft lr=0.001", "sft", s, set(range(4 + s))) for s in range(2)]
    records += [kit.record(kit.STRONG, kit.LOGISTIC, s, set(range(16 + s))) for s in range(2)]
    folder = kit.write(tmp_path / "s", records, {"baseline": "sft"})
    markdown = write_report(folder, paper_dir=tmp_path)["table.md"].read_text(encoding="utf-8")
    lines = kit.table_lines(markdown)
    assert kit.row_of(lines, "sft lr=0.0003")[0] == "sft lr=0.0003 (baseline) ★"
    assert kit.row_of(lines, "sft lr=0.001")[3].endswith("†")  # compared with the better sft
    assert "baseline 'sft' matches several rows; compared with sft lr=0.0003" in markdown


def test_knob_rows_plots_and_pairing_by_setting(knob_dir: Path, kit: SimpleNamespace) -> None:
    written = write_report(knob_dir)
    lines = kit.table_lines(written["table.md"].read_text(encoding="utf-8"))
    labels = [line.split("|")[1].strip() for line in lines[1:]]
    assert labels == [
        "gsil-logistic beta=1 subsample=0.5 noise=0",
        "gsil-logistic beta=1 subsample=1 noise=0",
        "gsil-logistic beta=1 subsample=1 noise=0.2",
        "sft subsample=0.5 noise=0 (baseline)",
        "sft subsample=1 noise=0 (baseline)",
        "sft subsample=1 noise=0.2 (baseline)",
    ]
    # Seeds solve base+6+seed vs base+seed items at every setting: per-seed differences
    # 0.30, 0.30 (no run spread), seed-averaged item differences 1/2, 1 x5, 1/2 and 13 zeros:
    # item variance (5.5 - 20 * 0.09) / 19 / 20, t = 0.3 / 0.0987 = 3.04 on 19 df, p = 0.007.
    assert kit.row_of(lines, "gsil-logistic beta=1 subsample=0.5")[3] == "0.575 ± 0.318 †"
    assert "★" not in "".join(lines)  # data settings are not configurations to pick from
    for knob in ("data.quality.subsample", "data.quality.noise"):
        with Image.open(written[f"plots/knob-{knob}.png"]) as image:
            image.verify()
    header = written["table.csv"].read_text().splitlines()[0]
    assert header.startswith("method,loss,data.quality.subsample,data.quality.noise,seeds")


def test_rows_take_knobs_and_series_from_the_record(tmp_path: Path, kit: SimpleNamespace) -> None:
    """A custom method label names no knob: the row label appends the setting, and the plot
    series is the record's own, not a piece of the label."""
    records = [
        kit.record("mine", "sft", seed, set(range(10)), series="mine", knobs={"d.q.noise": noise})
        for noise in (0.0, 0.5)
        for seed in range(2)
    ]
    folder = kit.write(tmp_path / "s", records, {"knobs": ["d.q.noise"]})
    table = build_table(load_study(folder))
    assert [row.label for row in table.rows] == ["mine · noise=0", "mine · noise=0.5"]
    assert [row.knobs for row in table.rows] == [(("d.q.noise", 0.0),), (("d.q.noise", 0.5),)]
    assert {row.series for row in table.rows} == {"mine"}


def test_records_without_knobs_field_read_knobs_from_params(
    tmp_path: Path, kit: SimpleNamespace
) -> None:
    """Records written before the sweep filled ``knobs`` still group by their knob setting."""
    records = [
        kit.record(f"sft noise={noise:g}", "sft", 0, set(range(10)), params={"d.q.noise": noise})
        for noise in (0.5, 0.0)
    ]
    folder = kit.write(tmp_path / "s", records, {"knobs": ["d.q.noise"]})
    table = build_table(load_study(folder))
    assert [row.knobs for row in table.rows] == [(("d.q.noise", 0.0),), (("d.q.noise", 0.5),)]
    assert [row.label for row in table.rows] == ["sft noise=0", "sft noise=0.5"]


def test_comparison_section_states_the_mde_of_each_column(study_dir: Path) -> None:
    """The MDE row repeats the instrument's MDE next to the p-values (DESIGN.md §11)."""
    markdown = write_report(study_dir)["table.md"].read_text(encoding="utf-8")
    section = markdown.split("## Paired comparison with the baseline (sft)")[1].split("\n## ")[0]
    instrument = markdown.split("## The instrument: signal, noise, power")[1].split("\n## ")[0]
    mde_row = next(line for line in section.splitlines() if line.startswith("| MDE"))
    math_line = next(x for x in instrument.splitlines() if x.startswith("| mini/math"))
    assert mde_row.split("|")[3].strip() == math_line.split("|")[7].strip()
