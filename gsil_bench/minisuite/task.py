"""What every mini-suite domain module shares: the generated ``Task``, the ``TestItem`` its
scorer reads, and the sampling and averaging helpers."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gsil_bench.data.records import Message
from gsil_bench.errors import UserError


@dataclass(frozen=True)
class Task:
    """One generated task before it is cut into splits.

    ``key`` decides uniqueness: two tasks with one key never both exist, so no prompt (and, for
    code, no function) is shared between splits. ``references`` and ``rejected`` hold one
    response per user turn: a correct one and a deliberately flawed one (an arithmetic slip, an
    off-by-one function, a constraint broken, a refusal withheld or needless).
    """

    key: str
    turns: tuple[str, ...]
    references: tuple[str, ...]
    rejected: tuple[str, ...]
    check: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Split:
    """How one split draws a domain's tasks.

    ``skill_share``: the share of tasks that exercise the domain's *alignment skill*, the
    behaviour the base split shows too rarely for the base model to learn it (refusing harmful
    requests, a family of functions, ...); ``heldout_share``: the share phrased with *held-out
    templates*, wordings no training split ever uses (the test split only), so a test score
    measures generalisation, not recall of the alignment split.
    """

    name: str
    skill_share: float
    heldout_share: float = 0.0


@dataclass(frozen=True)
class Draw:
    """What the task at ``index`` of a split must be: a skill task or not, held-out
    phrasing or not."""

    index: int
    skill: bool
    heldout: bool


Sampler = Callable[[random.Random, Draw], Task]


@dataclass
class TestItem:
    """One test question. ``turns`` are the user turns (dialogue has two, the second asked
    after the model's own first answer); ``reference`` is a correct final-turn answer and
    ``turn_references`` one per turn; ``check`` is what scoring needs:
    math ``{"answer": int}``, code ``{"entry_point", "tests"}``, dialogue
    ``{"constraints": [[...] per turn]}``, safety ``{"harmful": bool}``."""

    __test__ = False  # not a pytest test class, despite the name

    id: str
    domain: str
    turns: list[str]
    reference: str
    check: dict[str, Any]
    turn_references: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def messages(self, answers: Sequence[str]) -> list[Message]:
        """The conversation to send for turn ``len(answers)``, given the model's earlier answers."""
        turn = len(answers)
        if turn >= len(self.turns):
            raise ValueError(f"{self.id}: has {len(self.turns)} turns, got {turn} answers")
        messages: list[Message] = []
        for question, answer in zip(self.turns, answers, strict=False):
            messages += [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
        return [*messages, {"role": "user", "content": self.turns[turn]}]


# A domain scorer's output: metrics, and one row per item ({"id", "score", ...}).
Rows = list[dict[str, Any]]
Scored = tuple[dict[str, float], Rows]


def mean(values: Sequence[float]) -> float:
    """The average, 0.0 for no values (an empty domain scores 0, it does not fail)."""
    return sum(values) / len(values) if values else 0.0


def unique_tasks(
    sample: Sampler, n: int, rng: random.Random, domain: str, split: Split, seen: set[str]
) -> list[Task]:
    """Draw tasks until ``n`` keys are found that no earlier split (``seen``) holds.

    Skill and held-out tasks are spread evenly over the positions (every prefix of the list,
    hence every ``eval.limit``, keeps the split's shares), and held-out phrasings are spread
    evenly over skill and non-skill tasks alike. Each task's ``meta`` records both flags.
    """
    tasks: list[Task] = []
    made = {True: 0, False: 0}  # tasks drawn so far with and without the skill
    budget = 200 * n + 1000  # far above need; only an exhausted task space gets near it
    for _ in range(budget):
        if len(tasks) == n:
            return tasks
        skill = is_kind_at(len(tasks), split.skill_share)
        draw = Draw(len(tasks), skill, is_kind_at(made[skill], split.heldout_share))
        task = sample(rng, draw)
        if task.key not in seen:
            seen.add(task.key)
            made[skill] += 1
            meta = {**task.meta, "skill": draw.skill, "heldout": draw.heldout}
            tasks.append(dataclasses.replace(task, meta=meta))
    if len(tasks) == n:
        return tasks
    raise UserError(
        f"mini suite: the '{domain}' domain ran out of distinct tasks after {len(tasks)} of {n}"
        f" in its {split.name} split; lower n_base/n_align/n_test or widen its difficulty knobs"
    )


def skill_draws(n: int, share: float) -> int:
    """How many of a split's ``n`` tasks :func:`unique_tasks` draws as skill tasks."""
    return sum(is_kind_at(index, share) for index in range(n))


def phrase(rng: random.Random, draw: Draw, seen: Sequence[str], heldout: Sequence[str]) -> str:
    """One wording: from ``heldout`` for a held-out draw, else from ``seen``."""
    return rng.choice(heldout if draw.heldout else seen)


def is_kind_at(index: int, fraction: float) -> bool:
    """True for a ``fraction`` of indices, spread evenly: every prefix holds its share."""
    return int((index + 1) * fraction) > int(index * fraction)


def interleaved(shares: dict[str, int]) -> list[str]:
    """A cycle of kinds holding each ``shares[kind]`` times, spread out: ``kinds[i % len]``
    keeps every prefix close to the shares (largest-deficit first, ties by order)."""
    total = sum(shares.values())
    counts = dict.fromkeys(shares, 0)
    cycle = []
    for position in range(1, total + 1):
        kind = max(shares, key=lambda k: shares[k] * position / total - counts[k])
        counts[kind] += 1
        cycle.append(kind)
    return cycle
