"""``duplicate``: repeat a fraction of the records, each copy right after its original."""

from __future__ import annotations

import random

from gsil_bench.data.records import Demonstration
from gsil_bench.data.transforms import Report, copy_record, pick, register_transform, tagged


@register_transform("duplicate", order=60, reads={"fraction": "duplicate"})
def duplicate(
    demos: list[Demonstration], rng: random.Random, report: Report, *, fraction: float
) -> list[Demonstration]:
    chosen = set(pick(rng, list(range(len(demos))), fraction))
    out: list[Demonstration] = []
    for i, demo in enumerate(demos):
        out.append(demo)
        if i in chosen:
            out.append(tagged(copy_record(demo), "duplicate", id=f"{demo.id}#dup"))
    report["duplicated"] = len(chosen)
    return out
