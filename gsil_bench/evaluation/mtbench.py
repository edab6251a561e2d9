"""MT-Bench: two-turn questions answered by the model, graded 1-10 by a judge (single answer).

Questions, judge prompt templates and reference answers are data in FastChat's formats:

- questions: ``question.jsonl`` (``question_id``, ``category``, ``turns``, optional
  ``reference``), a directory holding it (FastChat's ``data/`` or ``data/mt_bench/`` layout),
  or ``hub`` for ``HuggingFaceH4/mt_bench_prompts`` (``hub:OWNER/NAME`` for a copy);
- templates: ``judge_prompts.jsonl`` (``name``, ``type``, ``system_prompt``,
  ``prompt_template``, ``output_format``);
- references: ``reference_answer/gpt-4.jsonl`` (FastChat's answer format); without that file,
  the questions' own ``reference`` fields are used.

Any file may also be ``hf://datasets/OWNER/NAME/PATH`` (or ``hf://spaces/...``). Grading
follows FastChat: ``single-v1`` for turn 1, ``single-v1-multi-turn`` for turn 2, the ``-math-``
variants with the reference for math/reasoning/coding, and the rating is the first ``[[x]]`` in
the judgement (``[x]`` as a fallback). A judgement without a rating in 1..10 counts as -1:
excluded from the means and counted in ``details["n_unrated"]``. Answers are greedy.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gsil_bench.errors import UserError
from gsil_bench.evaluation.judges import Judge
from gsil_bench.evaluation.result import BenchmarkResult

HUB_QUESTIONS = "HuggingFaceH4/mt_bench_prompts"
# FastChat's rule, not data: these categories are graded against a reference answer.
NEED_REF_CATEGORIES = ("math", "reasoning", "coding")
RATING = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
RATING_FALLBACK = re.compile(r"\[\s*(\d+(?:\.\d+)?)\s*\]")


@dataclass(frozen=True)
class Question:
    question_id: int | str
    category: str
    turns: tuple[str, ...]
    reference: tuple[str, ...] = ()


@dataclass(frozen=True)
class JudgeTemplate:
    name: str
    type: str
    system_prompt: str
    prompt_template: str
    output_format: str

    def messages(self, **fields: str) -> list[dict[str, str]]:
        try:
            user = self.prompt_template.format(**fields)
        except (KeyError, IndexError) as err:
            raise UserError(f"judge template {self.name!r} needs field {err}") from None
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*system, {"role": "user", "content": user}]


def resolve_file(source: str | Path) -> Path:
    """A local path, or ``hf://{datasets,spaces,models}/OWNER/NAME/PATH`` fetched from the Hub."""
    text = str(source)
    if text.startswith("hf://"):
        parts = text[len("hf://") :].split("/", 3)
        kinds = {"datasets": "dataset", "spaces": "space", "models": "model"}
        if len(parts) < 4 or parts[0] not in kinds:
            raise UserError(f"{text}: expected hf://datasets|spaces|models/OWNER/NAME/PATH")
        from huggingface_hub import hf_hub_download

        repo_id = f"{parts[1]}/{parts[2]}"
        return Path(hf_hub_download(repo_id, parts[3], repo_type=kinds[parts[0]]))
    path = Path(text).expanduser()
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    return path


def read_jsonl(source: str | Path) -> list[dict[str, Any]]:
    path = resolve_file(source)
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise UserError(f"{path}:{number}: not JSON ({err.msg})") from None
    return records


def _find(directory: Path, names: Sequence[str]) -> Path | None:
    return next((directory / n for n in names if (directory / n).is_file()), None)


def load_questions(source: str | Path = "hub") -> list[Question]:
    text = str(source)
    if text == "hub" or text.startswith("hub:"):
        from datasets import load_dataset

        name = text.partition(":")[2] or HUB_QUESTIONS
        rows = [dict(r) for r in load_dataset(name, split="train")]
        origin = f"hub:{name}"
    else:
        path = Path(text).expanduser()
        if path.is_dir():
            found = _find(path, ["question.jsonl", "mt_bench/question.jsonl"])
            if found is None:
                raise UserError(f"{path}: no question.jsonl (or mt_bench/question.jsonl) here")
            path = found
        rows, origin = read_jsonl(path), str(path)
    questions = []
    for number, row in enumerate(rows, 1):
        turns = row.get("turns", row.get("prompt"))
        qid = row.get("question_id", row.get("prompt_id"))
        if not turns or qid is None or "category" not in row:
            raise UserError(f"{origin} record {number}: needs question_id, category and turns")
        reference = tuple(r for r in (row.get("reference") or []) if r)
        questions.append(Question(qid, row["category"], tuple(turns), reference))
    return questions


def load_judge_templates(source: str | Path) -> dict[str, JudgeTemplate]:
    """FastChat's ``judge_prompts.jsonl`` (or a directory holding it), keyed by name."""
    path = Path(str(source)).expanduser()
    if path.is_dir():
        found = _find(path, ["judge_prompts.jsonl", "../judge_prompts.jsonl"])
        if found is None:
            raise UserError(f"{path}: no judge_prompts.jsonl here")
        source = found
    templates = {}
    for row in read_jsonl(source):
        try:
            templates[row["name"]] = JudgeTemplate(
                row["name"],
                row.get("type", ""),
                row.get("system_prompt", ""),
                row["prompt_template"],
                row.get("output_format", ""),
            )
        except KeyError as err:
            raise UserError(f"{source}: a judge template lacks {err}") from None
    return templates


def load_answers(source: str | Path) -> dict[Any, list[str]]:
    """FastChat's answer files (``question_id``, ``choices[0].turns``) -> turns per question.

    Used for reference answers and for grading answers a model produced elsewhere.
    """
    answers = {}
    for row in read_jsonl(source):
        try:
            answers[row["question_id"]] = list(row["choices"][0]["turns"])
        except (KeyError, IndexError, TypeError):
            raise UserError(f"{source}: an answer lacks question_id or choices[0].turns") from None
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


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def grade_mtbench(
    questions: Sequence[Question],
    answers: Mapping[Any, Sequence[str]],
    judge: Judge,
    templates: Mapping[str, JudgeTemplate],
    references: Mapping[Any, Sequence[str]] | None = None,
) -> BenchmarkResult:
    """Grade given answers (turns per question id) with single-answer grading, turns 1 and 2."""
    start = time.perf_counter()
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
    judgements = judge.complete(prompts)
    for item, judgement in zip(items, judgements, strict=True):
        rating = parse_rating(judgement)
        item.update(score=rating, valid=rating > 0, judgement=judgement)
    rated = [it for it in items if it["valid"]]
    metrics = {
        "score": _mean([it["score"] for it in rated]),
        "score_turn1": _mean([it["score"] for it in rated if it["turn"] == 1]),
        "score_turn2": _mean([it["score"] for it in rated if it["turn"] == 2]),
    }
    for category in dict.fromkeys(q.category for q in questions):
        scores = [it["score"] for it in rated if it["category"] == category]
        metrics[f"score/{category}"] = _mean(scores)
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
    max_new_tokens: int = 1024,
    batch_size: int = 8,
    progress: bool = True,
) -> BenchmarkResult:
    """Answer MT-Bench with the model (turn 2 sees its own turn-1 answer), then grade it.

    ``judge_prompts`` and ``references`` default to the files next to a local question file;
    with questions from the Hub, ``judge_prompts`` must be given.
    """
    from gsil_bench.evaluation.chat_generation import answer_conversations

    start = time.perf_counter()
    questions = select_questions(load_questions(questions_source), limit, question_ids)
    local = Path(str(questions_source)).expanduser()
    # Defaults come from FastChat's layout next to a local question file; the Hub has none.
    base = (local if local.is_dir() else local.parent) if local.exists() else None
    if judge_prompts is None:
        judge_prompts = base and _find(base, ["judge_prompts.jsonl", "../judge_prompts.jsonl"])
        if judge_prompts is None:
            raise UserError(
                f"MT-Bench judge templates not found next to {questions_source}; "
                "pass judge_prompts=PATH to FastChat's judge_prompts.jsonl"
            )
    if references is None and base is not None:
        references = _find(base, ["reference_answer_gpt-4.jsonl", "reference_answer/gpt-4.jsonl"])
    templates = load_judge_templates(judge_prompts)
    refs = load_answers(references) if references is not None else None
    turns = [list(q.turns[:2]) for q in questions]
    generated = answer_conversations(
        model,
        tokenizer,
        turns,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        progress=progress,
    )
    generation_seconds = time.perf_counter() - start
    answers = {q.question_id: a for q, a in zip(questions, generated, strict=True)}
    result = grade_mtbench(questions, answers, judge, templates, refs)
    result.seconds = time.perf_counter() - start
    result.details.update(
        generation_seconds=generation_seconds,
        questions_source=str(questions_source),
        judge_prompts=str(judge_prompts),
        references=str(references) if references is not None else "questions' own",
        max_new_tokens=max_new_tokens,
    )
    return result
