"""``shuffle_responses``: give a fraction of prompts the response of another prompt (pure label
noise: the set of responses is unchanged)."""

from __future__ import annotations

import random

from gsil_bench.data.records import Demonstration
from gsil_bench.data.transforms import Report, pick, register_transform, tagged


@register_transform(
    "shuffle_responses", order=30, reads={"fraction": "shuffle_responses"}, stream="shuffle"
)
def shuffle_responses(
    demos: list[Demonstration], rng: random.Random, report: Report, *, fraction: float
) -> list[Demonstration]:
    chosen = pick(rng, list(range(len(demos))), fraction)
    donors: dict[int, int] = {}
    if len(chosen) == 1 and len(demos) > 1:
        # A cycle needs two records; a lone pick takes its response from any other record.
        donors[chosen[0]] = rng.choice([i for i in range(len(demos)) if i != chosen[0]])
    elif len(chosen) > 1:
        # A random cycle through the picked records: each gets the next one's response, so
        # none keeps its own and the set of responses is unchanged (pure label noise).
        order = rng.sample(chosen, len(chosen))
        donors = {order[k]: order[(k + 1) % len(order)] for k in range(len(order))}
    originals = [d.response for d in demos]
    identical = 0
    for target, donor in donors.items():
        identical += originals[target] == originals[donor]
        demos[target] = tagged(demos[target], "shuffle_responses", response=originals[donor])
    report["shuffled_responses"] = len(donors)
    # Responses shared by many prompts (refusals, say) may come back unchanged: say how many.
    report["shuffled_identical"] = identical
    return demos
