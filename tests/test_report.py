"""Reports from synthetic study folders whose numbers are known by hand.

The main study (baseline ``sft``, objective mini/math accuracy), per seed on 20 math items and
8 code items ("correct range(k)" = items 0..k-1 solved):

- sft: math range(10), range(11), range(12) -> 0.50, 0.55, 0.60: mean 0.550,
  half-width t_{0.975,2} * 0.05 / sqrt(3) = 4.302653 * 0.028868 = 0.124; code range(4) -> 0.5.
- gsil-logistic beta=1: math range(16..18) -> 0.80, 0.85, 0.90: 0.850 ± 0.124. Seed-averaged
  item differences vs sft: 1/3, 2/3, 1, 1, 1, 1, 2/3, 1/3 and zeros -> mean 6/20 = +0.300,
  sign-flip p = 2/2^8 = 0.0078 (†). Code range(4..6) -> 0.5, 0.625, 0.75: 0.625 ± 0.311,
  differences 2/3, 1/3 -> p = 2/4 = 0.5 (no mark).
- gsil-logistic beta=3: math items 1..10, 1..11, 1..12 -> 0.550 ± 0.124; differences -1, +1/3
  x3 -> sum 0, p = 1. Not the best gsil-logistic; beta=1 gets ★.
- gsil-hinge beta=1: one seed, math range(10) -> "0.500 (n=1, no CI)".
- spin beta=1: two seeds, math range(8), range(6) -> 0.40, 0.30: 0.350 ± 12.7062 * 0.05
  = 0.635; differences -1/2 x2, -1 x2, -2/3, -1/3 -> p = 2/2^6 = 0.031 (†). No code result.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from gsil_bench.errors import UserError
from gsil_bench.report import find_study, list_studies, load_study, write_report
from gsil_bench.report_plots import _modal_other_setting
from gsil_bench.report_table import build_table

MATH = [f"math-{i:03d}" for i in range(20)]
CODE = [f"code-{i}" for i in range(8)]
TABLE_FILES = ("table.md", "table.csv", "table.tex", "manifest.json")
LOGISTIC, STRONG, WEAK = "gsil-logistic", "gsil-logistic beta=1", "gsil-logistic beta=3"


def bench(name: str, metric: str, ids: list[str], solved: set[int], reverse: bool = False) -> dict:
    items = [{"id": item, "score": float(i in solved)} for i, item in enumerate(ids)]
    if reverse:  # pairing must go by id, not by position
        items.reverse()
    accuracy = len(solved) / len(ids)
    return {"benchmark": name, "metrics": {metric: accuracy}, "items": items, "seconds": 0.1}


def make_record(
    method: str,
    loss: str,
    seed: int,
    math: set[int],
    code: set[int] | None = None,
    *,
    params: dict[str, Any] | None = None,
    rewards: tuple[list[float], list[float]] | None = None,
) -> dict[str, Any]:
    benchmarks = {"mini/math": bench("mini/math", "accuracy", MATH, math, reverse=seed == 1)}
    if code is not None:
        benchmarks["mini/code"] = bench("mini/code", "pass@1", CODE, code)
    trajectory = [{"step": s + 1, "loss": 0.7 - 0.1 * s} for s in range(4)]
    if rewards is not None:
        for point, real, generated in zip(trajectory, *rewards, strict=True):
            point.update({"reward/real": real, "reward/generated": generated})
    return {
        "run_id": f"{method}-{seed}",
        "method": method,
        "loss": loss,
        "hparams": {},
        "seed": seed,
        "params": params or {},
        "benchmarks": benchmarks,
        "trajectory": trajectory,
        "timings": {"generation_s": 1.5, "training_s": 2.0, "evaluation_s": 0.25},
        "status": "ok",
    }


def write_study(folder: Path, records: list[dict[str, Any]], info: dict[str, Any]) -> Path:
    (folder / "records").mkdir(parents=True)
    for index, record in enumerate(records):
        path = folder / "records" / f"{index:03d}.json"
        path.write_text(json.dumps(record), encoding="utf-8")
    (folder / "study.json").write_text(json.dumps(info), encoding="utf-8")
    return folder


def main_records() -> list[dict[str, Any]]:
    falling = ([0.0, -0.1, -0.2, -0.3], [0.0, -0.2, -0.4, -0.6])
    rising = ([0.0, 0.2, 0.4, 0.5], [0.0, -0.3, -0.5, -0.8])
    rows = [make_record("sft", "sft", s, set(range(10 + s)), set(range(4))) for s in range(3)]
    for s in range(3):
        math_strong, code_strong = set(range(16 + s)), set(range(4 + s))
        rows.append(make_record(STRONG, LOGISTIC, s, math_strong, code_strong, rewards=rising))
    for s in range(3):
        math_same = set(range(1, 11 + s))
        rows.append(make_record(WEAK, LOGISTIC, s, math_same, set(range(4)), rewards=rising))
    rows.append(make_record("gsil-hinge beta=1", "gsil-hinge", 0, set(range(10)), set(range(4))))
    rows += [
        make_record("spin beta=1", "spin", s, set(range(8 - 2 * s)), rewards=falling)
        for s in range(2)
    ]
    rows.append({"method": "spin beta=5", "seed": 1, "status": "failed", "reason": "out of memory"})
    return rows


MAIN_INFO = {
    "study": "quick",
    "sweep_file": "sweeps/quick.yaml",
    "baseline": "sft",
    "knobs": [],
    "objective": {"metrics": {"mini/math/accuracy": 1.0}, "direction": "maximize"},
    "failures": [{"trial": 7, "method": "spin beta=5", "reason": "non-finite loss"}],
    "manifest": {"git_commit": "abc123", "machine": "test"},
}


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    return write_study(tmp_path / "results" / "quick", main_records(), MAIN_INFO)


@pytest.fixture
def knob_dir(tmp_path: Path) -> Path:
    """Two methods, two seeds; subsample 0.5/1.0 at noise 0, and noise 0.2 at subsample 1.0."""
    settings = [(0.5, 0.0), (1.0, 0.0), (1.0, 0.2)]
    records = []
    for subsample, noise in settings:
        params = {"data.quality.subsample": subsample, "data.quality.noise": noise}
        base = int(10 * subsample) - int(10 * noise)
        suffix = f" subsample={subsample:g} noise={noise:g}"  # the sweep names grid points
        for seed in range(2):
            sft = make_record("sft" + suffix, "sft", seed, set(range(base + seed)), params=params)
            solved = set(range(base + 6 + seed))
            strong = make_record(STRONG + suffix, LOGISTIC, seed, solved, params=params)
            records += [sft, strong]
    info = {
        "study": "dq",
        "baseline": "sft",
        "knobs": ["data.quality.subsample", "data.quality.noise"],
    }
    return write_study(tmp_path / "results" / "dq", records, info)


def main_table_lines(markdown: str) -> list[str]:
    section = markdown.split("\n## ")[0]
    return [line for line in section.splitlines() if line.startswith("| ")]


def row_of(lines: list[str], label: str) -> list[str]:
    line = next(line for line in lines if line.startswith(f"| {label}"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_markdown_table_has_hand_computed_cells(study_dir: Path) -> None:
    written = write_report(study_dir)
    lines = main_table_lines(written["table.md"].read_text(encoding="utf-8"))
    assert lines[0] == "| method | loss | seeds | mini/code pass@1 | mini/math accuracy |"
    order = [line.split("|")[1].strip() for line in lines[1:]]
    assert order == [
        "gsil-hinge beta=1",
        "gsil-logistic beta=1 ★",
        "gsil-logistic beta=3",
        "sft (baseline)",
        "spin beta=1",
    ]
    assert row_of(lines, "sft") == ["sft (baseline)", "sft", "3", "0.500 ± 0.000", "0.550 ± 0.124"]
    assert row_of(lines, "gsil-logistic beta=1")[3:] == ["0.625 ± 0.311", "0.850 ± 0.124 †"]
    assert row_of(lines, "gsil-logistic beta=3")[3:] == ["0.500 ± 0.000", "0.550 ± 0.124"]
    assert row_of(lines, "gsil-hinge")[2:] == ["1", "0.500 (n=1, no CI)", "0.500 (n=1, no CI)"]
    assert row_of(lines, "spin")[2:] == ["2", "—", "0.350 ± 0.635 †"]


def test_paired_comparison_section(study_dir: Path) -> None:
    markdown = write_report(study_dir)["table.md"].read_text(encoding="utf-8")
    section = markdown.split("## Paired comparison with the baseline (sft)")[1].split("\n## ")[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    strong = row_of(lines, "gsil-logistic beta=1")
    assert strong[1].startswith("+0.125 [") and strong[1].endswith("p=0.500 (8 items)")
    assert strong[2].startswith("+0.300 [") and strong[2].endswith("p=0.008 (20 items)")
    assert row_of(lines, "gsil-logistic beta=3")[2].endswith("p=1.000 (20 items)")
    spin = row_of(lines, "spin")
    assert spin[1] == "—"
    assert spin[2].startswith("-0.200 [") and spin[2].endswith("p=0.031 (20 items)")
    assert not any(line.startswith("| sft") for line in lines)
    assert "sign-flip (permutation) test" in markdown


def test_csv_has_full_precision_statistics(study_dir: Path) -> None:
    text = write_report(study_dir)["table.csv"].read_text(encoding="utf-8")
    rows = {row["method"]: row for row in csv.DictReader(text.splitlines())}
    strong = rows["gsil-logistic beta=1"]
    assert float(strong["mini/math/accuracy:mean"]) == pytest.approx(0.85)
    assert float(strong["mini/math/accuracy:ci95_half_width"]) == pytest.approx(0.124207, abs=1e-6)
    assert float(strong["mini/math/accuracy:diff_vs_baseline"]) == pytest.approx(0.3)
    assert float(strong["mini/math/accuracy:p_value"]) == pytest.approx(2 / 256)
    assert strong["best_of_loss"] == "1" and strong["seeds"] == "0 1 2"
    assert rows["sft"]["baseline"] == "1"
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


def test_plots_are_valid_pngs(study_dir: Path) -> None:
    written = write_report(study_dir)
    assert "plots/rewards.png" in written
    with Image.open(written["plots/rewards.png"]) as image:
        image.verify()
    with Image.open(written["plots/rewards.png"]) as image:
        assert image.format == "PNG" and image.size[0] > 400
    assert not any(name.startswith("plots/knob-") for name in written)


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


def test_baseline_override_and_unknown_baseline(study_dir: Path) -> None:
    markdown = write_report(study_dir, baseline="spin beta=1")["table.md"].read_text()
    assert "## Paired comparison with the baseline (spin beta=1)" in markdown
    with pytest.raises(UserError, match="'nope' is not a method .*sft, spin beta=1"):
        write_report(study_dir, baseline="nope")


def test_baseline_whose_runs_all_failed_is_a_note(tmp_path: Path) -> None:
    records = [make_record("sft", "sft", s, set(range(10))) for s in range(2)]
    failures = [{"trial": 1, "method": "spin beta=1", "reason": "out of memory"}]
    folder = write_study(tmp_path / "s", records, {"baseline": "spin", "failures": failures})
    for baseline in (None, "spin"):  # from study.json, or passed on by the sweep
        markdown = write_report(folder, baseline=baseline, paper_dir=tmp_path)["table.md"]
        text = markdown.read_text(encoding="utf-8")
        assert "baseline 'spin' has no finished run" in text
        assert "Paired comparison" not in text


def test_record_without_benchmarks_is_accepted(tmp_path: Path) -> None:
    record = make_record("sft", "sft", 0, set())
    del record["benchmarks"]
    folder = write_study(tmp_path / "s", [record], {})
    markdown = write_report(folder, paper_dir=tmp_path)["table.md"].read_text(encoding="utf-8")
    assert main_table_lines(markdown)[1:] == ["| sft | sft | 1 |"]


def test_knob_rows_plots_and_pairing_by_setting(knob_dir: Path) -> None:
    written = write_report(knob_dir)
    lines = main_table_lines(written["table.md"].read_text(encoding="utf-8"))
    labels = [line.split("|")[1].strip() for line in lines[1:]]
    assert labels == [
        "gsil-logistic beta=1 subsample=0.5 noise=0",
        "gsil-logistic beta=1 subsample=1 noise=0",
        "gsil-logistic beta=1 subsample=1 noise=0.2",
        "sft subsample=0.5 noise=0 (baseline)",
        "sft subsample=1 noise=0 (baseline)",
        "sft subsample=1 noise=0.2 (baseline)",
    ]
    # Seeds solve base+6+seed vs base+seed items at every setting: seed-averaged differences
    # 1/2, 1 x5, 1/2 -> +0.300, p = 2/2^7 = 0.016.
    assert row_of(lines, "gsil-logistic beta=1 subsample=0.5")[3] == "0.575 ± 0.318 †"
    assert "★" not in "".join(lines)  # data settings are not configurations to pick from
    for knob in ("data.quality.subsample", "data.quality.noise"):
        with Image.open(written[f"plots/knob-{knob}.png"]) as image:
            image.verify()
    header = written["table.csv"].read_text().splitlines()[0]
    assert header.startswith("method,loss,data.quality.subsample,data.quality.noise,seeds")


def test_knob_plot_fixes_other_knobs_at_their_modal_setting(knob_dir: Path) -> None:
    table = build_table(load_study(knob_dir))
    assert _modal_other_setting(table.rows, 0) == (("data.quality.noise", 0.0),)
    assert _modal_other_setting(table.rows, 1) == (("data.quality.subsample", 1.0),)
    assert {row.series for row in table.rows} == {"sft", STRONG}
    # A full grid ties every setting: the grid's first-listed (clean) value wins.
    full = [r for r in table.rows if r.knobs[1][1] == 0.0]
    grid = {"data.quality.subsample": [1.0, 0.5]}
    assert _modal_other_setting(full, 1) == (("data.quality.subsample", 0.5),)
    assert _modal_other_setting(full, 1, grid) == (("data.quality.subsample", 1.0),)


@pytest.mark.parametrize(
    ("objective", "best", "described"),
    [
        ({"metrics": {"mean": 1.0}, "direction": "maximize"}, STRONG, "the mean of the"),
        ({"metrics": {"mini/code/pass@1": 1.0}, "direction": "minimize"}, WEAK, "pass@1 (min"),
        ({"metrics": {"mini/math/accuracy": 0.5, "mini/code": 0.5}}, STRONG, "0.5 × mini/code"),
        ("mini/math:accuracy", STRONG, "by the sweep's objective, mini/math accuracy"),
    ],
)
def test_best_configuration_follows_the_sweep_objective(
    tmp_path: Path, objective: Any, best: str, described: str
) -> None:
    folder = write_study(tmp_path / "s", main_records(), MAIN_INFO | {"objective": objective})
    markdown = write_report(folder, paper_dir=tmp_path)["table.md"].read_text(encoding="utf-8")
    starred = [line for line in main_table_lines(markdown) if "★" in line]
    assert len(starred) == 1 and starred[0].startswith(f"| {best} ★")
    assert described in markdown


def test_unknown_objective_metric_is_a_note(tmp_path: Path) -> None:
    info = MAIN_INFO | {"objective": {"metrics": {"mini/chat/score": 1.0}}}
    folder = write_study(tmp_path / "s", main_records(), info)
    markdown = write_report(folder, paper_dir=tmp_path)["table.md"].read_text(encoding="utf-8")
    assert "★" not in markdown
    assert "objective metric 'mini/chat/score' is not a column" in markdown


def test_published_numbers_in_their_own_table(study_dir: Path) -> None:
    markdown = write_report(study_dir)["table.md"].read_text(encoding="utf-8")
    published = markdown.split("## Published numbers (not comparable to the mini suite)")[1]
    assert "58.14" in published and "63.16" in published and "36.58" in published
    assert "arXiv:2401.01335" in published and "arXiv:2410.10093" in published
    assert "not yet checked against the paper's own tables" in published
    assert not any("58.14" in line for line in main_table_lines(markdown))
    tex = (study_dir / "table.tex").read_text(encoding="utf-8")
    assert "Published numbers (not comparable to the mini suite)" in tex
    empty = study_dir / "no-papers"
    empty.mkdir()
    assert (
        "Published numbers" not in write_report(study_dir, paper_dir=empty)["table.md"].read_text()
    )


def test_published_ours_column_only_for_same_benchmark(tmp_path: Path) -> None:
    records = []
    for seed in range(2):
        record = make_record("sft", "sft", seed, set(range(10)))
        record["benchmarks"]["humaneval"] = bench("humaneval", "pass@1", CODE, set(range(3)))
        records.append(record)
    folder = write_study(tmp_path / "results" / "real", records, {})
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
    from gsil_bench.report_paper import default_paper_dir, load_published

    numbers = load_published(default_paper_dir(Path("/nonexistent/study")))
    by_method = {(n.file, n.method, n.benchmark): n for n in numbers}
    assert by_method[("spin.yaml", "SPIN iteration 3", "open-llm-leaderboard")].value == 63.16
    assert by_method[("spin.yaml", "SPIN iteration 2", "mt-bench")].value == 6.78
    gsil = [n for n in numbers if n.file == "gsil.yaml"]
    assert len(gsil) == 5 and not any(n.verified for n in gsil)
    assert all("secondary summaries" in n.note for n in gsil)


def test_bad_record_names_file(tmp_path: Path) -> None:
    folder = write_study(tmp_path / "s", [], {})
    (folder / "records" / "broken.json").write_text("{not json")
    with pytest.raises(UserError, match=r"broken\.json: not valid JSON"):
        load_study(folder)
    (folder / "records" / "broken.json").write_text(json.dumps({"method": "sft", "seed": 0}))
    with pytest.raises(UserError, match=r"broken\.json: missing key 'loss'"):
        load_study(folder)
    (folder / "records" / "broken.json").unlink()
    with pytest.raises(UserError, match="no run records yet"):
        load_study(folder)


def test_find_study_by_name_or_path(study_dir: Path, knob_dir: Path) -> None:
    results = study_dir.parent
    assert find_study("quick", results) == results / "quick"
    assert find_study(str(knob_dir), Path("/nonexistent")) == knob_dir
    assert list_studies(results) == ["dq", "quick"]
    with pytest.raises(
        UserError, match=r"no study folder at .*missing; studies under .*: dq, quick"
    ):
        find_study("missing", results)


def test_duplicate_seed_records_are_counted_once(tmp_path: Path) -> None:
    records = [make_record("sft", "sft", 0, set(range(10))) for _ in range(2)]
    records.append(make_record("sft", "sft", 1, set(range(12))))
    folder = write_study(tmp_path / "s", records, {})
    markdown = write_report(folder, paper_dir=tmp_path)["table.md"].read_text()
    assert row_of(main_table_lines(markdown), "sft")[2] == "2"
    assert "duplicate record for seed 0 of sft: kept 000.json, ignored 001.json" in markdown


def test_baseline_prefix_with_several_rows_uses_the_best(tmp_path: Path) -> None:
    records = [make_record("sft lr=0.0003", "sft", s, set(range(10 + s))) for s in range(2)]
    records += [make_record("sft lr=0.001", "sft", s, set(range(4 + s))) for s in range(2)]
    records += [make_record(STRONG, LOGISTIC, s, set(range(16 + s))) for s in range(2)]
    folder = write_study(tmp_path / "s", records, {"baseline": "sft"})
    markdown = write_report(folder, paper_dir=tmp_path)["table.md"].read_text(encoding="utf-8")
    lines = main_table_lines(markdown)
    assert row_of(lines, "sft lr=0.0003")[0] == "sft lr=0.0003 (baseline) ★"
    assert row_of(lines, "sft lr=0.001")[3].endswith("†")  # compared with the better sft
    assert "baseline 'sft' matches several rows; compared with sft lr=0.0003" in markdown
