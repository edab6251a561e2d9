"""The base recipe of the tiny model: tokenizer + tiny Llama, SFT-trained on the suite's base split.

Built once per content key (suite content, model sizes, base recipe, seed) and cached; a killed
build resumes from its checkpoint because it runs through the same training loop as any loss.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from gsil_bench.backend.batches import tokenize_pairs
from gsil_bench.backend.cache import DiskCache, content_key
from gsil_bench.backend.model import save_pretrained
from gsil_bench.backend.trainer import train
from gsil_bench.config import OptimConfig
from gsil_bench.io import file_lock
from gsil_bench.minisuite.config import TinyModelConfig
from gsil_bench.minisuite.suite import MiniSuite, all_text
from gsil_bench.minisuite.tiny import build_model, train_tokenizer
from gsil_bench.registry import get_loss


def base_optim(tiny: TinyModelConfig) -> OptimConfig:
    """The SFT schedule of the base model: ``base_steps`` steps ending in a linear decay."""
    return OptimConfig(
        lr=tiny.base_lr,
        batch_size=tiny.base_batch_size,
        epochs=1000.0,  # bounded by max_steps
        max_steps=tiny.base_steps,
        schedule="linear",
        decay_steps=tiny.base_decay_steps,
        warmup_ratio=0.02,
        checkpoint_every=100,
        mixed_precision="no",
    )


def base_key(tiny: TinyModelConfig, suite: MiniSuite, seed: int) -> str:
    """The cache key of a base model: sizes and recipe, suite content and seed.

    ``tiny.seed`` only chooses the seed, which is keyed as ``seed``; seed 0 (every base model
    before the knob existed) is left out, so those entries keep their keys.
    """
    inputs: dict[str, Any] = {
        "tiny": tiny.model_dump(exclude={"seed"}),
        "suite": suite.fingerprint(),
    }
    if seed != 0:
        inputs["seed"] = seed
    return content_key("base", inputs)


def tiny_base(
    tiny: TinyModelConfig, suite: MiniSuite, cache: DiskCache, *, seed: int = 0
) -> tuple[Path, dict]:
    """Path of the cached base model of ``seed`` (building it if missing) and its build facts.

    ``seed`` sets the initial weights and the order of the SFT batches.
    """
    key = base_key(tiny, suite, seed)
    hit = cache.get("base", key)
    if hit is not None:
        return hit, json.loads((hit / "COMPLETE").read_text())
    # One builder per key on this machine: sweep workers that need the same seed wait for
    # the first one's model instead of training it again in the same work folder.
    with file_lock(cache.root / "base-work" / f"{key}.lock"):
        hit = cache.get("base", key)
        if hit is not None:
            return hit, json.loads((hit / "COMPLETE").read_text())
        return _build(tiny, suite, cache, key, seed)


def _build(
    tiny: TinyModelConfig, suite: MiniSuite, cache: DiskCache, key: str, seed: int
) -> tuple[Path, dict]:
    began = time.perf_counter()
    tokenizer = train_tokenizer(all_text(suite), vocab_size=tiny.vocab_size)
    model = build_model(
        tokenizer,
        hidden_size=tiny.hidden_size,
        num_layers=tiny.num_layers,
        num_heads=tiny.num_heads,
        intermediate_size=tiny.intermediate_size,
        max_positions=tiny.max_positions,
        seed=seed,
    )
    examples, _, _ = tokenize_pairs(
        tokenizer,
        [d.prompt for d in suite.base],
        [d.response for d in suite.base],
        None,
        max_prompt_tokens=tiny.max_positions // 2,
        max_length=tiny.max_positions,
    )
    work_dir = cache.root / "base-work" / key
    result = train(
        model,
        examples,
        loss=get_loss("sft"),
        hparams={},
        optim=base_optim(tiny),
        seed=seed,
        run_dir=work_dir,
        pad_id=tokenizer.pad_token_id,
        description="base model (SFT)",
    )
    meta = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "steps": result.steps,
        "final_loss": result.history[-1]["loss"] if result.history else None,
        "tokens_per_s": result.tokens_per_s,
        "seconds": time.perf_counter() - began,
    }
    path = cache.put("base", key, lambda tmp: save_pretrained(model, tokenizer, tmp), meta)
    shutil.rmtree(work_dir, ignore_errors=True)
    return path, meta
