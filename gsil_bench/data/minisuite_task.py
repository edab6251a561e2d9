"""What every mini-suite domain generator produces, and the sampling helper they share."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


Sampler = Callable[[random.Random, int], Task]


def unique_tasks(sample: Sampler, n: int, rng: random.Random, domain: str) -> list[Task]:
    """Draw tasks until ``n`` distinct keys are found.

    ``sample`` gets the index of the task it is drawing, so that a domain can balance its
    kinds by position (every prefix of the list, hence every split, stays balanced).
    """
    tasks: list[Task] = []
    seen: set[str] = set()
    budget = 200 * n + 1000  # far above need; only an exhausted task space gets near it
    for _ in range(budget):
        if len(tasks) == n:
            return tasks
        task = sample(rng, len(tasks))
        if task.key not in seen:
            seen.add(task.key)
            tasks.append(task)
    if len(tasks) == n:
        return tasks
    raise UserError(
        f"mini suite: the '{domain}' domain ran out of distinct tasks after {len(tasks)} of {n};"
        " lower n_base/n_align/n_test or widen its difficulty knobs"
    )


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
