"""Negatives: one response per demonstration, self-generated (cached by content) or the data's
own ``rejected`` response (DPO-style data)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from gsil_bench.backend.cache import DiskCache, code_versions, content_key
from gsil_bench.backend.chat import render_prompt, render_release_prompt
from gsil_bench.backend.generation import generate, generate_vllm
from gsil_bench.backend.model import LOW_PRECISION, parameter_dtype
from gsil_bench.config import GenerationConfig
from gsil_bench.data.records import Demonstration
from gsil_bench.errors import UserError


def rejected_negatives(demos: list[Demonstration]) -> list[str]:
    """The data's rejected responses; every record must have one."""
    missing = [d.id for d in demos if not d.rejected]
    if missing:
        raise UserError(
            f"data.negatives=rejected but {len(missing)} records have no rejected response "
            f"(first: {missing[0]!r})"
        )
    return [d.rejected or "" for d in demos]


def generation_key(
    gen: GenerationConfig,
    prompts: list[str],
    *,
    seed: int,
    model_fp: str,
    dtype: torch.dtype,
    mixed_precision: str,
) -> str:
    """The cache key of a generation: everything its responses depend on. The model's
    weights (fingerprint) and dtype, the precision setting, the rendered prompts, the sampling
    settings, the backend and the versions of the code that generates; with sampling, the seed
    and the batch size (the random stream is drawn batch by batch), and in bf16/fp16 the batch
    size too (padding changes low-precision sums, and so greedy choices)."""
    inputs: dict[str, Any] = {
        "model": model_fp,
        "dtype": str(dtype),
        "mixed_precision": mixed_precision,
        "prompts": hashlib.sha256("\x00".join(prompts).encode()).hexdigest(),
        "gen": gen.model_dump(exclude={"batch_size", "mix_previous_rounds"}),
        "seed": seed if gen.do_sample else 0,
        "versions": code_versions(*(["vllm"] if gen.backend == "vllm" else [])),
    }
    if gen.backend == "hf" and (gen.do_sample or dtype in LOW_PRECISION):
        inputs["batch_size"] = gen.batch_size
    return content_key("generated", inputs)


def generated_negatives(
    gen: GenerationConfig,
    model: Any,
    tokenizer: Any,
    demos: list[Demonstration],
    *,
    seed: int,
    cache: DiskCache,
    model_fp: str,
    round_index: int,
    mixed_precision: str = "no",
) -> list[str]:
    """Responses sampled from ``model`` (the round's reference policy), cached by content
    (:func:`generation_key`)."""
    if gen.prompt_format == "release":
        prompts = [render_release_prompt(d.prompt) for d in demos]
    else:
        prompts = [render_prompt(tokenizer, d.prompt) for d in demos]
    key = generation_key(
        gen,
        prompts,
        seed=seed,
        model_fp=model_fp,
        dtype=parameter_dtype(model),
        mixed_precision=mixed_precision,
    )
    with cache.lock("generated", key):  # one process generates, the others read its entry
        hit = cache.get("generated", key)
        if hit is not None:
            return list(json.loads((hit / "responses.json").read_text()))
        return _generate(gen, model, tokenizer, prompts, seed, cache, key, model_fp, round_index)


def _generate(
    gen: GenerationConfig,
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    seed: int,
    cache: DiskCache,
    key: str,
    model_fp: str,
    round_index: int,
) -> list[str]:
    sampling: dict[str, Any] = {
        "max_new_tokens": gen.max_new_tokens,
        "do_sample": gen.do_sample,
        "temperature": gen.temperature,
        "top_p": gen.top_p,
        "seed": seed,
    }
    if gen.backend == "vllm":
        staging = cache.root / "vllm-staging" / model_fp
        responses = generate_vllm(model, tokenizer, prompts, staging_dir=staging, **sampling)
    else:
        responses = generate(
            model,
            tokenizer,
            prompts,
            batch_size=gen.batch_size,
            description=f"round {round_index}: generating",
            **sampling,
        )

    def write(tmp: Path) -> None:
        (tmp / "responses.json").write_text(json.dumps(responses))

    cache.put("generated", key, write, {"n": len(responses), "model": model_fp})
    return responses
