"""Controls, diagnostics, partial rows and the instrument in the report (issue 9, items 4-6)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from gsil_bench.report.power import minimum_detectable_difference
from gsil_bench.report.runs import ItemVariance
from gsil_bench.report.write import write_report

MOVED = "moved_answers/mini/math"


def csv_rows(written: dict[str, Path]) -> dict[str, dict[str, str]]:
    text = written["table.csv"].read_text(encoding="utf-8")
    return {row["method"]: row for row in csv.DictReader(text.splitlines())}


def controlled_study(tmp_path: Path, kit: SimpleNamespace, knobs: bool = False) -> Path:
    """base, sft and spin over seeds 0-2 on 20 math items. The base records carry the loss of
    the base config (the experiment does not train one) and, in a knob study, the reference
    setting; spin's seed 2 predates diagnostics (an old record)."""
    setting = {"data.quality.noise": 0.0} if knobs else {}
    extra = {"knobs": setting, "params": setting} if knobs else {}
    records = []
    for seed in range(3):
        base = kit.record("base", "gsil-logistic", seed, set(range(6 + seed)), series="base")
        base.update(extra)
        sft = kit.record("sft", "sft", seed, set(range(10 + seed)), **extra)
        sft["diagnostics"] = {MOVED: 0.2 + 0.1 * seed, "heldout_logp_delta": 0.5}
        spin = kit.record("spin beta=1", "spin", seed, set(range(8 + seed)), **extra)
        if seed < 2:
            spin["diagnostics"] = {MOVED: 0.1, "identical_pairs": 0.25 * seed}
        records += [base, sft, spin]
    info = {"baseline": "sft", "seeds": [0, 1, 2], "knobs": list(setting)}
    return kit.write(tmp_path / "s", records, info)


def test_base_row_on_top_never_starred_nor_tested(tmp_path: Path, kit: SimpleNamespace) -> None:
    written = write_report(controlled_study(tmp_path, kit), paper_dir=tmp_path)
    lines = kit.table_lines(written["table.md"].read_text(encoding="utf-8"))
    assert lines[1].startswith("| base (control) | — | 3 | 0.350 ± 0.124 |")
    assert "†" not in lines[1] and "★" not in lines[1]
    rows = csv_rows(written)
    assert list(rows)[0] == "base"
    base = rows["base"]
    assert base["loss"] == "" and base["best_of_loss"] == "0" and base["baseline"] == "0"
    assert base["mini/math/accuracy:mean"] == "0.35"
    assert base["mini/math/accuracy:p_value"] == "" and base["mini/math/accuracy:test"] == ""


def test_base_row_in_a_knob_study_is_one_row_and_a_line_in_the_plot(
    tmp_path: Path, kit: SimpleNamespace
) -> None:
    written = write_report(controlled_study(tmp_path, kit, knobs=True), paper_dir=tmp_path)
    lines = kit.table_lines(written["table.md"].read_text(encoding="utf-8"))
    assert [line.split("|")[1].strip() for line in lines[1:]] == [
        "base (control)",
        "sft · noise=0 (baseline)",
        "spin beta=1 · noise=0",
    ]
    rows = csv_rows(written)
    assert rows["base"]["data.quality.noise"] == "" and rows["sft"]["data.quality.noise"] == "0"
    with Image.open(written["plots/knob-data.quality.noise.png"]) as image:
        image.verify()


def test_diagnostics_are_seed_means_and_old_records_leave_gaps(
    tmp_path: Path, kit: SimpleNamespace
) -> None:
    """sft moved 0.2, 0.3, 0.4 -> 0.3; spin's two recorded seeds 0.1, 0.1 -> 0.1 and
    identical pairs 0, 0.25 -> 0.125 (its third, older record has none); base has none."""
    written = write_report(controlled_study(tmp_path, kit), paper_dir=tmp_path)
    rows = csv_rows(written)
    assert float(rows["sft"][f"diag:{MOVED}"]) == pytest.approx(0.3)
    assert float(rows["sft"]["diag:heldout_logp_delta"]) == pytest.approx(0.5)
    assert rows["sft"]["diag:identical_pairs"] == ""
    assert float(rows["spin beta=1"]["diag:identical_pairs"]) == pytest.approx(0.125)
    assert rows["base"][f"diag:{MOVED}"] == ""
    header = written["table.csv"].read_text().splitlines()[0].split(",")
    diagnostics = ["diag:heldout_logp_delta", "diag:identical_pairs", f"diag:{MOVED}"]
    assert header[-3:] == diagnostics
    markdown = written["table.md"].read_text(encoding="utf-8")
    section = markdown.split("## Controls: how far each method moved from the base model")[1]
    table = [line for line in section.split("\n## ")[0].splitlines() if line.startswith("| ")]
    assert table[0] == f"| method | seeds | heldout_logp_delta | identical_pairs | {MOVED} |"
    assert kit.row_of(table, "spin beta=1") == ["spin beta=1", "3", "—", "0.125", "0.100"]


def test_no_diagnostics_no_section(study_dir: Path) -> None:
    written = write_report(study_dir)
    assert "## Controls" not in written["table.md"].read_text(encoding="utf-8")
    assert "diag:" not in written["table.csv"].read_text(encoding="utf-8")


def test_partial_trial_is_marked_and_never_starred(tmp_path: Path, kit: SimpleNamespace) -> None:
    """beta=9 scores 0.95 on its one seed (pruned after it), beta=1 0.50-0.60 on all three:
    only beta=1 ran the study's seeds, so it is the best; beta=9 is shown, marked."""
    records = [kit.record("spin beta=1", "spin", s, set(range(10 + s))) for s in range(3)]
    records.append(kit.record("spin beta=9", "spin", 0, set(range(19))))
    info = {"seeds": [0, 1, 2], "objective": {"metrics": {"mini/math": 1.0}}}
    folder = kit.write(tmp_path / "s", records, info)
    written = write_report(folder, paper_dir=tmp_path)
    lines = kit.table_lines(written["table.md"].read_text(encoding="utf-8"))
    assert kit.row_of(lines, "spin beta=1")[0] == "spin beta=1 ★"
    assert kit.row_of(lines, "spin beta=9")[0] == "spin beta=9 (partial: n=1)"
    rows = csv_rows(written)
    assert rows["spin beta=9"]["partial"] == "1" and rows["spin beta=9"]["best_of_loss"] == "0"
    tex = written["table.tex"].read_text(encoding="utf-8")
    assert "spin beta=9 (partial: n=1) &" in tex and "spin beta=1$^{\\star}$" in tex


def test_instrument_by_hand_and_columns_that_do_not_separate(
    tmp_path: Path, kit: SimpleNamespace
) -> None:
    """Seeds 0, 1 on 20 math and 8 code items.

    math: sft 0.50, 0.55 (variance 0.00125), spin 0.40, 0.50 (variance 0.005): noise
    sqrt((0.00125 + 0.005) / 2) = 0.055902; means 0.525, 0.45 -> signal 0.075 / sqrt(2) =
    0.053033; SNR 0.9487 < 1: does not separate. Paired differences -0.10, -0.05: sd^2
    0.00125. Items: seed 0 differs on items 8, 9, seed 1 on item 10, so the seed-averaged
    differences are -1/2 x3 and 17 zeros: item variance (0.75 - 20 * 0.075^2) / 19 / 20.
    code: both methods solve 4 then 5 of 8 items: signal 0, SNR 0, and no spread of the
    differences at all, so no MDE can be estimated (empty, not 0)."""
    records = []
    for seed in range(2):
        code = set(range(4 + seed))
        records.append(kit.record("sft", "sft", seed, set(range(10 + seed)), code))
        records.append(kit.record("spin beta=1", "spin", seed, set(range(8 + 2 * seed)), code))
    folder = kit.write(tmp_path / "s", records, {"baseline": "sft", "seeds": [0, 1]})
    written = write_report(folder, paper_dir=tmp_path)
    rows = csv_rows(written)
    math_snr = float(rows["sft"]["mini/math/accuracy:snr"])
    assert math_snr == pytest.approx((0.075 / math.sqrt(2)) / math.sqrt(0.003125))
    assert math_snr == pytest.approx(0.9487, abs=1e-4)
    for method in ("sft", "spin beta=1"):  # the column's instrument, on every row
        assert rows[method]["mini/math/accuracy:separates"] == "0"
    item_var = (0.75 - 20 * 0.075**2) / 19 / 20
    expected = minimum_detectable_difference(
        math.sqrt(0.00125), 2, items=ItemVariance(item_var, 19.0)
    )
    assert float(rows["sft"]["mini/math/accuracy:mde"]) == pytest.approx(expected)
    assert rows["sft"]["mini/code/pass@1:snr"] == "0"
    assert rows["sft"]["mini/code/pass@1:mde"] == ""
    markdown = written["table.md"].read_text(encoding="utf-8")
    note = "Does not separate (SNR < 1, see the instrument below): mini/code pass@1, mini/math"
    assert note in markdown
    section = markdown.split("## The instrument: signal, noise, power")[1].split("\n## ")[0]
    line = next(x for x in section.splitlines() if x.startswith("| mini/math accuracy"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:6] == ["mini/math accuracy", "2", "20", "0.053", "0.056", "0.95"]
    assert cells[6] == f"{expected:.3f}"
    # Seeds to reach an MDE of 0.05: none, the 20 items alone (standard error
    # sqrt(item_var) = 0.041) keep it near (t_0.975,19 + t_0.8,19) · 0.041 = 2.954 · 0.041 =
    # 0.121 with unlimited seeds.
    assert cells[7] == "items (floor 0.121)"
    assert rows["sft"]["mini/math/accuracy:seeds_for_mde"] == ""
    assert 2.954 * math.sqrt(item_var) == pytest.approx(0.121, abs=0.001)
    assert cells[8:] == ["paired t", "does not separate"]


def test_seeds_that_change_nothing_are_named(tmp_path: Path, kit: SimpleNamespace) -> None:
    """Every seed of every method gives the same score (today's "± 0.000"): no noise, no SNR,
    and a note saying the tests rest on the items alone."""
    records = [
        kit.record(m, m, s, set(range(n))) for m, n in (("sft", 10), ("spin", 12)) for s in (0, 1)
    ]
    folder = kit.write(tmp_path / "s", records, {"baseline": "sft"})
    written = write_report(folder, paper_dir=tmp_path)
    markdown = written["table.md"].read_text(encoding="utf-8")
    assert "no method's score moved with the seed on mini/math accuracy (noise 0)" in markdown
    assert csv_rows(written)["spin"]["mini/math/accuracy:snr"] == ""
