"""The arithmetic of lm-evaluation-harness 0.4's ``gsm8k`` task: its prompt, the strict and
flexible answer extraction, the exact_match normalisation and the scoring of completions.

Shared by :mod:`gsm8k` (the benchmark) and :mod:`gsm8k_protocols` (the papers' harness
versions), which both import it and not each other.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gsil_bench.evaluation.result import BenchmarkResult, mean_or_nan

STRICT_PATTERN = re.compile(r"#### (\-?[0-9\.\,]+)")
FLEXIBLE_PATTERN = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
IGNORED_PATTERNS = (",", "\\$", "(?s).*#### ", "\\.$")
FALLBACK = "[invalid]"
FEWSHOT_SEED = 1234  # lm-eval's default fewshot_random_seed
NUM_FEWSHOT = 5
STOP_SEQUENCES = ("Question:", "</s>", "<|im_end|>")  # the task's generation_kwargs.until


def _regex_filter(text: str, pattern: re.Pattern[str], group_select: int) -> str:
    """lm-eval's RegexFilter followed by take_first, for one response."""
    matches = pattern.findall(text if isinstance(text, str) else "")
    if not matches:
        return FALLBACK
    match = matches[group_select]
    if isinstance(match, tuple):
        groups = [group for group in match if group]
        match = groups[0] if groups else FALLBACK
    return match.strip()


def extract_strict(text: str) -> str:
    """The number after the first ``#### `` ("strict-match"), or ``[invalid]``."""
    return _regex_filter(text, STRICT_PATTERN, 0)


def extract_flexible(text: str) -> str:
    """The last number-like token ("flexible-extract"), or ``[invalid]``."""
    return _regex_filter(text, FLEXIBLE_PATTERN, -1)


def normalize(text: str) -> str:
    """exact_match's normalisation with the gsm8k task's settings."""
    for pattern in IGNORED_PATTERNS:
        text = re.sub(pattern, "", text)
    return text.lower()


def gold_number(answer: str) -> str:
    """The reference as exact_match sees it: the solution minus everything up to ``#### ``."""
    return normalize(answer)


def score_gsm8k(records: Iterable[Mapping[str, Any]]) -> BenchmarkResult:
    """Score records carrying ``answer`` (gold solution) and ``completion`` (the model's text)."""
    start = time.perf_counter()
    items: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        gold = gold_number(record["answer"])
        strict = extract_strict(record["completion"])
        flexible = extract_flexible(record["completion"])
        strict_ok = float(normalize(strict) == gold)
        flexible_ok = float(normalize(flexible) == gold)
        items.append(
            {
                "id": record.get("id", index),
                "score": strict_ok,
                "score_flexible": flexible_ok,
                "gold": gold,
                "strict": strict,
                "flexible": flexible,
            }
        )
    n = len(items)
    metrics = {
        "exact_match": mean_or_nan([item["score"] for item in items]),
        "exact_match_flexible": mean_or_nan([item["score_flexible"] for item in items]),
        "n": float(n),
    }
    details = {"extraction": "lm-eval 0.4 gsm8k: strict-match and flexible-extract"}
    return BenchmarkResult("gsm8k", metrics, items, time.perf_counter() - start, details)


# --- prompts --------------------------------------------------------------------------------------
def gsm8k_prompt(question: str, fewshot: Sequence[Mapping[str, Any]] = ()) -> str:
    """lm-eval's gsm8k prompt: each shot ``Question: q\\nAnswer: a``, blank lines between."""
    shots = "".join(f"Question: {r['question']}\nAnswer: {r['answer']}\n\n" for r in fewshot)
    return f"{shots}Question: {question}\nAnswer:"
