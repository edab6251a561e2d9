"""``swap_rejected``: the lower-quality ``rejected`` response becomes the demonstration (and the
demonstration the rejected one, so a pair's preference flips too), where a record has one."""

from __future__ import annotations

import random

from gsil_bench.data.records import Demonstration
from gsil_bench.data.transforms import Report, pick, register_transform, tagged


@register_transform("swap_rejected", order=20, reads={"fraction": "swap_rejected"})
def swap_rejected(
    demos: list[Demonstration], rng: random.Random, report: Report, *, fraction: float
) -> list[Demonstration]:
    candidates = [i for i, d in enumerate(demos) if d.rejected and d.rejected.strip()]
    chosen = pick(rng, candidates, fraction)
    for i in chosen:
        demo = demos[i]
        demos[i] = tagged(demo, "swap_rejected", response=demo.rejected, rejected=demo.response)
    report["swapped_rejected"] = len(chosen)
    report["swap_rejected_unavailable"] = len(demos) - len(candidates) if fraction > 0 else 0
    return demos
