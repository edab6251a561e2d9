"""``truncate_responses``: cut a fraction of responses to ``truncate_keep`` of their words."""

from __future__ import annotations

import random
import re

from gsil_bench.data.records import Demonstration
from gsil_bench.data.transforms import Report, pick, register_transform, tagged


def truncate_text(text: str, keep: float) -> str:
    """The first ``keep`` of the words of ``text`` (at least one, never all of several);
    a single word loses characters instead."""
    words = list(re.finditer(r"\S+", text))
    if len(words) >= 2:
        count = max(1, min(len(words) - 1, int(keep * len(words))))
        return text[: words[count - 1].end()]
    word = text.strip()
    count = max(1, min(len(word) - 1, int(keep * len(word))))
    return word[:count] if len(word) >= 2 else text


@register_transform(
    "truncate_responses",
    order=40,
    reads={"fraction": "truncate_responses", "keep": "truncate_keep"},
    stream="truncate",
)
def truncate_responses(
    demos: list[Demonstration], rng: random.Random, report: Report, *, fraction: float, keep: float
) -> list[Demonstration]:
    changed = 0
    for i in pick(rng, list(range(len(demos))), fraction):
        shorter = truncate_text(demos[i].response, keep)
        if shorter != demos[i].response:
            demos[i] = tagged(demos[i], "truncate_responses", response=shorter)
            changed += 1
    report["truncated"] = changed
    return demos
