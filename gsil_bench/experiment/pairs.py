"""Training pairs from demonstrations and negatives: every pair rule in one place.

- ``generation.mix_previous_rounds``: SPIN's release trains round t on round t's generations
  plus round t-1's, i.e. every demonstration twice, once against each negative;
- ``data.drop_identical``: pairs whose negative equals the demonstration give SPIN (and GSIL at
  shift 0) no gradient; they can be dropped, and are always counted (``identical_negatives``
  of ``pairs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gsil_bench.data.records import Demonstration


@dataclass(frozen=True)
class Pairs:
    """Parallel lists; ``negatives`` is None for losses that use none."""

    prompts: list[Any]  # chat messages, as in Demonstration.prompt
    reals: list[str]
    negatives: list[str] | None
    facts: dict[str, Any]


def build_pairs(
    demos: list[Demonstration],
    negatives: list[str] | None,
    *,
    previous_negatives: list[str] | None = None,
    mix_previous_rounds: bool = False,
    drop_identical: bool = False,
) -> Pairs:
    """The (prompt, demonstration, negative) triples a round trains on, and their counts."""
    prompts, reals = [d.prompt for d in demos], [d.response for d in demos]
    if negatives is None:
        return Pairs(prompts, reals, None, {})
    negs = list(negatives)
    if previous_negatives and mix_previous_rounds:
        prompts, reals = prompts + prompts, reals + reals
        negs = negs + previous_negatives
    identical = [r == n for r, n in zip(reals, negs, strict=True)]
    # Both counted before any pair is dropped: their ratio is the run's "identical_pairs".
    facts: dict[str, Any] = {"pairs": len(identical), "identical_negatives": sum(identical)}
    if drop_identical:
        keep = [i for i, same in enumerate(identical) if not same]
        prompts, reals = [prompts[i] for i in keep], [reals[i] for i in keep]
        negs = [negs[i] for i in keep]
    return Pairs(prompts, reals, negs, facts)
