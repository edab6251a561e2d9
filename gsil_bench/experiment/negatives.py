"""Negatives: one response per demonstration, self-generated (cached by content) or the data's
own ``rejected`` response (DPO-style data)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from gsil_bench.backend.cache import DiskCache, content_key
from gsil_bench.backend.chat import render_prompt
from gsil_bench.backend.generation import generate, generate_vllm
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
) -> list[str]:
    """Responses sampled from ``model`` (the round's reference policy), cached by content: the
    model's fingerprint, the rendered prompts, the sampling settings and (when sampling) seed."""
    prompts = [render_prompt(tokenizer, d.prompt) for d in demos]
    key = content_key(
        "generated",
        {
            "model": model_fp,
            "prompts": hashlib.sha256("\x00".join(prompts).encode()).hexdigest(),
            "gen": gen.model_dump(exclude={"batch_size", "mix_previous_rounds"}),
            "seed": seed if gen.do_sample else 0,
        },
    )
    hit = cache.get("generated", key)
    if hit is not None:
        return list(json.loads((hit / "responses.json").read_text()))
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
