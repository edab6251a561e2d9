"""Peak memory of a LoRA run (model.peft) against a full-weight run of the same experiment.

    python benchmarks/bench_lora_memory.py [--hidden 640] [--layers 10] [--steps 4]

Builds a randomly initialised Llama locally (about 50M parameters with the defaults; no Hub),
saves it, then runs one gsil-logistic round (self-generated negatives, reference log-probs,
a few optimizer steps, fp32 on the CPU) in a fresh process per mode and reads that process's
peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``: everything the process
held at its peak, Python, torch and the data included, not only tensors). The RSS just before
the optimizer steps (after generation and the reference pass) is printed too: the peak minus it
is what training itself adds (gradients, optimizer state, activations).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def _rss_mb() -> float:
    """The resident set size now (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def build(folder: Path, hidden: int, layers: int) -> int:
    from gsil_bench.minisuite.suite import all_text, build_suite
    from gsil_bench.minisuite.tiny import build_model, train_tokenizer

    tokenizer = train_tokenizer(all_text(build_suite()), vocab_size=512)
    heads = hidden // 64
    model = build_model(
        tokenizer,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        intermediate_size=int(hidden * 2.7),
        max_positions=512,
    )
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def child(base: str, mode: str, work: str, steps: int) -> None:
    import torch

    from gsil_bench.config import load_config
    from gsil_bench.experiment import rounds
    from gsil_bench.experiment.recipe import run_experiment

    torch.set_num_threads(1)
    batch = 4
    overrides = [
        f"model.name={base}",
        "model.dtype=float32",
        f"data.mini.n_align={batch * steps}",
        "data.max_prompt_tokens=96",
        "data.max_length=160",
        "loss.name=gsil-logistic",
        f"optim.batch_size={batch}",
        "optim.epochs=1",
        "optim.checkpoint_every=1000",  # no checkpoint write inside the measurement
        "generation.max_new_tokens=16",
        "generation.batch_size=16",
        "eval.suites=[]",
        f"output_dir={work}/{mode}",
        f"cache_dir={work}/cache-{mode}",
    ]
    if mode == "lora":
        overrides += ["model.peft.r=8", "model.peft.alpha=16"]
    config = load_config(None, overrides)
    before_training: list[float] = []
    train = rounds.train

    def measured_train(*args, **kwargs):
        before_training.append(_rss_mb())
        return train(*args, **kwargs)

    rounds.train = measured_train
    record = run_experiment(config)
    print(
        json.dumps(
            {
                "mode": mode,
                "peak_rss_mb": round(_peak_mb(), 1),
                "rss_before_training_mb": round(before_training[0], 1),
                "steps": record.rounds[0]["steps"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=640)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--child", nargs=3, metavar=("BASE", "MODE", "WORK"))
    args = parser.parse_args()
    if args.child:
        child(*args.child, steps=args.steps)
        return
    with tempfile.TemporaryDirectory() as work:
        base = Path(work) / "base"
        n = build(base, args.hidden, args.layers)
        print(f"model: {n / 1e6:.1f}M parameters (hidden {args.hidden}, {args.layers} layers)")
        rows = {}
        for mode in ("full", "lora"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--steps",
                    str(args.steps),
                    "--child",
                    str(base),
                    mode,
                    work,
                ],
                check=False,
                capture_output=True,
                text=True,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            if out.returncode:
                sys.exit(f"{mode} run failed:\n{out.stderr[-3000:]}")
            rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
            print(json.dumps(rows[mode]))
        ratio = rows["lora"]["peak_rss_mb"] / rows["full"]["peak_rss_mb"]
        added = {m: r["peak_rss_mb"] - r["rss_before_training_mb"] for m, r in rows.items()}
        print(f"peak RSS, LoRA / full: {ratio:.2f}")
        print(f"added by training, LoRA / full: {added['lora'] / added['full']:.2f}")


if __name__ == "__main__":
    main()
