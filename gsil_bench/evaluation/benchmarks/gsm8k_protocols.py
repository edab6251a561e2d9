"""GSM8K as each paper's pinned lm-evaluation-harness ran it (``eval.options.gsm8k.protocol``).

- ``lm-eval`` (the default): the current lm-eval task, as :mod:`gsm8k` describes.

- ``gsil``: lm-evaluation-harness v0.3.1 at commit b281b0921b636bc36ad05c0b0b0763bd6dd43463,
  the one the GSIL release's README names (github.com/tengxiao1/GSIL). Its
  ``lm_eval/tasks/gsm8k.py``: the same ``Question: ..\\nAnswer:`` prompt, generation cut at
  ``":"``, ``"Question:"``, ``"Question"`` (and EOS), the first ``#### (-?[0-9.,]+)`` with
  commas removed compared as a string with the gold's, metric ``acc``. Its evaluator
  (``lm_eval/evaluator.py``) shuffles the test set with ``random.Random(42)`` and draws each
  question's 5 shots (``lm_eval/base.py`` ``fewshot_examples``) from that same generator.
- ``spin``: lm-evaluation-harness v0.4.0 at commit 46c796644913cd99da7eee868e64f9ed6af33407,
  the one the SPIN release's README names (github.com/uclaml/SPIN). Its
  ``lm_eval/tasks/gsm8k/gsm8k.yaml``: generation cut at ``"\\n\\n"`` and ``"Question:"``, the
  strict ``get-answer`` filter (first ``#### (-?[0-9.,]+)``, else ``[invalid]``), exact_match
  ignoring case and the regexes ``,``, ``\\$``, ``(?s).*#### `` (no trailing-dot rule yet);
  each question's shots drawn in test order from ``random.Random(1234)``
  (``lm_eval/api/task.py``, ``samplers.py``).

Emulated here without the old harnesses; what is not emulated: their tokenisation details
(BOS handling of the HF wrapper of the day) and their batching.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gsil_bench.errors import UserError
from gsil_bench.evaluation.benchmarks.gsm8k_scoring import (
    FALLBACK,
    FEWSHOT_SEED,
    NUM_FEWSHOT,
    STOP_SEQUENCES,
    STRICT_PATTERN,
    extract_strict,
    gsm8k_prompt,
    score_gsm8k,
)
from gsil_bench.evaluation.result import BenchmarkResult, mean_or_nan


@dataclass(frozen=True)
class GSM8KProtocol:
    """How one harness version runs GSM8K: stops, shots and scoring (module docstring)."""

    name: str
    source: str  # the harness and commit it emulates
    stops: tuple[str, ...]
    metric: str  # the primary metric's name in that harness
    fewshot_seed: int
    shuffle_test: bool  # v0.3 shuffles the test set with the few-shot generator first


PROTOCOLS: dict[str, GSM8KProtocol] = {
    "lm-eval": GSM8KProtocol(
        "lm-eval",
        "lm-evaluation-harness 0.4 gsm8k task (current)",
        STOP_SEQUENCES,
        "exact_match",
        FEWSHOT_SEED,
        False,
    ),
    "gsil": GSM8KProtocol(
        "gsil",
        "lm-evaluation-harness v0.3.1 b281b0921b636bc36ad05c0b0b0763bd6dd43463 (GSIL)",
        (":", "Question:", "Question", "</s>"),
        "acc",
        42,
        True,
    ),
    "spin": GSM8KProtocol(
        "spin",
        "lm-evaluation-harness v0.4.0 46c796644913cd99da7eee868e64f9ed6af33407 (SPIN)",
        ("\n\n", "Question:", "</s>"),
        "exact_match",
        1234,
        False,
    ),
}
V040_IGNORED_PATTERNS = (",", "\\$", "(?s).*#### ")  # gsm8k.yaml at v0.4.0: no "\\.$"


def _v03_answer(text: str) -> str:
    """lm-eval v0.3's ``_extract_answer``: the first ``#### n``, stripped, commas removed."""
    match = STRICT_PATTERN.search(text)
    return match.group(1).strip().replace(",", "") if match else FALLBACK


def _v040_normalize(text: str) -> str:
    for pattern in V040_IGNORED_PATTERNS:
        text = re.sub(pattern, "", text)
    return text.lower()


def score_gsm8k_protocol(
    records: Iterable[Mapping[str, Any]], protocol: str = "lm-eval"
) -> BenchmarkResult:
    """Score ``answer``/``completion`` records as ``protocol``'s harness did (PROTOCOLS)."""
    spec = protocol_named(protocol)
    if spec.name == "lm-eval":
        result = score_gsm8k(records)
    else:
        start = time.perf_counter()
        items: list[dict[str, Any]] = []
        for index, record in enumerate(records):
            completion = record["completion"]
            if spec.name == "gsil":
                gold, extracted = _v03_answer(record["answer"]), _v03_answer(completion)
                if gold == FALLBACK:  # v0.3 asserts: "No ground truth answer found"
                    raise UserError(f"GSM8K record {index + 1}: no '#### n' in its answer")
                ok = extracted == gold
            else:
                gold, extracted = _v040_normalize(record["answer"]), extract_strict(completion)
                ok = _v040_normalize(extracted) == gold
            items.append(
                {
                    "id": record.get("id", index),
                    "score": float(ok),
                    "gold": gold,
                    "strict": extracted,
                }
            )
        metrics = {spec.metric: mean_or_nan([i["score"] for i in items]), "n": float(len(items))}
        result = BenchmarkResult("gsm8k", metrics, items, time.perf_counter() - start, {})
    result.details.update({"protocol": spec.name, "protocol_source": spec.source})
    return result


def protocol_named(name: str) -> GSM8KProtocol:
    if name not in PROTOCOLS:
        raise UserError(f"GSM8K protocol {name!r} unknown; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def protocol_prompts(
    test: Sequence[Mapping[str, Any]],
    train: Sequence[Mapping[str, Any]],
    spec: GSM8KProtocol,
    num_fewshot: int = NUM_FEWSHOT,
    limit: int | None = None,
) -> list[tuple[int, str]]:
    """(test index, prompt) in the order the harness evaluates, each question with the shots
    that harness draws for it: one generator (``spec.fewshot_seed``) that first shuffles the
    test set when ``spec.shuffle_test`` (v0.3), then samples ``num_fewshot`` train examples
    per question in turn; ``limit`` keeps the first questions of that order."""
    if len(train) < num_fewshot:
        raise UserError(
            f"GSM8K few-shot: need {num_fewshot} train examples, the train split has {len(train)}"
        )
    rnd = random.Random(spec.fewshot_seed)
    order = list(range(len(test)))
    if spec.shuffle_test:
        rnd.shuffle(order)
    order = order[:limit] if limit else order
    train_list = list(train)
    out = []
    for index in order:
        shots = rnd.sample(train_list, num_fewshot) if num_fewshot else []
        out.append((index, gsm8k_prompt(test[index]["question"], shots)))
    return out
