"""The continuous metric of every mini-suite domain: ``ref_logp``, the mean per-token
log-likelihood of the reference answer given the test prompt.

Accuracy-type metrics move in steps of 1/n and sit at floors and ceilings at this scale; the
log-likelihood of the gold answer moves with every update and has a far better signal-to-noise
ratio for small-scale decisions (Heineman et al. 2025, "Signal and Noise", arXiv 2508.13144).

Definition, per item: the reference of every user turn, teacher-forced, each turn's prompt
holding the earlier turns with their references as the assistant's answers (the chat template
of generation, ``render_prompt``), the response tokens followed by EOS as in training:

    ref_logp(item) = sum over turns of log p(reference tokens | prompt)
                     / number of those tokens

so a one-turn item is simply its reference under its prompt, and a two-turn dialogue item
counts both of its turns (the first answer, then the transformation of it). The domain's
metric is the mean over items. All sequences go through the training code's batched scorer
(``reference_logps``) in one pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from gsil_bench.backend.batches import tokenize_pairs
from gsil_bench.backend.reference import reference_logps
from gsil_bench.data.records import Message
from gsil_bench.evaluation.result import BenchmarkResult, mean_or_nan
from gsil_bench.minisuite.task import TestItem

METRIC = "ref_logp"


def reference_turns(item: TestItem) -> list[tuple[list[Message], str]]:
    """(prompt messages, reference answer) for every turn of ``item``, teacher-forced."""
    references = item.turn_references or [item.reference]
    turns = []
    for turn, reference in enumerate(references):
        turns.append((item.messages(references[:turn]), reference))
    return turns


def reference_loglik(
    model: Any,
    tokenizer: Any,
    items: Sequence[TestItem],
    *,
    batch_size: int,
    max_prompt_tokens: int,
    max_length: int,
) -> list[float]:
    """``ref_logp`` of every item (NaN for an item whose references were all cut away by the
    length policy; it is left out of the domain's mean)."""
    owners, prompts, references = [], [], []
    for index, item in enumerate(items):
        for prompt, reference in reference_turns(item):
            owners.append(index)
            prompts.append(prompt)
            references.append(reference)
    examples, kept, _ = tokenize_pairs(
        tokenizer,
        prompts,
        references,
        None,
        max_prompt_tokens=max_prompt_tokens,
        max_length=max_length,
    )
    sums = [0.0] * len(items)
    tokens = [0] * len(items)
    if examples:
        logps = reference_logps(
            model,
            examples,
            with_generated=False,
            batch_size=batch_size,
            pad_id=tokenizer.pad_token_id,
            description="reference log-likelihood",
        )["real"]
        for example, source, logp in zip(examples, kept, logps.tolist(), strict=True):
            # sequence_logps scores exactly the response tokens: the reference and its EOS.
            sums[owners[source]] += logp
            tokens[owners[source]] += len(example.real_ids)
    return [s / n if n else math.nan for s, n in zip(sums, tokens, strict=True)]


def add_ref_logp(
    results: Sequence[BenchmarkResult], items: Sequence[TestItem], values: Sequence[float]
) -> None:
    """Put ``values`` (one per item of ``items``) into each domain result: per item as
    ``items[i]["ref_logp"]``, their mean as the metric ``ref_logp`` after the others (the
    primary metric stays first), named as the result's continuous metric so that reports
    table it beside the primary one."""
    by_id = {item.id: value for item, value in zip(items, values, strict=True)}
    for result in results:
        for row in result.items:
            row[METRIC] = by_id[row["id"]]
        finite = [row[METRIC] for row in result.items if not math.isnan(row[METRIC])]
        result.metrics[METRIC] = mean_or_nan(finite)
        result.continuous = METRIC
