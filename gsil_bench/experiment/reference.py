"""Reference log-probs: one pass of the round's reference model, cached by content."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

from gsil_bench.backend.batches import TrainExample
from gsil_bench.backend.cache import DiskCache, code_versions, content_key
from gsil_bench.backend.model import LOW_PRECISION, parameter_dtype
from gsil_bench.backend.reference import reference_logps


def reference_key(
    examples: list[TrainExample],
    *,
    with_generated: bool,
    model_fp: str,
    dtype: torch.dtype,
    mixed_precision: str,
    batch_size: int,
    prefix_sharing: bool = False,
) -> str:
    """The cache key of a reference pass: the model's weights (fingerprint) and dtype, the
    precision setting, the token ids, whether generated responses are scored, the versions
    of the code that computes, whether pairs share their prompt (the sums agree to 1e-5, not
    to the bit), and in bf16/fp16 the batch size (padding changes low-precision sums)."""
    digest = hashlib.sha256()
    for e in examples:
        digest.update(json.dumps([e.prompt_ids, e.real_ids, e.generated_ids]).encode())
    inputs: dict[str, Any] = {
        "model": model_fp,
        "dtype": str(dtype),
        "mixed_precision": mixed_precision,
        "examples": digest.hexdigest(),
        "gen": with_generated,
        "versions": code_versions(),
    }
    if dtype in LOW_PRECISION:
        inputs["batch_size"] = batch_size
    if prefix_sharing and with_generated:
        inputs["prefix_sharing"] = True
    return content_key("reference", inputs)


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
    mixed_precision: str = "no",
    prefix_sharing: bool = False,
) -> dict[str, torch.Tensor]:
    """Summed response log-probs of the reference for every example (real, and generated
    when the loss uses it), cached by content (:func:`reference_key`); with
    ``prefix_sharing`` each pair's prompt runs once (``optim.prefix_sharing``)."""
    key = reference_key(
        examples,
        with_generated=with_generated,
        model_fp=model_fp,
        dtype=parameter_dtype(model),
        mixed_precision=mixed_precision,
        batch_size=batch_size,
        prefix_sharing=prefix_sharing,
    )
    with cache.lock("reference", key):  # one process computes, the others read its entry
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
            prefix_sharing=prefix_sharing,
        )
        cache.put(
            "reference",
            key,
            lambda tmp: torch.save(logps, tmp / "logps.pt"),
            {"n": len(examples), "model": model_fp},
        )
        return logps
