"""CPU time of greedy decoding with and without preallocated KV buffers (``greedy_tokens``).

The mini suite's evaluation workload: the first user turn of the default suite's 500 math and
500 code test items, rendered with the chat template, each domain cut at the ``mini``
benchmark's answer budget (1.5 x its longest reference answer in tokens + 8, at most 128),
batch 256, on the quickstart-sized tiny Llama (hidden 128, 4 layers, 4 heads, intermediate
384; randomly initialised, so most rows run to the budget; ``--model`` takes a saved model
folder instead, e.g. a cached tiny base whose answers end at EOS). One thread; CPU time of this
process (``time.process_time``), steadier than wall time on a shared machine. The two
settings alternate in one process, and must give the same tokens.

    python benchmarks/bench_greedy_decoding.py [--repeats 3] [--per-domain 500] [--model DIR]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from functools import partial
from pathlib import Path

import torch

from gsil_bench.backend import generation
from gsil_bench.backend.chat import render_prompt
from gsil_bench.minisuite.config import MiniSuiteConfig, TinyModelConfig
from gsil_bench.minisuite.suite import all_text, build_suite
from gsil_bench.minisuite.tiny import build_model, train_tokenizer


def workload(per_domain: int, tokenizer=None) -> tuple[object, list[tuple[list[str], int]]]:
    """The tokenizer (trained on the suite unless given) and, per domain (math, code), its
    prompts and token budget."""
    suite = build_suite(MiniSuiteConfig())
    if tokenizer is None:
        tokenizer = train_tokenizer(all_text(suite), vocab_size=TinyModelConfig().vocab_size)
    groups = []
    for domain in ("math", "code"):
        items = [item for item in suite.test if item.domain == domain][:per_domain]
        longest = max(
            len(tokenizer(item.reference, add_special_tokens=False)["input_ids"]) for item in items
        )
        prompts = [
            render_prompt(tokenizer, [{"role": "user", "content": item.turns[0]}]) for item in items
        ]
        groups.append((prompts, min(128, math.ceil(1.5 * longest) + 8)))
    return tokenizer, groups


def decode(model, tokenizer, groups, *, preallocate: bool) -> tuple[float, list[str]]:
    """CPU seconds of greedy decoding of every group, and the texts."""
    # ``generate`` looks ``greedy_tokens`` up at call time: swap in the setting under test.
    original = generation.greedy_tokens
    generation.greedy_tokens = partial(original, preallocate=preallocate)
    try:
        began = time.process_time()
        texts = []
        for prompts, budget in groups:
            texts += generation.generate(
                model, tokenizer, prompts, max_new_tokens=budget, batch_size=256, progress=False
            )
        return time.process_time() - began, texts
    finally:
        generation.greedy_tokens = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--per-domain", type=int, default=500)
    parser.add_argument("--model", type=Path, help="a saved model folder (with its tokenizer)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.model is None:
        tokenizer, groups = workload(args.per_domain)
        model = build_model(tokenizer)  # d 128, 4 layers, 4 heads, intermediate 384
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer, groups = workload(args.per_domain, AutoTokenizer.from_pretrained(args.model))
        model = AutoModelForCausalLM.from_pretrained(args.model)
    print(
        f"torch {torch.__version__}, {sum(len(p) for p, _ in groups)} prompts,"
        f" budgets {[b for _, b in groups]}"
    )
    seconds: dict[bool, list[float]] = {False: [], True: []}
    texts: dict[bool, list[str]] = {}
    for repeat in range(args.repeats):
        order = (False, True) if repeat % 2 == 0 else (True, False)
        for preallocate in order:
            spent, texts[preallocate] = decode(model, tokenizer, groups, preallocate=preallocate)
            seconds[preallocate].append(spent)
            print(f"repeat {repeat} preallocate={preallocate}: {spent:.2f} CPU s", flush=True)
    if texts[False] != texts[True]:
        raise SystemExit("the two settings gave different texts")
    before, after = (statistics.median(seconds[p]) for p in (False, True))
    print(
        f"median CPU s: DynamicCache {before:.2f}, preallocated {after:.2f}"
        f" ({100 * (1 - after / before):.1f}% less); texts identical"
    )


if __name__ == "__main__":
    main()
