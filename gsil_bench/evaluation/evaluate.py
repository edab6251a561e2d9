"""Evaluate a model in memory on the run's suites, each looked up in the benchmark registry.

A suite name is a registered benchmark (:data:`gsil_bench.evaluation.benchmark.BENCHMARKS`:
the built-ins, the mini suite, plugins), the alias ``paper`` for the GSIL paper's four
benchmarks, or else an lm-evaluation-harness task name.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from gsil_bench.evaluation.benchmark import (
    BENCHMARKS,
    PAPER,
    PAPER_BENCHMARKS,
    LmEvalOptions,
    LmEvalTask,
    parse_options,
)
from gsil_bench.evaluation.result import BenchmarkResult

if TYPE_CHECKING:
    from gsil_bench.config import RunConfig


def expand_suites(names: list[str]) -> list[str]:
    """Suite names with ``paper`` expanded, each name once, in order of first mention."""
    out: list[str] = []
    for name in names:
        for item in PAPER_BENCHMARKS if name == PAPER else (name,):
            if item not in out:
                out.append(item)
    return out


def run_suite(name: str, model: Any, tokenizer: Any, run: RunConfig) -> list[BenchmarkResult]:
    """The results of one suite: a registered benchmark, or an lm-eval task."""
    cfg = run.eval
    if name in BENCHMARKS:
        benchmark = BENCHMARKS.get(name)
        options = parse_options(benchmark, cfg.options.get(name, {}), f"eval.options.{name}")
        return benchmark.run(model, tokenizer, cfg, options, run)
    from gsil_bench.evaluation.lmeval_bridge import run_lmeval

    task = parse_options(LmEvalTask(name), cfg.options.get(name, {}), f"eval.options.{name}")
    assert isinstance(task, LmEvalOptions)
    return run_lmeval(
        model,
        tokenizer,
        name,
        limit=cfg.limit,
        include_path=cfg.lmeval_include_path,
        batch_size=cfg.batch_size,
        num_fewshot=task.num_fewshot,
        apply_chat_template=task.apply_chat_template,
        fewshot_as_multiturn=task.fewshot_as_multiturn,
    )


def evaluate_model(model: Any, tokenizer: Any, run: RunConfig) -> dict[str, BenchmarkResult]:
    """Every suite in ``run.eval.suites``; results keyed by benchmark name (``result.benchmark``).

    A result that did not time itself gets the wall time of its suite.
    """
    results: dict[str, BenchmarkResult] = {}
    for name in expand_suites(run.eval.suites):
        began = time.perf_counter()
        for result in run_suite(name, model, tokenizer, run):
            result.seconds = result.seconds or time.perf_counter() - began
            results[result.benchmark] = result
    return results
