"""``subsample``: keep a random fraction of the records, in their original order."""

from __future__ import annotations

import random

from gsil_bench.data.records import Demonstration
from gsil_bench.data.transforms import Report, pick, register_transform


@register_transform("subsample", order=10, reads={"fraction": "subsample"})
def subsample(
    demos: list[Demonstration], rng: random.Random, report: Report, *, fraction: float
) -> list[Demonstration]:
    keep = pick(rng, list(range(len(demos))), fraction)
    if demos and not keep:  # a tiny dataset must not vanish
        keep = [rng.randrange(len(demos))]
    report["subsample_dropped"] = len(demos) - len(keep)
    return [demos[i] for i in keep]
