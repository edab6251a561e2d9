"""MT-Bench: two-turn questions answered by the model, graded 1-10 by a judge (single answer).

Questions, judge prompt templates and reference answers are data in FastChat's formats:

- questions: ``question.jsonl`` (``question_id``, ``category``, ``turns``, optional
  ``reference``), a directory holding it (FastChat's ``data/`` or ``data/mt_bench/`` layout),
  or ``hub`` for ``HuggingFaceH4/mt_bench_prompts`` (``hub:OWNER/NAME`` or ``OWNER/NAME`` for a
  copy; see :func:`gsil_bench.evaluation.files.hub_name`);
- templates: ``judge_prompts.jsonl`` (``name``, ``type``, ``system_prompt``,
  ``prompt_template``, ``output_format``);
- references: ``reference_answer/gpt-4.jsonl`` (FastChat's answer format); without that file,
  the questions' own ``reference`` fields are used.

Any file may also be ``hf://datasets/OWNER/NAME/PATH`` (or ``hf://spaces/...``). Grading
follows FastChat: ``single-v1`` for turn 1, ``single-v1-multi-turn`` for turn 2, the ``-math-``
variants with the reference for math/reasoning/coding, and the rating is the first ``[[x]]`` in
the judgement (``[x]`` as a fallback). A judgement without a rating in 1..10 counts as -1:
excluded from the means and counted in ``details["n_unrated"]``.

Answers follow ``temperatures``: ``fastchat`` (default) samples each category at FastChat's
temperature with a seed from the run's, ``greedy`` decodes every answer greedily (see
:mod:`gsil_bench.evaluation.benchmarks.mtbench_sampling`, which cites FastChat's files).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from gsil_bench.errors import UserError
from gsil_bench.evaluation.benchmark import (
    BenchmarkOptions,
    answer_length,
    parse_options,
    register_benchmark,
)
from gsil_bench.evaluation.benchmarks.mtbench_sampling import (
    GREEDY_BELOW,
    TemperaturePolicy,
    answer_questions,
    answer_temperature,
)
from gsil_bench.evaluation.files import find_file, hub_name, iter_jsonl_file
from gsil_bench.evaluation.judging.base import Judge, is_reward_judge, judge_for
from gsil_bench.evaluation.judging.templates import (
    TEMPLATE_FILE_NAMES,
    JudgeTemplate,
    load_judge_templates,
)
from gsil_bench.evaluation.result import BenchmarkResult, mean_or_nan
from gsil_bench.hub_access import load_hub_dataset

if TYPE_CHECKING:
    from gsil_bench.config import EvalConfig, RunConfig

HUB_QUESTIONS = "HuggingFaceH4/mt_bench_prompts"
# FastChat's rule, not data: these categories are graded against a reference answer.
NEED_REF_CATEGORIES = ("math", "reasoning", "coding")
RATING = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
RATING_FALLBACK = re.compile(r"\[\s*(\d+(?:\.\d+)?)\s*\]")
REFERENCE_FILE_NAMES = ("reference_answer_gpt-4.jsonl", "reference_answer/gpt-4.jsonl")

ANSWER_TOKENS = 1024  # FastChat's gen_model_answer default


@dataclass(frozen=True)
class Question:
    question_id: int | str
    category: str
    turns: tuple[str, ...]
    reference: tuple[str, ...] = ()


def load_questions(source: str | Path = "hub") -> list[Question]:
    hub = hub_name(source, HUB_QUESTIONS)
    if hub is not None:
        rows = load_hub_dataset(
            hub,
            what="MT-Bench questions",
            hint="give eval.options.mt-bench.questions a local question.jsonl (FastChat's)",
            split="train",
        )
        numbered = [(f"hub:{hub} row {i}", dict(r)) for i, r in enumerate(rows, 1)]
    else:
        path = Path(str(source)).expanduser()
        if path.is_dir():
            found = find_file(path, ["question.jsonl", "mt_bench/question.jsonl"])
            if found is None:
                raise UserError(f"{path}: no question.jsonl (or mt_bench/question.jsonl) here")
            path = found
        numbered = list(iter_jsonl_file(path))
    questions = []
    for where, row in numbered:
        turns = row.get("turns", row.get("prompt"))
        qid = row.get("question_id", row.get("prompt_id"))
        if not turns or qid is None or "category" not in row:
            raise UserError(f"{where}: needs question_id, category and turns")
        reference = tuple(r for r in (row.get("reference") or []) if r)
        questions.append(Question(qid, row["category"], tuple(turns), reference))
    return questions


def load_answers(source: str | Path) -> dict[Any, list[str]]:
    """FastChat's answer files (``question_id``, ``choices[0].turns``) -> turns per question.

    Used for reference answers and for grading answers a model produced elsewhere.
    """
    answers = {}
    for where, row in iter_jsonl_file(source):
        try:
            answers[row["question_id"]] = list(row["choices"][0]["turns"])
        except (KeyError, IndexError, TypeError):
            raise UserError(f"{where}: an answer lacks question_id or choices[0].turns") from None
    return answers


def parse_rating(judgement: str) -> float:
    """The first ``[[x]]`` (else ``[x]``) as in FastChat; -1 when absent or outside 1..10."""
    match = RATING.search(judgement) or RATING_FALLBACK.search(judgement)
    if not match:
        return -1.0
    rating = float(match.group(1))
    return rating if 1.0 <= rating <= 10.0 else -1.0


def _template(templates: Mapping[str, JudgeTemplate], name: str) -> JudgeTemplate:
    if name not in templates:
        raise UserError(f"judge templates have no {name!r} (have: {', '.join(sorted(templates))})")
    return templates[name]


def _grading_requests(
    questions: Sequence[Question],
    answers: Mapping[Any, Sequence[str]],
    templates: Mapping[str, JudgeTemplate],
    references: Mapping[Any, Sequence[str]] | None,
) -> tuple[list[list[dict[str, str]]], list[dict[str, Any]]]:
    """One judge prompt and one item per graded turn (FastChat's template choice per turn)."""
    items: list[dict[str, Any]] = []
    prompts = []
    for q in questions:
        answer = list(answers.get(q.question_id, []))
        n_turns = min(len(q.turns), 2)
        if len(answer) < n_turns:
            raise UserError(f"MT-Bench question {q.question_id}: {len(answer)} answer turn(s)")
        ref = list((references or {}).get(q.question_id) or q.reference)
        for turn in range(1, n_turns + 1):
            use_ref = q.category in NEED_REF_CATEGORIES and len(ref) >= turn
            name = ("single-math-v1" if use_ref else "single-v1") + (
                "-multi-turn" if turn == 2 else ""
            )
            fields = {f"ref_answer_{i + 1}": r for i, r in enumerate(ref[:turn])} if use_ref else {}
            if turn == 1:
                fields |= {"question": q.turns[0], "answer": answer[0]}
            else:
                fields |= {"question_1": q.turns[0], "question_2": q.turns[1]}
                fields |= {"answer_1": answer[0], "answer_2": answer[1]}
            prompts.append(_template(templates, name).messages(**fields))
            items.append(
                {
                    "id": f"{q.question_id}-turn{turn}",
                    "question_id": q.question_id,
                    "category": q.category,
                    "turn": turn,
                    "template": name,
                    "answer": answer[turn - 1],
                }
            )
    return prompts, items


def grade_mtbench(
    questions: Sequence[Question],
    answers: Mapping[Any, Sequence[str]],
    judge: Judge,
    templates: Mapping[str, JudgeTemplate],
    references: Mapping[Any, Sequence[str]] | None = None,
) -> BenchmarkResult:
    """Grade given answers (turns per question id) with single-answer grading, turns 1 and 2."""
    start = time.perf_counter()
    prompts, items = _grading_requests(questions, answers, templates, references)
    judgements = judge.complete(prompts)
    for item, judgement in zip(items, judgements, strict=True):
        rating = parse_rating(judgement)
        item.update(score=rating, valid=rating > 0, judgement=judgement)
    rated = [it for it in items if it["valid"]]
    metrics = {
        "score": mean_or_nan([it["score"] for it in rated]),
        "score_turn1": mean_or_nan([it["score"] for it in rated if it["turn"] == 1]),
        "score_turn2": mean_or_nan([it["score"] for it in rated if it["turn"] == 2]),
    }
    for category in dict.fromkeys(q.category for q in questions):
        scores = [it["score"] for it in rated if it["category"] == category]
        metrics[f"score/{category}"] = mean_or_nan(scores)
    details = {
        "judge": dict(judge.identity),
        "templates": sorted({it["template"] for it in items}),
        "n_questions": len(questions),
        "n_items": len(items),
        "n_unrated": len(items) - len(rated),
        "judge_seconds": time.perf_counter() - start,
    }
    stats = getattr(judge, "stats", None)  # request/retry/cache counts of HTTP judges
    if stats is not None:
        details["judge_stats"] = dict(stats)
    return BenchmarkResult("mt-bench", metrics, items, time.perf_counter() - start, details)


def select_questions(
    questions: Sequence[Question], limit: int | None = None, ids: Sequence[Any] | None = None
) -> list[Question]:
    """``ids`` picks by question id; ``limit`` takes questions round-robin across categories
    (file order within each), so a small limit still covers every category it can."""
    chosen = list(questions)
    if ids is not None:
        by_id = {q.question_id: q for q in questions}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise UserError(f"MT-Bench question id(s) not found: {missing}")
        chosen = [by_id[i] for i in ids]
    if limit is None or limit >= len(chosen):
        return chosen
    buckets: dict[str, list[Question]] = {}
    for q in chosen:
        buckets.setdefault(q.category, []).append(q)
    picked: list[Question] = []
    while len(picked) < limit:
        for bucket in buckets.values():
            if bucket and len(picked) < limit:
                picked.append(bucket.pop(0))
    return picked


def run_mtbench(
    model,
    tokenizer,
    judge: Judge,
    *,
    questions_source: str | Path = "hub",
    judge_prompts: str | Path | None = None,
    references: str | Path | None = None,
    limit: int | None = None,
    question_ids: Sequence[Any] | None = None,
    max_new_tokens: int = ANSWER_TOKENS,
    batch_size: int = 8,
    temperatures: TemperaturePolicy = "fastchat",
    seed: int = 0,
    progress: bool = True,
) -> BenchmarkResult:
    """Answer MT-Bench with the model (turn 2 sees its own turn-1 answer), then grade it.

    ``judge_prompts`` and ``references`` default to the files next to a local question file;
    with questions from the Hub, ``judge_prompts`` must be given. ``temperatures`` and ``seed``
    (the run's) choose the decoding, see the module docstring.
    """
    start = time.perf_counter()
    questions = select_questions(load_questions(questions_source), limit, question_ids)
    local = Path(str(questions_source)).expanduser()
    # Defaults come from FastChat's layout next to a local question file; the Hub has none.
    base = (local if local.is_dir() else local.parent) if local.exists() else None
    if judge_prompts is None:
        judge_prompts = base and find_file(base, TEMPLATE_FILE_NAMES)
        if judge_prompts is None:
            raise UserError(
                f"MT-Bench judge templates not found next to {questions_source}; "
                "pass judge_prompts=PATH to FastChat's judge_prompts.jsonl"
            )
    if references is None and base is not None:
        references = find_file(base, REFERENCE_FILE_NAMES)
    templates = load_judge_templates(judge_prompts)
    refs = load_answers(references) if references is not None else None
    generated = answer_questions(
        model,
        tokenizer,
        questions,
        policy=temperatures,
        run_seed=seed,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        progress=progress,
    )
    generation_seconds = time.perf_counter() - start
    answers = {q.question_id: a for q, a in zip(questions, generated, strict=True)}
    result = grade_mtbench(questions, answers, judge, templates, refs)
    result.seconds = time.perf_counter() - start
    used = {q.question_id: answer_temperature(q.category, temperatures) for q in questions}
    for item in result.items:
        item["temperature"] = used[item["question_id"]]
    result.details.update(
        temperatures={
            "policy": temperatures,
            "by_category": {q.category: used[q.question_id] for q in questions},
            "seed": seed,
            "greedy_below": GREEDY_BELOW,
        },
        generation_seconds=generation_seconds,
        questions_source=str(questions_source),
        judge_prompts=str(judge_prompts),
        references=str(references) if references is not None else "questions' own",
        max_new_tokens=max_new_tokens,
    )
    return result


# --- the registered benchmark ---------------------------------------------------------------------
class MTBenchOptions(BenchmarkOptions):
    questions: str = Field(
        "hub", description="question.jsonl, a FastChat data folder, or hub / hub:OWNER/NAME."
    )
    judge_prompts: str | None = Field(
        None, description="FastChat's judge_prompts.jsonl (default: next to local questions)."
    )
    references: str | None = Field(
        None, description="Reference answers in FastChat's answer format (default: beside)."
    )
    temperatures: TemperaturePolicy = Field(
        "fastchat",
        description="fastchat: each category at FastChat's temperature, sampled with a seed "
        "from the run's seed; greedy: every answer greedy.",
    )


@register_benchmark
class MTBench:
    """MT-Bench single-answer grading by the run's judge (``eval.judge``)."""

    name: ClassVar[str] = "mt-bench"
    summary: ClassVar[str] = "MT-Bench: two-turn answers graded 1-10 by a judge"
    Options: ClassVar[type[BenchmarkOptions]] = MTBenchOptions
    file_scoring: ClassVar[None] = None  # grading needs a judge and the questions, not a file

    def run(
        self, model: Any, tokenizer: Any, cfg: EvalConfig, options: Any, run: RunConfig
    ) -> list[BenchmarkResult]:
        judge = judge_for(cfg.judge, self.name)
        if is_reward_judge(judge):
            raise UserError(f"{self.name} needs a judge that writes ratings, not a reward model")
        result = run_mtbench(
            model,
            tokenizer,
            judge,
            questions_source=options.questions,
            judge_prompts=options.judge_prompts,
            references=options.references,
            limit=cfg.limit,
            batch_size=cfg.batch_size,
            max_new_tokens=answer_length(cfg, ANSWER_TOKENS),
            temperatures=options.temperatures,
            seed=run.seed,
        )
        return [result]

    def content_fingerprint(self, run: RunConfig) -> str:
        """What the answers depend on beyond ``eval``: the run's seed when they are sampled
        (a cached base-model evaluation is reused only for the same draws)."""
        raw = run.eval.options.get(self.name, {})
        options = parse_options(self, raw, f"eval.options.{self.name}")
        assert isinstance(options, MTBenchOptions)
        policy = options.temperatures
        return f"temperatures={policy}" + (f" seed={run.seed}" if policy == "fastchat" else "")

    def score_file(self, path: Path, options: Any) -> list[BenchmarkResult]:
        raise UserError(f"{self.name} cannot score a file: its answers are graded by a judge")
