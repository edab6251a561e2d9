"""Reference log-probs: one pass of the round's reference model, cached by content."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

from gsil_bench.backend.batches import TrainExample, reference_logps
from gsil_bench.backend.cache import DiskCache, content_key


def cached_reference(
    model: Any,
    examples: list[TrainExample],
    *,
    with_generated: bool,
    batch_size: int,
    pad_id: int,
    cache: DiskCache,
    model_fp: str,
    round_index: int,
) -> dict[str, torch.Tensor]:
    """Summed response log-probs of the reference for every example (real, and generated
    when the loss uses it), keyed by the model's fingerprint and the token ids."""
    digest = hashlib.sha256()
    for e in examples:
        digest.update(json.dumps([e.prompt_ids, e.real_ids, e.generated_ids]).encode())
    key = content_key(
        "reference", {"model": model_fp, "examples": digest.hexdigest(), "gen": with_generated}
    )
    hit = cache.get("reference", key)
    if hit is not None:
        loaded: dict[str, torch.Tensor] = torch.load(hit / "logps.pt")
        return loaded
    logps = reference_logps(
        model,
        examples,
        with_generated=with_generated,
        batch_size=batch_size,
        pad_id=pad_id,
        description=f"round {round_index}: reference log-probs",
    )
    cache.put(
        "reference",
        key,
        lambda tmp: torch.save(logps, tmp / "logps.pt"),
        {"n": len(examples), "model": model_fp},
    )
    return logps
