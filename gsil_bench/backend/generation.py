"""Batched generation with HF ``generate``: left-padded, greedy by default, length-sorted."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from gsil_bench.backend.chat import encode_prompt
from gsil_bench.errors import UserError
from gsil_bench.progress import progress_bar


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 32,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    description: str = "generating",
    progress: bool = True,
) -> list[str]:
    """Continue each rendered prompt; returns the decoded continuations in input order.

    Prompts are sorted by length so that each batch wastes little padding; sampling is seeded
    so the same call gives the same text on the same machine.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    outputs: list[str] = [""] * len(encoded)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        with progress_bar(len(encoded), description, enabled=progress) as bar:
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                width = max(len(encoded[i]) for i in idx)
                input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
                attention = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    ids = encoded[i]
                    input_ids[row, width - len(ids) :] = torch.tensor(ids)
                    attention[row, width - len(ids) :] = 1
                sampling = {"temperature": temperature, "top_p": top_p} if do_sample else {}
                out = model.generate(
                    input_ids=input_ids.to(device),
                    attention_mask=attention.to(device),
                    max_new_tokens=max_new_tokens,
                    do_sample=do_sample,
                    pad_token_id=pad_id,
                    eos_token_id=tokenizer.eos_token_id,
                    **sampling,
                )
                for row, i in enumerate(idx):
                    outputs[i] = tokenizer.decode(out[row, width:], skip_special_tokens=True)
                bar.advance(len(idx))
    finally:
        torch.random.set_rng_state(generator_state)
        model.train(was_training)
    return outputs


def generate_vllm(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    staging_dir: Path,
    max_new_tokens: int = 128,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
) -> list[str]:
    """The same contract as :func:`generate`, served by vLLM (GPU users, extra ``vllm``).

    vLLM loads weights from disk, so the model in memory is saved to ``staging_dir`` first
    (once per weight fingerprint: the caller names the folder after it).
    """
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        raise UserError(
            "generation.backend=vllm needs vLLM: pip install 'gsil-bench[vllm]' (GPU machines)"
        ) from None
    from gsil_bench.backend.model import save_pretrained

    if not (staging_dir / "config.json").exists():
        save_pretrained(model, tokenizer, staging_dir)
    llm = LLM(model=str(staging_dir), seed=seed)
    params = SamplingParams(
        max_tokens=max_new_tokens,
        temperature=temperature if do_sample else 0.0,
        top_p=top_p if do_sample else 1.0,
        seed=seed,
    )
    outputs = llm.generate(list(prompts), params)
    del llm  # frees the GPU memory vLLM reserved before training resumes
    return [out.outputs[0].text for out in outputs]
