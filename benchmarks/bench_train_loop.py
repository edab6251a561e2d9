"""Throughput of gsil-bench's training loop against a bare PyTorch loop on the same batches.

The peer is the smallest loop that does the same maths: collate, forward, summed response
log-probs, SFT loss, backward, AdamW step. The ratio shows what the shared backend costs
(accelerate wrapping, metrics, logging, grad-norm, scheduler) on the tiny model.

    python benchmarks/bench_train_loop.py [--steps 60] [--batch 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from gsil_bench.backend.batches import collate, sequence_logps, tokenize_pairs
from gsil_bench.backend.trainer import batch_indices, train
from gsil_bench.config import OptimConfig
from gsil_bench.minisuite.config import MiniSuiteConfig
from gsil_bench.minisuite.suite import all_text, build_suite
from gsil_bench.minisuite.tiny import build_model, train_tokenizer
from gsil_bench.registry import get_loss


def bare_loop(model, examples, steps: int, batch: int, pad_id: int) -> tuple[float, int]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens, began = 0, time.perf_counter()
    for step in range(steps):
        idx = batch_indices(len(examples), step, batch, seed=0).tolist()
        data = collate([examples[i] for i in idx], with_generated=False, pad_id=pad_id)
        tokens += int(data["attention_mask"].sum())
        logps, counts = sequence_logps(model, data)
        (-(logps / counts).mean()).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - began, tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    suite = build_suite(MiniSuiteConfig())
    tokenizer = train_tokenizer(all_text(suite), 512)
    demos = suite.base[: args.steps * args.batch]
    examples, _, _ = tokenize_pairs(
        tokenizer,
        [d.prompt for d in demos],
        [d.response for d in demos],
        None,
        max_prompt_tokens=256,
        max_length=512,
    )
    pad = tokenizer.pad_token_id
    # Warm-up (allocator, kernels, thread pool) outside both timings: whichever loop ran
    # first would otherwise pay for it.
    bare_loop(build_model(tokenizer), examples, 5, args.batch, pad)
    bare_s, bare_tokens = bare_loop(build_model(tokenizer), examples, args.steps, args.batch, pad)
    optim = OptimConfig(
        lr=1e-4,
        batch_size=args.batch,
        max_steps=args.steps,
        checkpoint_every=10**9,
        mixed_precision="no",
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = train(
            build_model(tokenizer),
            examples,
            loss=get_loss("sft"),
            hparams={},
            optim=optim,
            seed=0,
            run_dir=Path(tmp),
            pad_id=pad,
        )
    ours = result.tokens / result.seconds
    bare = bare_tokens / bare_s
    print(f"threads {torch.get_num_threads()}, {args.steps} steps of {args.batch}")
    print(f"bare PyTorch loop : {bare:9.0f} tokens/s")
    print(f"gsil-bench train(): {ours:9.0f} tokens/s")
    print(f"ratio (ours/bare) : {ours / bare:.3f}")


if __name__ == "__main__":
    main()
