"""Data-quality ablations: degrade the demonstrations in controlled, seeded, recorded ways.

GSIL's claim is that it imitates demonstrations better than SFT and SPIN; these transforms ask
how each method copes when the demonstrations are fewer, noisier, cut short, mismatched,
worse or repeated. They run in a fixed order, each on the output of the one before:

1. ``subsample``: keep a random fraction (original order kept).
2. ``swap_rejected``: replace the demonstration by its lower-quality ``rejected`` response
   where one exists (the two swap places, so a pair's preference is flipped too).
3. ``shuffle_responses``: give a fraction of prompts the response of another prompt.
4. ``truncate_responses``: cut a fraction of responses to ``truncate_keep`` of their words.
5. ``token_noise``: in a fraction of responses, corrupt each word with probability
   ``noise_rate`` (replaced by a corpus word, deleted, or two letters swapped).
6. ``duplicate``: repeat a fraction of the records, each copy right after its original.

Every transform picks exactly round(fraction * n) records with its own random stream, so
turning one knob does not change which records another one picks. Changed records get the
transform's name appended to ``meta["transforms"]``.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gsil_bench.data.records import Demonstration

Report = dict[str, int]


class DataQualityConfig(BaseModel):
    """Fractions of the data each transform touches; the defaults change nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subsample: float = Field(default=1.0, gt=0.0, le=1.0, description="fraction of records kept")
    shuffle_responses: float = Field(default=0.0, ge=0.0, le=1.0)
    truncate_responses: float = Field(default=0.0, ge=0.0, le=1.0)
    truncate_keep: float = Field(default=0.5, gt=0.0, lt=1.0, description="fraction of words kept")
    token_noise: float = Field(default=0.0, ge=0.0, le=1.0)
    noise_rate: float = Field(default=0.1, gt=0.0, le=1.0, description="per-word corruption rate")
    swap_rejected: float = Field(default=0.0, ge=0.0, le=1.0)
    duplicate: float = Field(default=0.0, ge=0.0, le=1.0)


def apply_transforms(
    demos: list[Demonstration], config: DataQualityConfig, *, seed: int
) -> tuple[list[Demonstration], Report]:
    """The transformed copy of ``demos`` and counts of what each transform did.

    Deterministic for a seed; ``demos`` is never modified (the output holds new records).
    """
    out = [_copy(demo) for demo in demos]
    report: Report = {"input": len(out)}
    out = _subsample(out, config.subsample, _rng(seed, "subsample"), report)
    _swap_rejected(out, config.swap_rejected, _rng(seed, "swap_rejected"), report)
    _shuffle_responses(out, config.shuffle_responses, _rng(seed, "shuffle"), report)
    _truncate(out, config.truncate_responses, config.truncate_keep, _rng(seed, "truncate"), report)
    _token_noise(out, config.token_noise, config.noise_rate, _rng(seed, "noise"), report)
    out = _duplicate(out, config.duplicate, _rng(seed, "duplicate"), report)
    report["output"] = len(out)
    return out, report


def _rng(seed: int, name: str) -> random.Random:
    return random.Random(f"gsil-bench-transform:{seed}:{name}")


def _pick(rng: random.Random, indices: list[int], fraction: float) -> list[int]:
    count = int(fraction * len(indices) + 0.5)  # round half up, unlike round()
    return sorted(rng.sample(indices, count))


def _copy(demo: Demonstration) -> Demonstration:
    return replace(demo, prompt=[dict(m) for m in demo.prompt], meta=dict(demo.meta))


def _tagged(demo: Demonstration, tag: str, **changes: Any) -> Demonstration:
    meta = {**demo.meta, "transforms": [*demo.meta.get("transforms", []), tag]}
    return replace(demo, meta=meta, **changes)


def _subsample(
    demos: list[Demonstration], fraction: float, rng: random.Random, report: Report
) -> list[Demonstration]:
    keep = _pick(rng, list(range(len(demos))), fraction)
    if demos and not keep:  # a tiny dataset must not vanish
        keep = [rng.randrange(len(demos))]
    report["subsample_dropped"] = len(demos) - len(keep)
    return [demos[i] for i in keep]


def _swap_rejected(
    demos: list[Demonstration], fraction: float, rng: random.Random, report: Report
) -> None:
    candidates = [i for i, d in enumerate(demos) if d.rejected and d.rejected.strip()]
    chosen = _pick(rng, candidates, fraction)
    for i in chosen:
        demo = demos[i]
        demos[i] = _tagged(demo, "swap_rejected", response=demo.rejected, rejected=demo.response)
    report["swapped_rejected"] = len(chosen)
    report["swap_rejected_unavailable"] = len(demos) - len(candidates) if fraction > 0 else 0


def _shuffle_responses(
    demos: list[Demonstration], fraction: float, rng: random.Random, report: Report
) -> None:
    chosen = _pick(rng, list(range(len(demos))), fraction)
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
        demos[target] = _tagged(demos[target], "shuffle_responses", response=originals[donor])
    report["shuffled_responses"] = len(donors)
    # Responses shared by many prompts (refusals, say) may come back unchanged: say how many.
    report["shuffled_identical"] = identical


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


def _truncate(
    demos: list[Demonstration], fraction: float, keep: float, rng: random.Random, report: Report
) -> None:
    changed = 0
    for i in _pick(rng, list(range(len(demos))), fraction):
        shorter = truncate_text(demos[i].response, keep)
        if shorter != demos[i].response:
            demos[i] = _tagged(demos[i], "truncate_responses", response=shorter)
            changed += 1
    report["truncated"] = changed


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


def _token_noise(
    demos: list[Demonstration], fraction: float, rate: float, rng: random.Random, report: Report
) -> None:
    chosen = _pick(rng, list(range(len(demos))), fraction)
    # Sorted, so that the replacement words do not depend on set iteration order.
    vocabulary = sorted({w for d in demos for w in d.response.split()}) if chosen else []
    corrupted = 0
    for i in chosen:
        noisy, hits = noisy_text(demos[i].response, rate, vocabulary, rng)
        demos[i] = _tagged(demos[i], "token_noise", response=noisy)
        corrupted += hits
    report["noised"] = len(chosen)
    report["noised_words"] = corrupted


def _duplicate(
    demos: list[Demonstration], fraction: float, rng: random.Random, report: Report
) -> list[Demonstration]:
    chosen = set(_pick(rng, list(range(len(demos))), fraction))
    out: list[Demonstration] = []
    for i, demo in enumerate(demos):
        out.append(demo)
        if i in chosen:
            out.append(_tagged(_copy(demo), "duplicate", id=f"{demo.id}#dup"))
    report["duplicated"] = len(chosen)
    return out
