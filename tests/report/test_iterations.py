"""The per-iteration table (SPIN's Table 3 layout) of runs evaluated every round.

Hand values, math accuracy on 20 items (``range(k)`` solved = k/20):
- spin, seed 0: base range(10), round 1 range(12), final range(14) -> 0.50, 0.60, 0.70;
  seed 1: range(10), range(14), range(16) -> 0.50, 0.70, 0.80. Means 0.500, 0.650, 0.750;
  half-widths 0 (no spread), then t_{0.975,1} * sd / sqrt(2) = 12.7062 * 0.0707107 / 1.41421
  = 0.635 for both.
- gsil, one seed, three rounds: 0.50, 0.55, 0.60, 0.65 -> "(n=1)", iterations 0..3; spin has
  no iteration 3: "—".
- sft: no per-round results, so no row.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from gsil_bench.report.write import write_report

TITLE = "## Per iteration (SPIN's Table 3 layout)"


def _with_rounds(kit: SimpleNamespace, method: str, loss: str, seed: int, solved: list[int]):
    """A record whose iterations solved range(k) for each k of ``solved`` (the last: final)."""
    record = kit.record(method, loss, seed, set(range(solved[-1])))
    record["rounds"] = [
        {
            "steps": 3,
            "start_benchmarks": {
                "mini/math": kit.bench("mini/math", "accuracy", kit.MATH, set(range(k)))
            },
        }
        for k in solved[:-1]
    ]
    return record


def _section(markdown: str) -> list[str]:
    section = markdown.split(TITLE)[1].split("\n## ")[0]
    return [line for line in section.splitlines() if line.startswith("| ")]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_per_iteration_table_in_markdown_and_html(tmp_path: Path, kit: SimpleNamespace) -> None:
    records = [
        _with_rounds(kit, "spin beta=0.1", "spin", 0, [10, 12, 14]),
        _with_rounds(kit, "spin beta=0.1", "spin", 1, [10, 14, 16]),
        _with_rounds(kit, "gsil-logistic", "gsil-logistic", 0, [10, 11, 12, 13]),
        kit.record("sft", "sft", 0, set(range(10))),
    ]
    folder = kit.write(tmp_path / "study", records, {"study": "spin-iters"})
    written = write_report(folder)
    markdown = written["table.md"].read_text(encoding="utf-8")
    lines = _section(markdown)
    assert "### mini/math accuracy" in markdown.split(TITLE)[1]
    assert _cells(lines[0]) == ["method", "seeds", "0 (base)", "1", "2", "3"]
    rows = {_cells(line)[0]: _cells(line)[1:] for line in lines[1:]}
    assert rows == {
        "gsil-logistic": ["1", "0.500 (n=1)", "0.550 (n=1)", "0.600 (n=1)", "0.650 (n=1)"],
        "spin beta=0.1": ["2", "0.500 ± 0.000", "0.650 ± 0.635", "0.750 ± 0.635", "—"],
    }
    page = written["index.html"].read_text(encoding="utf-8")
    section = page.split('<section id="iterations">')[1].split("</section>")[0]
    for cell in ["0 (base)", "0.650 ± 0.635", "0.650 (n=1)", "spin beta=0.1"]:
        assert cell in section
    assert "sft" not in section


def test_no_per_iteration_table_without_per_round_results(study_dir: Path) -> None:
    written = write_report(study_dir)
    assert TITLE not in written["table.md"].read_text(encoding="utf-8")
    assert 'id="iterations"' not in written["index.html"].read_text(encoding="utf-8")


def test_iteration_results_need_every_round_evaluated(kit: SimpleNamespace) -> None:
    from gsil_bench.record import RunRecord

    data = _with_rounds(kit, "spin", "spin", 0, [10, 12, 14])
    record = RunRecord.model_validate(data)
    results = record.iteration_results()
    assert results is not None
    assert [r["mini/math"]["metrics"]["accuracy"] for r in results] == [0.5, 0.6, 0.7]
    data["rounds"][1].pop("start_benchmarks")  # a round evaluated without every_round
    assert RunRecord.model_validate(data).iteration_results() is None
    assert RunRecord.model_validate({**data, "rounds": []}).iteration_results() is None
