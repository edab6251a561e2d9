"""The worked example of ARCHITECTURE.md: a benchmark defined in one module (here, this test
module) is usable by name in ``eval.suites``, configurable as ``eval.options.brevity.*`` and
scored from a file by ``gsil-bench score brevity`` -- without touching anything else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import Field
from typer.testing import CliRunner

from gsil_bench.cli.score import register
from gsil_bench.config import load_config
from gsil_bench.errors import UserError
from gsil_bench.evaluation.benchmark import BENCHMARKS, BenchmarkOptions, register_benchmark
from gsil_bench.evaluation.chat_generation import answer_messages
from gsil_bench.evaluation.evaluate import evaluate_model
from gsil_bench.evaluation.result import BenchmarkResult
from gsil_bench.io import read_jsonl

# --- the example benchmark: this is all a new benchmark needs ------------------------------------
QUESTIONS = ["What is 2 + 2?", "Name a colour.", "Say hello."]


class BrevityOptions(BenchmarkOptions):
    max_words: int = Field(5, ge=1, description="Longest answer that still counts as brief.")


def score_answers(answers: list[str], max_words: int) -> BenchmarkResult:
    items = [
        {"id": i, "score": float(len(a.split()) <= max_words), "answer": a}
        for i, a in enumerate(answers)
    ]
    rate = sum(item["score"] for item in items) / len(items) if items else float("nan")
    return BenchmarkResult("brevity", {"brief_rate": rate, "n": float(len(items))}, items)


@register_benchmark
class Brevity:
    name = "brevity"
    summary = "Share of answers with at most max_words words."
    Options = BrevityOptions

    def run(self, model, tokenizer, cfg, options, run) -> list[BenchmarkResult]:
        chats = [[{"role": "user", "content": q}] for q in QUESTIONS[: cfg.limit]]
        answers = answer_messages(
            model, tokenizer, chats, max_new_tokens=cfg.max_new_tokens, progress=False
        )
        return [score_answers(answers, options.max_words)]

    def score_file(self, path: Path, options: Any) -> list[BenchmarkResult]:
        return [score_answers([r["answer"] for r in read_jsonl(path)], options.max_words)]


# --- the tests -----------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def _forget_the_example():
    yield
    BENCHMARKS.forget("brevity")  # other test modules see the registry as shipped


def test_evaluate_model_runs_it_by_name_with_its_options(tiny_model, tiny_tokenizer):
    run = load_config(
        None,
        [
            "eval.suites=[brevity]",
            "eval.options.brevity.max_words=2",
            "eval.limit=2",
            "eval.max_new_tokens=4",
        ],
    )
    results = evaluate_model(tiny_model, tiny_tokenizer, run)
    assert list(results) == ["brevity"]
    result = results["brevity"]
    answers = [item["answer"] for item in result.items]
    assert len(answers) == 2  # eval.limit reached the benchmark
    brief = [len(answer.split()) <= 2 for answer in answers]  # eval.options reached it too
    assert result.metrics == {"brief_rate": sum(brief) / 2, "n": 2.0}
    assert result.seconds > 0  # timed by evaluate_model, as every suite


def test_its_options_are_checked_when_the_config_loads():
    with pytest.raises(UserError, match=r"eval\.options\.brevity\.max_wrds.*'max_words'"):
        load_config(None, ["eval.options.brevity.max_wrds=3"])
    with pytest.raises(UserError, match=r"eval\.options\.brevity\.max_words: .*greater than"):
        load_config(None, ["eval.options.brevity.max_words=0"])
    with pytest.raises(UserError, match=r"eval\.options\.brevty: .*Did you mean 'brevity'"):
        load_config(None, ["eval.options.brevty.max_words=3"])


def _score_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """A callback keeps `score` a subcommand, as in the real app."""

    register(app)
    return app


def test_score_command_comes_from_the_registry(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps({"answer": a}) + "\n" for a in ["4", "It is four."]))
    runner = CliRunner()
    result = runner.invoke(_score_app(), ["score", "brevity", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"benchmark": "brevity", "brief_rate": 1.0, "n": 2}
    strict = runner.invoke(_score_app(), ["score", "brevity", str(path), "--max-words", "1"])
    assert strict.exit_code == 0, strict.output
    assert "brief_rate" in strict.output and "0.5000" in strict.output
    listed = runner.invoke(_score_app(), ["score", "--help"])
    assert "brevity" in listed.output and "Share of answers" in listed.output
