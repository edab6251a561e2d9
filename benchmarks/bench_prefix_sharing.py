"""Training throughput with and without prefix sharing (``optim.prefix_sharing``).

The quickstart-sized tiny Llama (hidden 128, 4 layers) trains with the ``spin`` loss on pairs
from the mini suite's align split: the demonstration as the real response and the next
record's response as the generated one (realistic lengths without a generation pass). Both
settings run in one process, in alternating order, each on a fresh copy of the same model;
tokens count each pair's two sequences as the unshared path feeds them (the prompt twice),
so tokens/s compares the same work.

    python benchmarks/bench_prefix_sharing.py [--steps 20] [--batch 32] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from gsil_bench.backend.batches import tokenize_pairs
from gsil_bench.backend.reference import reference_logps
from gsil_bench.backend.trainer import train
from gsil_bench.config import OptimConfig
from gsil_bench.minisuite.config import MiniSuiteConfig
from gsil_bench.minisuite.suite import all_text, build_suite
from gsil_bench.minisuite.tiny import build_model, train_tokenizer
from gsil_bench.registry import get_loss


def run(
    tokenizer, examples, reference, *, sharing: bool, steps: int, batch: int
) -> tuple[float, float]:
    """Training tokens per second of wall time and per CPU second (this process, all threads:
    steadier than wall time on a shared machine) of ``steps`` optimizer steps of ``spin``."""
    spec = get_loss("spin")
    optim = OptimConfig(
        lr=3e-4,
        batch_size=batch,
        max_steps=steps,
        checkpoint_every=10**9,
        mixed_precision="no",
        prefix_sharing=sharing,
    )
    with tempfile.TemporaryDirectory() as tmp:
        cpu = time.process_time()
        result = train(
            build_model(tokenizer),
            examples,
            loss=spec,
            hparams=dict(spec.hparams),
            optim=optim,
            seed=0,
            run_dir=Path(tmp),
            pad_id=tokenizer.pad_token_id,
            reference=reference,
        )
        cpu = time.process_time() - cpu
    return result.tokens / result.seconds, result.tokens / cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    suite = build_suite(MiniSuiteConfig())
    tokenizer = train_tokenizer(all_text(suite), 512)
    demos = suite.align[: args.steps * args.batch + 1]
    examples, _, _ = tokenize_pairs(
        tokenizer,
        [d.prompt for d in demos[:-1]],
        [d.response for d in demos[:-1]],
        [d.response for d in demos[1:]],
        max_prompt_tokens=256,
        max_length=512,
    )
    prompts = sum(2 * len(e.prompt_ids) for e in examples)  # fed twice when unshared
    fed = prompts + sum(len(e.real_ids) + len(e.generated_ids or []) for e in examples)
    print(f"{len(examples)} pairs; prompts are {prompts / fed:.0%} of the unshared tokens")
    frozen = build_model(tokenizer)
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for sharing in (False, True, True, False):  # the reference pass, alternating
        cpu = time.process_time()
        reference = reference_logps(
            frozen,
            examples,
            with_generated=True,
            batch_size=args.batch,
            pad_id=tokenizer.pad_token_id,
            prefix_sharing=sharing,
        )
        seconds[sharing].append(time.process_time() - cpu)
    plain, shared = min(seconds[False]), min(seconds[True])
    print(f"reference pass, CPU-s: unshared {plain:.2f}, shared {shared:.2f}")
    kwargs = {"steps": args.steps, "batch": args.batch}
    run(tokenizer, examples, reference, sharing=False, steps=3, batch=args.batch)  # warm-up
    rates: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for r in range(args.repeats):
        for sharing in (False, True) if r % 2 == 0 else (True, False):
            wall, cpu = run(tokenizer, examples, reference, sharing=sharing, **kwargs)
            rates[sharing].append((wall, cpu))
            print(
                f"repeat {r + 1}, prefix_sharing={sharing}: {wall:,.0f} tokens/s, "
                f"{cpu:,.0f} tokens per CPU-s"
            )
    for i, unit in enumerate(("tokens/s", "tokens per CPU-s")):
        plain = statistics.median(x[i] for x in rates[False])
        shared = statistics.median(x[i] for x in rates[True])
        print(f"median {unit}: unshared {plain:,.0f}, shared {shared:,.0f} ({shared / plain:.2f}x)")


if __name__ == "__main__":
    main()
