"""The table as Markdown, CSV and LaTeX, the manifest, and byte-for-byte determinism."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from scipy import stats as sps

from gsil_bench.report.write import write_report

TABLE_FILES = ("table.md", "table.csv", "table.tex", "manifest.json")


def test_csv_has_full_precision_statistics(study_dir: Path) -> None:
    """Run-level p of gsil-logistic beta=1 on math (conftest): all of the variance is the
    item-level one, (46/9 - 20 * 0.09) / 19 / 20, so t = 0.3 / sqrt(that) on 19 df."""
    text = write_report(study_dir)["table.csv"].read_text(encoding="utf-8")
    rows = {row["method"]: row for row in csv.DictReader(text.splitlines())}
    strong = rows["gsil-logistic beta=1"]
    assert float(strong["mini/math/accuracy:mean"]) == pytest.approx(0.85)
    assert float(strong["mini/math/accuracy:ci95_half_width"]) == pytest.approx(0.124207, abs=1e-6)
    assert float(strong["mini/math/accuracy:diff_vs_baseline"]) == pytest.approx(0.3)
    item_variance = (46 / 9 - 20 * 0.09) / 19 / 20
    t = 0.3 / math.sqrt(item_variance)
    assert float(strong["mini/math/accuracy:p_value"]) == pytest.approx(2 * sps.t.sf(t, 19))
    half = sps.t.ppf(0.975, 19) * math.sqrt(item_variance)
    assert float(strong["mini/math/accuracy:diff_ci95_low"]) == pytest.approx(0.3 - half)
    assert strong["mini/math/accuracy:test"] == "paired t"
    assert float(strong["mini/math/accuracy:p_value_items"]) == pytest.approx(2 / 256)
    assert strong["mini/math/accuracy:items"] == "20"
    assert strong["best_of_loss"] == "1" and strong["seeds"] == "0 1 2"
    assert strong["partial"] == "0" and rows["spin beta=1"]["partial"] == "1"
    assert rows["sft"]["baseline"] == "1"
    assert rows["sft"]["mini/math/accuracy:p_value"] == ""
    assert rows["gsil-hinge beta=1"]["mini/math/accuracy:ci95_half_width"] == ""
    assert rows["spin beta=1"]["mini/code/pass@1:mean"] == ""
    assert list(rows) == [
        "gsil-hinge beta=1",
        "gsil-logistic beta=1",
        "gsil-logistic beta=3",
        "sft",
        "spin beta=1",
    ]


def test_latex_table(study_dir: Path) -> None:
    tex = write_report(study_dir)["table.tex"].read_text(encoding="utf-8")
    assert "\\toprule" in tex and "\\bottomrule" in tex
    assert "gsil-logistic beta=1$^{\\star}$" in tex
    assert "$0.850 \\pm 0.124$$^{\\dagger}$" in tex
    assert "0.500$ (n=1)" in tex
    assert "\\label{tab:quick}" in tex


def test_failures_are_listed(study_dir: Path) -> None:
    markdown = write_report(study_dir)["table.md"].read_text(encoding="utf-8")
    failures = markdown.split("## Failures")[1]
    assert "- trial 7 · spin beta=5: non-finite loss" in failures
    assert "- spin beta=5 · seed 1: out of memory" in failures


def test_time_by_stage_is_summed_over_runs(study_dir: Path) -> None:
    markdown = write_report(study_dir)["table.md"].read_text(encoding="utf-8")
    section = markdown.split("## Time by stage (seconds, summed over runs)")[1]
    assert "evaluation_s 3.0 · generation_s 18.0 · training_s 24.0" in section


def test_manifest_merges_study_manifest(study_dir: Path) -> None:
    written = write_report(study_dir)
    manifest = json.loads(written["manifest.json"].read_text(encoding="utf-8"))
    assert manifest["git_commit"] == "abc123" and manifest["baseline"] == "sft"
    assert manifest["finished_runs"] == 12 and manifest["failed_runs"] == 2
    assert manifest["run_seconds_by_stage"] == {
        "evaluation_s": 3.0,
        "generation_s": 18.0,
        "training_s": 24.0,
    }
    assert manifest["files"] == sorted(written)


def test_output_is_deterministic(study_dir: Path, tmp_path: Path) -> None:
    first = {name: write_report(study_dir)[name].read_bytes() for name in TABLE_FILES}
    again = write_report(study_dir)
    assert {name: again[name].read_bytes() for name in TABLE_FILES} == first
    copy = shutil.copytree(study_dir, tmp_path / "elsewhere" / "quick", ignore=_only_inputs)
    copied = write_report(copy)
    assert {name: copied[name].read_bytes() for name in TABLE_FILES} == first


def _only_inputs(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if n.startswith("table") or n in ("manifest.json", "plots")]


def test_record_without_benchmarks_is_accepted(tmp_path: Path, kit: SimpleNamespace) -> None:
    record = kit.record("sft", "sft", 0, set())
    del record["benchmarks"]
    folder = kit.write(tmp_path / "s", [record], {})
    markdown = write_report(folder, paper_dir=tmp_path)["table.md"].read_text(encoding="utf-8")
    assert kit.table_lines(markdown)[1:] == ["| sft | sft | 1 |"]
