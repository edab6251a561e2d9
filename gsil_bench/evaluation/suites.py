"""Named evaluation suites run on a model in memory: the mini suite and the paper benchmarks.

``mini`` scores the embedded suite's held-out items; ``gsm8k``, ``humaneval``, ``mt-bench`` and
``hh-safety`` are the paper benchmarks (``paper`` = all four); any other name is passed to
lm-evaluation-harness as a task name.
"""

from __future__ import annotations

import time
from typing import Any

from gsil_bench.config import EvalConfig
from gsil_bench.errors import UserError
from gsil_bench.evaluation.result import BenchmarkResult

PAPER_SUITES = ("gsm8k", "humaneval", "mt-bench", "hh-safety")


def expand_suites(names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        for item in PAPER_SUITES if name == "paper" else (name,):
            if item not in out:
                out.append(item)
    return out


def _mini(model, tokenizer, cfg: EvalConfig, suite) -> dict[str, BenchmarkResult]:
    from gsil_bench.evaluation.chat_generation import answer_conversations
    from gsil_bench.evaluation.mini import score_items

    if suite is None:
        raise UserError("the mini suite was not built for this run (data.source is not 'mini')")
    items = list(suite.test)
    if cfg.limit:  # the limit applies per benchmark, i.e. per mini-suite domain
        by_domain: dict[str, list] = {}
        for item in items:
            by_domain.setdefault(item.domain, []).append(item)
        items = [item for group in by_domain.values() for item in group[: cfg.limit]]
    began = time.perf_counter()
    answers = answer_conversations(
        model,
        tokenizer,
        [item.turns for item in items],
        max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.batch_size,
        progress=True,
    )
    generation_s = time.perf_counter() - began
    results = score_items(items, answers)
    for result in results.values():
        result.details.setdefault("generation_s", generation_s)
        result.details.setdefault("decoding", "greedy")
    return results


def _judge(cfg: EvalConfig, suite_name: str):
    from gsil_bench.evaluation.judges import make_judge

    if not cfg.judge:
        raise UserError(f"suite {suite_name!r} needs a judge: set eval.judge (e.g. --judge ...)")
    return make_judge(cfg.judge)


def _paper(name: str, model, tokenizer, cfg: EvalConfig) -> BenchmarkResult:
    if name == "gsm8k":
        from gsil_bench.evaluation.gsm8k import run_gsm8k

        return run_gsm8k(model, tokenizer, limit=cfg.limit, batch_size=cfg.batch_size)
    if name == "humaneval":
        from gsil_bench.evaluation.humaneval import run_humaneval

        return run_humaneval(model, tokenizer, limit=cfg.limit, batch_size=cfg.batch_size)
    if name == "mt-bench":
        from gsil_bench.evaluation.mtbench import run_mtbench

        return run_mtbench(
            model,
            tokenizer,
            _judge(cfg, name),
            questions_source=cfg.mtbench_questions,
            judge_prompts=cfg.judge_prompts,
            references=cfg.mtbench_references,
            limit=cfg.limit,
            batch_size=cfg.batch_size,
        )
    from gsil_bench.evaluation.hh_safety import run_hh_safety

    return run_hh_safety(
        model,
        tokenizer,
        _judge(cfg, name),
        source=cfg.hh_source,
        judge_prompts=cfg.judge_prompts,
        limit=cfg.limit,
        batch_size=cfg.batch_size,
    )


def evaluate_model(
    model, tokenizer, cfg: EvalConfig, *, suite: Any = None
) -> dict[str, BenchmarkResult]:
    """Every suite in ``cfg.suites``; results keyed by benchmark name."""
    results: dict[str, BenchmarkResult] = {}
    for name in expand_suites(cfg.suites):
        began = time.perf_counter()
        if name == "mini":
            results.update(_mini(model, tokenizer, cfg, suite))
            continue
        if name in PAPER_SUITES:
            produced = [_paper(name, model, tokenizer, cfg)]
        else:
            from gsil_bench.evaluation.lmeval_bridge import run_lmeval

            produced = run_lmeval(
                model,
                tokenizer,
                name,
                limit=cfg.limit,
                include_path=cfg.lmeval_include_path,
                batch_size=cfg.batch_size,
            )
        for result in produced:
            result.seconds = result.seconds or time.perf_counter() - began
            results[result.benchmark] = result
    return results
