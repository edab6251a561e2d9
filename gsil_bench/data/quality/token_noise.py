"""``token_noise``: in a fraction of responses, corrupt each word with probability
``noise_rate`` (replaced by a corpus word, deleted, or two letters swapped)."""

from __future__ import annotations

import random
import re

from gsil_bench.data.records import Demonstration
from gsil_bench.data.transforms import Report, pick, register_transform, tagged


def noisy_text(
    text: str, rate: float, vocabulary: list[str], rng: random.Random
) -> tuple[str, int]:
    """``text`` with each word corrupted with probability ``rate`` (at least one word), and
    the number of words corrupted. Whitespace, hence line structure and code indentation, is
    kept."""
    parts = re.split(r"(\s+)", text)  # words at even positions, whitespace at odd ones
    words = [i for i in range(0, len(parts), 2) if parts[i]]
    hit = [i for i in words if rng.random() < rate] or ([rng.choice(words)] if words else [])
    for i in hit:
        parts[i] = _corrupt(parts[i], vocabulary, rng)
    noisy = "".join(parts)
    # Deleting every word would leave no response at all; keep one corpus word instead.
    return (noisy if noisy.strip() else rng.choice(vocabulary)), len(hit)


def _corrupt(word: str, vocabulary: list[str], rng: random.Random) -> str:
    kind = rng.choice(("replace", "delete", "swap"))
    if kind == "swap" and len(word) >= 2 and len(set(word)) > 1:
        while True:
            at = rng.randrange(len(word) - 1)
            if word[at] != word[at + 1]:
                return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    if kind == "delete":
        return ""
    others = [w for w in rng.sample(vocabulary, min(5, len(vocabulary))) if w != word]
    return others[0] if others else ""


@register_transform(
    "token_noise",
    order=50,
    reads={"fraction": "token_noise", "rate": "noise_rate"},
    stream="noise",
)
def token_noise(
    demos: list[Demonstration], rng: random.Random, report: Report, *, fraction: float, rate: float
) -> list[Demonstration]:
    chosen = pick(rng, list(range(len(demos))), fraction)
    # Sorted, so that the replacement words do not depend on set iteration order.
    vocabulary = sorted({w for d in demos for w in d.response.split()}) if chosen else []
    corrupted = 0
    for i in chosen:
        noisy, hits = noisy_text(demos[i].response, rate, vocabulary, rng)
        demos[i] = tagged(demos[i], "token_noise", response=noisy)
        corrupted += hits
    report["noised"] = len(chosen)
    report["noised_words"] = corrupted
    return demos
