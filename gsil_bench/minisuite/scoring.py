"""Score answers to the mini suite's test items, one BenchmarkResult per domain.

Each domain module holds its own scorer (``math_tasks.score``, ...) next to the generator whose
items it scores; the metrics are described there. This module checks the shapes and hands each
domain its items. An empty answer scores 0 everywhere, a refusal included.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from gsil_bench.evaluation.result import BenchmarkResult
from gsil_bench.minisuite import code_tasks, dialogue_tasks, math_tasks, safety_tasks
from gsil_bench.minisuite.config import DOMAINS
from gsil_bench.minisuite.task import Scored, TestItem

Scorer = Callable[[list[TestItem], list[list[str]], int], Scored]
SCORERS: dict[str, Scorer] = {
    "math": math_tasks.score,
    "code": code_tasks.score,
    "dialogue": dialogue_tasks.score,
    "safety": safety_tasks.score,
}


def score_items(
    items: Sequence[TestItem], responses: Sequence[Sequence[str]], *, workers: int = 2
) -> dict[str, BenchmarkResult]:
    """``responses[i]`` holds the model's answers to ``items[i]``, one per turn. Returns the
    results keyed by benchmark name ("mini/math", ...), for the domains present, in suite order."""
    if len(items) != len(responses):
        raise ValueError(f"{len(items)} items but {len(responses)} response lists")
    for item, answers in zip(items, responses, strict=True):
        if len(answers) != len(item.turns):
            raise ValueError(f"{item.id}: {len(item.turns)} turns but {len(answers)} answers")
    results: dict[str, BenchmarkResult] = {}
    for domain in sorted({item.domain for item in items}, key=_domain_order):
        chosen = [(item, list(answers)) for item, answers in zip(items, responses, strict=True)]
        chosen = [(item, answers) for item, answers in chosen if item.domain == domain]
        began = time.perf_counter()
        metrics, rows = SCORERS[domain]([i for i, _ in chosen], [a for _, a in chosen], workers)
        results[f"mini/{domain}"] = BenchmarkResult(
            benchmark=f"mini/{domain}",
            metrics=metrics,
            items=rows,
            seconds=time.perf_counter() - began,
            details={"n": len(rows)},
        )
    return results


def _domain_order(domain: str) -> int:
    if domain not in DOMAINS:
        raise ValueError(f"unknown mini-suite domain {domain!r}")
    return DOMAINS.index(domain)
