"""Peak memory of summed response log-probs at a large vocabulary: the project's path against
the naive one.

One forward + backward of ``-(summed response log-prob / response tokens).mean()`` on a narrow
randomly initialised Llama (hidden 64, 2 layers by default) with Qwen2.5's vocabulary
(152,064), B 4 rows of T 1,024 tokens, fp32 on the CPU, each path in a fresh process:

- ``project``: :func:`gsil_bench.backend.batches.sequence_logps`, the LM head on response
  positions only, in activation-checkpointed chunks of at most 2^26 logits;
- ``naive``: the whole batch's logits, ``log_softmax`` over the vocabulary, ``gather`` of the
  targets, the mask applied afterwards (the DPO reference code's ``_get_batch_logps``, and
  ``sequence_logps`` before the response-only head).

Memory is the child's peak resident set size (``ru_maxrss``), and the RSS just before the
forward (model, data, libraries): the peak minus it is what the log-prob computation added.
Both paths must give the same summed log-probs (checked to 1e-3 relative, fp32 sums of a
thousand terms); the ratio is printed for the peak and for the added memory.

    OMP_NUM_THREADS=1 python benchmarks/bench_logprob_memory.py [--prompt-fraction 0.6]

About a minute and ~10 GB for the naive child at the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

VOCAB = 152_064  # Qwen2.5


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def naive_logps(model, batch):
    """Summed response log-probs through the whole batch's fp32 log-softmax."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logps = logits[:, :-1].float().log_softmax(-1)
    token_logps = logps.gather(-1, batch["input_ids"][:, 1:].unsqueeze(-1)).squeeze(-1)
    mask = batch["response_mask"][:, 1:]
    return (token_logps * mask).sum(-1), mask.sum(-1)


def child(path: str, args: argparse.Namespace) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from gsil_bench.backend.batches import TrainExample, collate, sequence_logps

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=max(1, args.hidden // 64),
        intermediate_size=3 * args.hidden,
        max_position_embeddings=args.length,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    response = args.length - args.prompt_tokens
    ids = torch.randint(1, args.vocab, (args.batch, args.length)).tolist()
    examples = [TrainExample(row[: args.prompt_tokens], row[args.prompt_tokens :]) for row in ids]
    batch = collate(examples, with_generated=False, pad_id=0)
    before = rss_mb()
    logps, counts = (sequence_logps if path == "project" else naive_logps)(model, batch)
    (-(logps / counts).mean()).backward()
    peak = peak_rss_mb()
    print(
        json.dumps(
            {
                "path": path,
                "peak_rss_mb": round(peak, 1),
                "rss_before_mb": round(before, 1),
                "added_mb": round(peak - before, 1),
                "response_tokens": args.batch * response,
                "logps": logps.tolist(),
            }
        )
    )


def spawn(path: str, argv: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, __file__, *argv, "--child", path]
    out = subprocess.run(command, check=False, capture_output=True, text=True, env=env)
    if out.returncode:
        sys.exit(f"{path} path failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=VOCAB)
    parser.add_argument("--length", type=int, default=1024, help="T, tokens per row")
    parser.add_argument("--batch", type=int, default=4, help="B, rows")
    parser.add_argument(
        "--prompt-fraction", type=float, default=0.6, help="of each row's tokens, the prompt"
    )
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--child", choices=("project", "naive"))
    args = parser.parse_args(argv)
    if not 0 <= args.prompt_fraction < 1:
        parser.error(f"--prompt-fraction ({args.prompt_fraction}) must be in [0, 1)")
    forwarded = [
        f"--{k.replace('_', '-')}={v}"
        for k, v in vars(args).items()
        if k not in ("child", "json", "prompt_tokens")
    ]
    args.prompt_tokens = min(round(args.prompt_fraction * args.length), args.length - 1)
    return args, forwarded


def main() -> None:
    args, forwarded = parse()
    if args.child:
        child(args.child, args)
        return
    rows = {path: spawn(path, forwarded) for path in ("naive", "project")}
    for a, b in zip(rows["naive"]["logps"], rows["project"]["logps"], strict=True):
        if abs(a - b) > 1e-3 * abs(a):
            sys.exit(f"the paths disagree: summed log-probs {a} (naive) vs {b} (project)")
    print(
        f"vocabulary {args.vocab:,}, B {args.batch} x T {args.length} "
        f"({args.prompt_tokens} prompt tokens per row), hidden {args.hidden}, "
        f"{args.layers} layers, fp32, one forward + backward"
    )
    for path, row in rows.items():
        print(
            f"{path:8} peak RSS {row['peak_rss_mb']:8,.0f} MiB, before the forward "
            f"{row['rss_before_mb']:6,.0f} MiB, added {row['added_mb']:8,.0f} MiB"
        )
    ratios = {key: rows["project"][key] / rows["naive"][key] for key in ("peak_rss_mb", "added_mb")}
    print(f"project / naive: peak {ratios['peak_rss_mb']:.3f}, added {ratios['added_mb']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        for row in rows.values():
            del row["logps"]
        report = {"args": {k: v for k, v in vars(args).items() if k not in ("child", "json")}}
        report.update(runs=rows, ratios_project_over_naive=ratios)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
