"""The benchmark ``mini``: the suite's held-out test items, one result per domain.

Registered lazily in :data:`gsil_bench.evaluation.benchmark.BENCHMARKS`. On a model it answers
the test items of the run's own suite (``data.mini``) greedily, scores them, adds the reference
answers' log-likelihood (``ref_logp``, see ``likelihood``) and a short hash of every item's
answers (``answer_sha``, for the "moved answers" control); on a file it scores answers
made elsewhere (``gsil-bench score mini FILE``), the items named by id in the suite of
``--seed`` or embedded whole in the line.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from gsil_bench.config import EvalConfig, RunConfig
from gsil_bench.errors import UserError
from gsil_bench.evaluation.benchmark import BenchmarkOptions, FileScoring
from gsil_bench.evaluation.result import BenchmarkResult
from gsil_bench.io import iter_jsonl_objects
from gsil_bench.minisuite.code_tasks import verdict_store
from gsil_bench.minisuite.config import MiniSuiteConfig
from gsil_bench.minisuite.scoring import score_items
from gsil_bench.minisuite.suite import shared_suite
from gsil_bench.minisuite.task import TestItem

# Fields that make a line an embedded item rather than a reference to one by id.
_ITEM_FIELDS = {"id", "domain", "turns", "check"}


class MiniOptions(BenchmarkOptions):
    """On a model the suite is the run's own (``data.mini``); ``seed`` is for scoring a file."""

    seed: int = Field(0, description="Seed of the mini suite the ids refer to.")
    answer_budget: float = Field(
        1.5,
        ge=0.0,
        description=(
            "Cut each domain's answers at this multiple of its longest reference answer, in"
            " tokens (plus 8), or at eval.max_new_tokens if lower; 0: eval.max_new_tokens only."
            " A looping answer then stops early instead of holding its whole batch to"
            " max_new_tokens."
        ),
    )


class MiniBenchmark:
    """Greedy answers to the suite's test items, scored per domain (``mini/math``, ...)."""

    name: ClassVar[str] = "mini"
    summary: ClassVar[str] = "the embedded mini suite's test items (math, code, dialogue, safety)"
    Options: ClassVar[type[BenchmarkOptions]] = MiniOptions
    file_scoring: ClassVar[FileScoring] = FileScoring(
        help="Score answers to the mini suite's test items, one result per domain.",
        file_help="JSONL: `id` (a mini-suite test item) and `responses` (one answer per turn).",
    )

    def run(
        self, model: Any, tokenizer: Any, cfg: EvalConfig, options: Any, run: RunConfig
    ) -> list[BenchmarkResult]:
        """Answer the test items of ``run.data.mini`` (``cfg.limit`` per domain) and score."""
        # Here, not at the top: it needs torch, which `gsil-bench score mini FILE` never does.
        from gsil_bench.minisuite.likelihood import add_ref_logp, reference_loglik

        suite = shared_suite(run.data.mini)
        items = _first_per_domain(suite.test, cfg.limit)
        began = time.perf_counter()
        answers = _answer(model, tokenizer, items, cfg, options.answer_budget)
        generation_s = time.perf_counter() - began
        # Code verdicts are shared through the cache by every process of a sweep.
        with verdict_store(Path(run.cache_dir) / "code-verdicts.jsonl"):
            results = list(score_items(items, answers).values())
        began = time.perf_counter()
        loglik = reference_loglik(
            model,
            tokenizer,
            items,
            batch_size=cfg.batch_size,
            max_prompt_tokens=run.data.max_prompt_tokens,
            max_length=run.data.max_length,
        )
        add_ref_logp(results, items, loglik)
        ref_logp_s = time.perf_counter() - began
        digests = {item.id: answer_digest(a) for item, a in zip(items, answers, strict=True)}
        for result in results:
            for row in result.items:
                row["answer_sha"] = digests[row["id"]]
            result.details.setdefault("generation_s", generation_s)
            result.details["ref_logp_s"] = ref_logp_s
            result.details.setdefault("decoding", "greedy")
            result.details["suite_fingerprint"] = suite.fingerprint()
        return results

    def content_fingerprint(self, run: RunConfig) -> str:
        """What this benchmark evaluates on for ``run``: its suite's content (test items), so
        that a cached evaluation is reused only for the same items."""
        return shared_suite(run.data.mini).fingerprint()

    def score_file(self, path: Path, options: Any) -> list[BenchmarkResult]:
        """Score a JSONL of answers: one result per domain, each with ``details["n"]``."""
        items, responses = read_answers(path, seed=options.seed)
        return list(score_items(items, responses).values())


def _answer(
    model: Any, tokenizer: Any, items: list[TestItem], cfg: EvalConfig, budget: float
) -> list[list[str]]:
    """Greedy answers to every turn of ``items``, one domain at a time, each domain's answers
    cut at ``budget`` times its longest reference (see ``MiniOptions.answer_budget``)."""
    from gsil_bench.evaluation.chat_generation import answer_conversations

    answers: dict[str, list[str]] = {}
    for domain in dict.fromkeys(item.domain for item in items):
        group = [item for item in items if item.domain == domain]
        limit = cfg.max_new_tokens
        if budget > 0:
            longest = max(
                len(tokenizer(text, add_special_tokens=False)["input_ids"])
                for item in group
                for text in item.turn_references or [item.reference]
            )
            limit = min(limit, math.ceil(budget * longest) + 8)
        replies = answer_conversations(
            model,
            tokenizer,
            [item.turns for item in group],
            max_new_tokens=limit,
            batch_size=cfg.batch_size,
            progress=True,
        )
        answers.update((item.id, reply) for item, reply in zip(group, replies, strict=True))
    return [answers[item.id] for item in items]


def answer_digest(answers: Sequence[str]) -> str:
    """A short hash of an item's answers (one per turn), kept per item as ``answer_sha``:
    enough to tell whether a run answers an item as its base model did (the "moved answers"
    control) without storing the text, which would triple a record's size."""
    payload = json.dumps(list(answers), ensure_ascii=False).encode()
    return hashlib.sha256(payload).hexdigest()[:12]


def _first_per_domain(items: list[TestItem], limit: int | None) -> list[TestItem]:
    """The first ``limit`` items of each domain: a limit applies per benchmark, and every
    domain is a benchmark of its own."""
    if not limit:
        return list(items)
    by_domain: dict[str, list[TestItem]] = {}
    for item in items:
        by_domain.setdefault(item.domain, []).append(item)
    return [item for group in by_domain.values() for item in group[:limit]]


def read_answers(path: Path, *, seed: int) -> tuple[list[TestItem], list[list[str]]]:
    """Items and answers of a mini-suite file. A line names its item by ``id`` (a test item of
    the suite of ``seed``) or embeds the whole item (``id``, ``domain``, ``turns``, ``check``,
    ...); ``responses`` holds one answer per turn, ``response`` is a one-turn shorthand."""
    known: dict[str, TestItem] | None = None
    names = {f.name for f in fields(TestItem)}
    items, responses = [], []
    for line_no, record in iter_jsonl_objects(path):
        where = f"{path}:{line_no}"
        answers = record.get("responses", [record["response"]] if "response" in record else None)
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise UserError(f"{where}: field 'responses' missing or not a list of strings")
        if set(record) >= _ITEM_FIELDS:
            item = TestItem(**{"reference": "", **{k: v for k, v in record.items() if k in names}})
        else:
            if known is None:
                suite = shared_suite(MiniSuiteConfig.model_validate({"seed": seed}))
                known = {i.id: i for i in suite.test}
            if record.get("id") not in known:
                raise UserError(f"{where}: unknown mini-suite item id {record.get('id')!r}")
            item = known[record["id"]]
        if len(answers) != len(item.turns):
            raise UserError(f"{where}: {item.id} has {len(item.turns)} turns, got {len(answers)}")
        items.append(item)
        responses.append(answers)
    return items, responses
