"""How long a checkpoint stalls training: a synchronous save vs the background one.

A randomly initialised Llama of about 25M parameters (hidden 512, 8 layers, 8 heads,
intermediate 1408, the tiny tokenizer's 300-token vocabulary), AdamW, prepared by accelerate
as ``train`` prepares it; the checkpoint (weights, two Adam moments, RNG, scheduler) is about
300 MB. One training step is a forward+backward+update of ``--batch`` rows of ``--tokens``
tokens on one thread.

Stall of a checkpoint = (wall time from the save call until the checkpoint is on disk and
``--after`` more training steps are done) - (wall time of ``--after`` steps without a
checkpoint, measured right before: paired, so that the load of a shared machine drifts less
between the two). Synchronously that is the save itself; in the background it is the snapshot copy
plus whatever the writer thread takes from the training steps it overlaps (the write is
waited for after those steps, as the next save would). The two modes alternate, ``--repeats``
times each; medians are printed, and the ratio async / sync.

    python benchmarks/bench_async_checkpoint.py [--repeats 7] [--after 1] [--threads 1] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from gsil_bench.backend.checkpoint import Checkpointer
from gsil_bench.backend.trainer import _training_accelerator
from gsil_bench.minisuite.tiny import build_model, train_tokenizer

TEXTS = ["Tom has 3 apples and buys 4 more. 3 + 4 = 7. #### 7", "def f(x):\n    return x"] * 20


def setup(batch: int, tokens: int):
    tokenizer = train_tokenizer(TEXTS, vocab_size=300)
    model = build_model(
        tokenizer,
        hidden_size=512,
        num_layers=8,
        num_heads=8,
        intermediate_size=1408,
        max_positions=tokens,
        seed=0,
    )
    accelerator = _training_accelerator("no")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    ids = torch.randint(0, 300, (batch, tokens))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        scheduler.step()

    params = sum(p.numel() for p in model.parameters())
    return accelerator, step, params


def stall(checkpointer: Checkpointer, step, after: int, n: int) -> tuple[float, float]:
    """(seconds the save call blocks, the stall as defined above)."""
    began = time.perf_counter()
    for _ in range(after):
        step()
    without = time.perf_counter() - began
    began = time.perf_counter()
    checkpointer.save(n)
    blocked = time.perf_counter() - began
    for _ in range(after):
        step()
    checkpointer.join()
    return blocked, time.perf_counter() - began - without


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--after", type=int, default=1, help="training steps after the save")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (a temp dir)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    accelerator, step, params = setup(args.batch, args.tokens)
    step()  # warm-up
    times = []
    for _ in range(5):
        began = time.perf_counter()
        step()
        times.append(time.perf_counter() - began)
    step_s = statistics.median(times)
    results: dict[str, list[tuple[float, float]]] = {"sync": [], "async": []}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        checkpointers = {
            "sync": Checkpointer(Path(tmp) / "sync", accelerator, asynchronous=False),
            "async": Checkpointer(Path(tmp) / "async", accelerator, asynchronous=True),
        }
        for n in range(args.repeats):
            for mode, checkpointer in checkpointers.items():
                results[mode].append(stall(checkpointer, step, args.after, n + 1))
        size = sum(f.stat().st_size for f in (Path(tmp) / "sync" / "checkpoint").iterdir())
    print(f"model: {params / 1e6:.1f}M parameters, checkpoint {size / 2**20:.0f} MiB")
    print(
        f"step without a checkpoint: {step_s:.3f} s (median of 5), {args.threads} thread(s), "
        f"{args.after} steps after the save"
    )
    medians = {}
    for mode in ("sync", "async"):
        blocked = [b for b, _ in results[mode]]
        stalls = [s for _, s in results[mode]]
        medians[mode] = statistics.median(blocked), statistics.median(stalls)
        runs = ", ".join(f"{x:.3f}" for x in stalls)
        blocks, stalled = medians[mode]
        print(f"{mode:>5}: save call blocks {blocks:.3f} s, stall {stalled:.3f} s ({runs})")
    (sync_blocks, sync_stall), (async_blocks, async_stall) = medians["sync"], medians["async"]
    print(
        f"async / sync: blocking {async_blocks / sync_blocks:.2f}, "
        f"stall {async_stall / sync_stall:.2f}"
    )


if __name__ == "__main__":
    main()
