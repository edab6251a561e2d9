"""Mini-suite math: GSM8K-like word problems of a few arithmetic steps with a worked answer.

The text is short and regular on purpose: a 0.9M-parameter model with one token per digit
learns it in minutes (DESIGN section 10). A solution is one equation per step, "a op b = c",
then "#### answer", the GSM8K answer format. The steps' words stay in the question only: every
word in the answer lengthens what the tiny model must generate without error. The flawed
("rejected") solution makes one arithmetic slip and carries the wrong value through to a wrong
final answer.

The alignment skill is multiplication and division: skill problems have one ``*`` or ``/`` step,
the others add and subtract only, so a base model trained on a base split with few skill
problems rarely carries out a product or a quotient. Held-out problems are worded with step
phrases and a question no training split uses.

Scoring (``mini/math``): accuracy; the prediction is the number after the last ``####``, or
else the last number in the answer (commas and a trailing ``.0`` are tolerated).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from gsil_bench.minisuite.task import (
    Draw,
    Rows,
    Scored,
    Split,
    Task,
    TestItem,
    mean,
    phrase,
    unique_tasks,
)

NAMES = (
    ("Ava", "she"), ("Ben", "he"), ("Mia", "she"), ("Leo", "he"), ("Zoe", "she"),
    ("Sam", "he"), ("Ivy", "she"), ("Max", "he"), ("Lily", "she"), ("Tom", "he"),
    ("Emma", "she"), ("Noah", "he"), ("Ella", "she"), ("Jack", "he"), ("Ruby", "she"),
    ("Owen", "he"), ("Nora", "she"), ("Eli", "he"), ("Amy", "she"), ("Dan", "he"),
)  # fmt: skip
OBJECTS = (
    "apples", "marbles", "stickers", "coins", "books", "pencils", "cards", "shells",
    "stamps", "cookies", "beads", "eggs", "flowers", "balloons", "candies", "toys",
)  # fmt: skip
PHRASES = {
    "+": ("buys {n} more", "finds {n} more", "gets {n} more"),
    "-": ("gives away {n}", "loses {n}", "sells {n}"),
    "*": ("ends up with {n} times as many",),
    "/": ("splits them into {n} equal piles and keeps one",),
}
HELDOUT_PHRASES = {
    "+": ("is given {n} more", "picks up {n} more"),
    "-": ("drops {n}", "uses up {n}"),
    "*": ("now has {n} times as many",),
    "/": ("shares them equally among {n} friends and keeps one share",),
}
QUESTIONS = ("How many {objects} does {name} have now?",)
HELDOUT_QUESTIONS = ("How many {objects} does {name} end up with?",)
SKILL_OPS, PLAIN_OPS = ("*", "/"), ("+", "-")
FACTORS = (2, 3, 4, 5)  # multipliers and divisors stay small: the model has to carry them out


@dataclass(frozen=True)
class Step:
    op: str
    operand: int
    phrase: str


def apply(op: str, value: int, operand: int) -> int | None:
    """The step's result, or None where it leaves the whole positive numbers."""
    if op == "+":
        return value + operand
    if op == "-":
        return value - operand if value - operand >= 1 else None
    if op == "*":
        return value * operand
    return value // operand if value % operand == 0 else None


def generate(
    rng: random.Random,
    n: int,
    split: Split,
    seen: set[str],
    *,
    min_steps: int,
    max_steps: int,
    max_number: int,
    max_value: int,
) -> list[Task]:
    """``n`` problems new to ``seen``; step counts cycle over [min_steps, max_steps] by position."""

    def sample(rng: random.Random, draw: Draw) -> Task:
        steps = min_steps + draw.index % (max_steps - min_steps + 1)
        while True:
            task = _problem(rng, draw, steps, max_number, max_value)
            if task is not None:
                return task

    return unique_tasks(sample, n, rng, "math", split, seen)


def _problem(
    rng: random.Random, draw: Draw, n_steps: int, max_number: int, max_value: int
) -> Task | None:
    """A problem of ``n_steps`` steps, one of them (at a random position) a ``*`` or ``/``
    step for a skill draw; None where the chain allows no such step (the caller redraws)."""
    name, pronoun = rng.choice(NAMES)
    objects = rng.choice(OBJECTS)
    start = rng.randint(2, max_number)
    skill_at = rng.randrange(n_steps) if draw.skill else -1
    steps: list[Step] = []
    values = [start]
    for position in range(n_steps):
        ops = SKILL_OPS if position == skill_at else PLAIN_OPS
        step = _next_step(rng, draw, values[-1], ops, max_number, max_value)
        if step is None:
            return None
        result = apply(step.op, values[-1], step.operand)
        assert result is not None  # _next_step offers only steps that stay positive and whole
        steps.append(step)
        values.append(result)
    sentences = [f"{name} has {start} {objects}.", f"{pronoun.capitalize()} {steps[0].phrase}."]
    sentences += [f"Then {pronoun} {step.phrase}." for step in steps[1:]]
    question = phrase(rng, draw, QUESTIONS, HELDOUT_QUESTIONS)
    sentences.append(question.format(objects=objects, name=name))
    question = " ".join(sentences)
    solution = _solution(steps, values)
    rejected = _solution(steps, _slipped_values(rng, steps, values))
    return Task(
        key=question,
        turns=(question,),
        references=(solution,),
        rejected=(rejected,),
        check={"answer": values[-1]},
        meta={"steps": n_steps},
    )


def _next_step(
    rng: random.Random,
    draw: Draw,
    value: int,
    ops: tuple[str, ...],
    max_number: int,
    max_value: int,
) -> Step | None:
    options: list[tuple[str, list[int]]] = [
        ("+", [n for n in range(1, max_number + 1) if value + n <= max_value]),
        ("-", list(range(1, min(max_number, value - 1) + 1))),
        ("*", [k for k in FACTORS if k <= max_number and value * k <= max_value]),
        ("/", [k for k in FACTORS if k <= max_number and value % k == 0]),
    ]
    usable = [(op, operands) for op, operands in options if operands and op in ops]
    if not usable:
        return None
    op, operands = rng.choice(usable)
    operand = rng.choice(operands)
    wording = phrase(rng, draw, PHRASES[op], HELDOUT_PHRASES[op])
    return Step(op, operand, wording.format(n=operand))


def _solution(steps: list[Step], values: list[int]) -> str:
    lines = [
        f"{before} {step.op} {step.operand} = {after}"
        for step, before, after in zip(steps, values, values[1:], strict=False)
    ]
    return "\n".join([*lines, f"#### {values[-1]}"])


def _slipped_values(rng: random.Random, steps: list[Step], values: list[int]) -> list[int]:
    """The chain with one step's result off by 1 or 2 and the error carried forward.

    Every operation here is injective, so the final answer is always wrong; a slip that
    would make a later division inexact falls back to a slip in the last step.
    """
    at = rng.randrange(1, len(values))
    delta = rng.choice([d for d in (-2, -1, 1, 2) if values[at] + d >= 1])
    slipped = [*values[:at], values[at] + delta]
    for step in steps[at:]:
        result = apply(step.op, slipped[-1], step.operand)
        if result is None:
            last_delta = 1 if values[-1] < 3 else rng.choice((-1, 1))
            return [*values[:-1], values[-1] + last_delta]
        slipped.append(result)
    return slipped


# ---------------------------------------------------------------- scoring

_FINAL = re.compile(r"####\s*(-?[\d,]*\d(?:\.\d+)?)")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def extract_number(text: str) -> float | None:
    """The number after the last ``####``, else the last number in ``text``; None if none."""
    finals = _FINAL.findall(text)
    found = finals[-1] if finals else (_NUMBER.findall(text) or [None])[-1]
    if found is None:
        return None
    try:
        return float(found.replace(",", ""))
    except ValueError:
        return None


def score(items: list[TestItem], answers: list[list[str]], workers: int) -> Scored:
    """Accuracy of the final numbers; ``workers`` is unused (scoring is instant)."""
    rows: Rows = []
    for item, (answer,) in zip(items, answers, strict=True):
        predicted = extract_number(answer)
        correct = predicted is not None and predicted == item.check["answer"]
        rows.append({"id": item.id, "score": float(correct), "predicted": predicted})
    return {"accuracy": mean([r["score"] for r in rows])}, rows
