"""The benchmark interface: every registered benchmark keeps the contract; options parsing."""

from __future__ import annotations

import pytest

from gsil_bench.config import EvalConfig
from gsil_bench.errors import UserError
from gsil_bench.evaluation.benchmark import (
    BENCHMARKS,
    Benchmark,
    BenchmarkOptions,
    FileScoring,
    file_scoring_of,
    parse_options,
    validate_options,
)


@pytest.mark.parametrize("name", BENCHMARKS.names())
def test_every_registered_benchmark_keeps_the_contract(name):
    benchmark = BENCHMARKS.get(name)
    assert isinstance(benchmark, Benchmark)
    assert benchmark.name == name and benchmark.summary
    assert issubclass(benchmark.Options, BenchmarkOptions)
    benchmark.Options()  # every option has a default: a suite name alone must be enough
    scoring = file_scoring_of(benchmark)
    assert scoring is None or isinstance(scoring, FileScoring)
    if scoring is not None and scoring.options is not None:
        assert set(scoring.options) <= set(benchmark.Options.model_fields)


def test_the_built_ins_and_which_score_files():
    assert {"mini", "gsm8k", "humaneval", "mt-bench", "hh-safety"} <= set(BENCHMARKS.names())
    scorers = {n for n in BENCHMARKS.names() if file_scoring_of(BENCHMARKS.get(n)) is not None}
    assert {"mini", "gsm8k", "humaneval"} <= scorers
    assert not {"mt-bench", "hh-safety"} & scorers  # their grading needs a judge


def test_parse_options_names_the_key():
    gsm8k = BENCHMARKS.get("gsm8k")
    assert parse_options(gsm8k, {}, "eval.options.gsm8k").source == "openai/gsm8k"
    assert parse_options(gsm8k, {"source": "x.jsonl"}, "w").source == "x.jsonl"
    with pytest.raises(UserError, match=r"^w\.sorce: .*no option 'sorce'.*'source'"):
        parse_options(gsm8k, {"sorce": "x"}, "w")
    humaneval = BENCHMARKS.get("humaneval")
    with pytest.raises(UserError, match=r"^w\.workers: .*greater than or equal to 1"):
        parse_options(humaneval, {"workers": 0}, "w")


def test_validate_options_and_eval_config():
    validate_options({"mt-bench": {"questions": "q.jsonl", "judge_prompts": "p.jsonl"}}, "e")
    with pytest.raises(UserError, match=r"^e\.mtbench: unknown benchmark 'mtbench'"):
        validate_options({"mtbench": {}}, "e")
    config = EvalConfig(options={"hh-safety": {"source": "hh.jsonl.gz"}})
    assert config.options == {"hh-safety": {"source": "hh.jsonl.gz"}}
    with pytest.raises(UserError, match=r"eval\.options\.hh-safety\.sauce"):
        EvalConfig(options={"hh-safety": {"sauce": "x"}})


def test_default_file_scoring_offers_every_option():
    class Plain:
        name = "plain"
        summary = "A plain benchmark."

    assert file_scoring_of(Plain()) == FileScoring(help="A plain benchmark.")  # type: ignore[arg-type]
