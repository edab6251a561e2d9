"""Published numbers: their own table, only for losses the study ran, files checked."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from gsil_bench.errors import UserError
from gsil_bench.report.paper import default_paper_dir, load_published, select_published
from gsil_bench.report.write import write_report


def test_published_numbers_in_their_own_table(study_dir: Path, kit: SimpleNamespace) -> None:
    markdown = write_report(study_dir)["table.md"].read_text(encoding="utf-8")
    published = markdown.split("## Published numbers (not comparable to the mini suite)")[1]
    assert "58.14" in published and "63.16" in published and "36.58" in published
    assert "arXiv:2401.01335" in published and "arXiv:2410.10093" in published
    assert "not yet checked against the paper's own tables" in published
    assert not any("58.14" in line for line in kit.table_lines(markdown))
    tex = (study_dir / "table.tex").read_text(encoding="utf-8")
    assert "Published numbers (not comparable to the mini suite)" in tex
    empty = study_dir / "no-papers"
    empty.mkdir()
    assert (
        "Published numbers" not in write_report(study_dir, paper_dir=empty)["table.md"].read_text()
    )


def test_published_ours_column_only_for_same_benchmark(
    tmp_path: Path, kit: SimpleNamespace
) -> None:
    records = []
    for seed in range(2):
        record = kit.record("sft", "sft", seed, set(range(10)))
        record["benchmarks"]["humaneval"] = kit.bench("humaneval", "pass@1", kit.CODE, {0, 1, 2})
        records.append(record)
    folder = kit.write(tmp_path / "results" / "real", records, {})
    markdown = write_report(folder)["table.md"].read_text(encoding="utf-8")
    line = next(x for x in markdown.splitlines() if "| SFT | humaneval" in x)
    assert "| 31.70 | 37.50 |" in line  # 3/8 solved = 37.50 in the paper's percent
    assert "| spin |" not in markdown  # only losses the study ran


def test_bad_paper_file_names_file_and_key(study_dir: Path, tmp_path: Path) -> None:
    papers = tmp_path / "papers"
    papers.mkdir()
    entry = {"loss": "sft", "method": "x", "benchmark": "b", "metric": "m", "value": "high"}
    source = {"paper": "P", "citation": "C", "arxiv": "1", "verified": False, "results": [entry]}
    (papers / "bad.yaml").write_text(yaml.safe_dump(source))
    with pytest.raises(UserError, match=r"bad\.yaml: results\[0\]\.value: expected a number"):
        write_report(study_dir, paper_dir=papers)


def test_paper_files_in_repository_load() -> None:
    numbers = load_published(default_paper_dir(Path("/nonexistent/study")))
    by_method = {(n.file, n.method, n.benchmark): n for n in numbers}
    assert by_method[("spin.yaml", "SPIN iteration 3", "open-llm-leaderboard")].value == 63.16
    assert by_method[("spin.yaml", "SPIN iteration 2", "mt-bench")].value == 6.78
    gsil = [n for n in numbers if n.file == "gsil.yaml"]
    assert len(gsil) == 5 and not any(n.verified for n in gsil)
    assert all("secondary summaries" in n.note for n in gsil)


# The SPIN release's figure images/iter_openllm.png (github.com/uclaml/SPIN): the Open LLM
# Leaderboard average of SFT (zephyr-7b-sft-full) and of SPIN iterations 0-3, as printed there.
RELEASE_FIGURE = {
    "base": 58.14,
    "SPIN iteration 0": 60.80,
    "SPIN iteration 1": 62.12,
    "SPIN iteration 2": 62.97,
    "SPIN iteration 3": 63.16,
}


def _spin_numbers():
    numbers = load_published(default_paper_dir(Path("/nonexistent/study")))
    return [n for n in numbers if n.file == "spin.yaml"]


def test_spin_open_llm_averages_are_the_release_figure_and_checked() -> None:
    leaderboard = [n for n in _spin_numbers() if n.benchmark == "open-llm-leaderboard"]
    got = {("base" if n.loss == "base" else n.method): n.value for n in leaderboard}
    assert got == RELEASE_FIGURE
    assert all(n.verified and "images/iter_openllm.png" in n.table for n in leaderboard)
    # MT-Bench is not in the release's figures: not marked as checked.
    mt = [n for n in _spin_numbers() if n.benchmark == "mt-bench"]
    assert [n.value for n in mt] == [5.94, 6.46, 6.65, 6.78] and not any(n.verified for n in mt)


def test_spin_starting_model_rows_are_base_not_sft() -> None:
    numbers = _spin_numbers()
    base = [n for n in numbers if "zephyr-7b-sft-full" in n.method]
    assert {(n.loss, n.benchmark, n.value) for n in base} == {
        ("base", "open-llm-leaderboard", 58.14),
        ("base", "mt-bench", 5.94),
    }
    assert not any(n.loss == "sft" for n in numbers)
    # A study that ran SFT alone gets none of SPIN's numbers; one with SPIN or with the base
    # control (report rows of loss "") gets the starting model's rows too.
    assert select_published(numbers, {"sft"}) == []
    assert {n.value for n in select_published(numbers, {"spin"})} >= {58.14, 5.94}
    assert {n.value for n in select_published(numbers, {""})} == {58.14, 5.94}


def test_gsil_family_numbers_do_not_stand_for_the_exponential_extension() -> None:
    numbers = load_published(default_paper_dir(Path("/nonexistent/study")))
    gsil = [n for n in numbers if n.file == "gsil.yaml" and n.loss == "gsil"]
    assert gsil and all(n.matches_loss("gsil-logistic") for n in gsil)
    assert not any(n.matches_loss("gsil-exponential") for n in gsil)
    assert select_published(gsil, {"gsil-exponential"}) == []


def test_gsil_losses_state_the_release_names() -> None:
    from gsil_bench.registry import describe

    summary = {row["name"]: row["summary"] for row in describe()}
    # tengxiao1/GSIL trainer.py: loss_real = -logsigmoid(real_rewards * alpha + beta).
    assert "alpha/beta = our beta/shift" in summary["gsil-logistic"]
    assert "Bernoulli" in summary["gsil-logistic"]
    assert summary["gsil-exponential"].startswith("GSIL extension, not in the GSIL release")
