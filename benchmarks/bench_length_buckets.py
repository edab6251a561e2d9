"""CPU time per base-model SFT step: one padded forward, length buckets (the trainer's
default, ``length_buckets``), and padding-free packing under a block mask (``optim.packing``).

The quickstart's tiny Llama (hidden 128, 4 layers) on batches of 32 drawn at random from the
mini suite's base split, as the base recipe draws them (28% of a padded batch's slots are
padding). The three paths compute the same per-row log-probs; they run in one process, in
alternating order, on the same model and batches. CPU time of this process, not wall time,
so that a busy machine disturbs the ratios less.

    OMP_NUM_THREADS=1 python benchmarks/bench_length_buckets.py [--batches 30] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from gsil_bench.backend.batches import collate, length_buckets, sequence_logps, tokenize_pairs
from gsil_bench.backend.blocks import block_logps, collate_packed
from gsil_bench.minisuite.config import MiniSuiteConfig
from gsil_bench.minisuite.suite import all_text, build_suite
from gsil_bench.minisuite.tiny import build_model, train_tokenizer

PATHS = ("padded", "buckets", "packed")


def step_logps(model, chunk, path: str, pad_id: int) -> torch.Tensor:
    """Summed per-token-mean log-probs of ``chunk``'s responses through ``path``."""
    if path == "packed":
        batch = collate_packed(chunk, with_generated=False, shared=False, pad_id=pad_id)
        logps, counts = block_logps(model, batch, len(chunk))
        return (logps / counts).sum()
    widths = [len(e.prompt_ids) + len(e.real_ids) for e in chunk]
    groups = length_buckets(widths) if path == "buckets" else [list(range(len(chunk)))]
    total = torch.zeros(())
    for group in groups:
        batch = collate([chunk[i] for i in group], with_generated=False, pad_id=pad_id)
        logps, counts = sequence_logps(model, batch)
        total = total + (logps / counts).sum()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    suite = build_suite(MiniSuiteConfig())
    tokenizer = train_tokenizer(all_text(suite), vocab_size=512)
    examples, _, _ = tokenize_pairs(
        tokenizer,
        [d.prompt for d in suite.base],
        [d.response for d in suite.base],
        None,
        max_prompt_tokens=256,
        max_length=512,
    )
    g = torch.Generator().manual_seed(0)
    draws = [torch.randperm(len(examples), generator=g)[:32].tolist() for _ in range(args.batches)]
    chunks = [[examples[i] for i in draw] for draw in draws]
    model = build_model(
        tokenizer,
        hidden_size=128,
        num_layers=4,
        num_heads=4,
        intermediate_size=384,
        max_positions=512,
        seed=0,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)

    def run(path: str) -> float:
        began = time.process_time()
        for chunk in chunks:
            (-step_logps(model, chunk, path, tokenizer.pad_token_id) / 32).backward()
            optimizer.step()
            optimizer.zero_grad()
        return (time.process_time() - began) / len(chunks) * 1000

    run("padded")  # warm-up
    for repeat in range(args.repeats):
        ms = {path: run(path) for path in PATHS}
        ratios = ", ".join(f"{p} {ms[p] / ms['padded']:.3f}x" for p in PATHS[1:])
        cells = ", ".join(f"{p} {ms[p]:.1f}" for p in PATHS)
        print(f"repeat {repeat}: CPU ms per step: {cells}; vs padded: {ratios}")


if __name__ == "__main__":
    main()
