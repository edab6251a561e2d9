"""evaluate_model: suites from the registry, the `paper` alias, lm-eval for other names."""

from __future__ import annotations

from gsil_bench.config import load_config
from gsil_bench.evaluation import lmeval_bridge
from gsil_bench.evaluation.benchmark import PAPER_BENCHMARKS
from gsil_bench.evaluation.evaluate import evaluate_model, expand_suites
from gsil_bench.evaluation.result import BenchmarkResult


def test_paper_expands_to_the_four_benchmarks_once_in_order():
    assert PAPER_BENCHMARKS == ("gsm8k", "humaneval", "mt-bench", "hh-safety")
    assert expand_suites(["mini", "paper"]) == [
        "mini",
        "gsm8k",
        "humaneval",
        "mt-bench",
        "hh-safety",
    ]
    assert expand_suites(["humaneval", "paper", "mini"]) == [
        "humaneval",
        "gsm8k",
        "mt-bench",
        "hh-safety",
        "mini",
    ]


def test_unregistered_names_go_to_lm_eval_with_the_shared_settings(monkeypatch):
    calls = []

    def fake_run_lmeval(model, tokenizer, tasks, **kwargs):
        calls.append((tasks, kwargs))
        return [
            BenchmarkResult("lm-eval/arc_easy", {"acc": 0.25}),
            BenchmarkResult("lm-eval/arc_challenge", {"acc": 0.5}, seconds=7.0),
        ]

    monkeypatch.setattr(lmeval_bridge, "run_lmeval", fake_run_lmeval)
    run = load_config(
        None,
        ["eval.suites=[arc]", "eval.limit=3", "eval.batch_size=2", "eval.lmeval_include_path=t"],
    )
    results = evaluate_model("model", "tokenizer", run)
    shared = {"limit": 3, "include_path": "t", "batch_size": 2}
    # no eval.options.arc: the harness's own few-shot count and prompt format
    defaults = {"num_fewshot": None, "apply_chat_template": False, "fewshot_as_multiturn": None}
    assert calls == [("arc", {**shared, **defaults})]
    assert list(results) == ["lm-eval/arc_easy", "lm-eval/arc_challenge"]
    assert results["lm-eval/arc_easy"].seconds > 0  # untimed results get the suite's time
    assert results["lm-eval/arc_challenge"].seconds == 7.0  # timed ones keep theirs
