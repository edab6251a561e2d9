"""DPO-style training side by side: TRL's DPOTrainer against gsil-bench's ``train()``.

The same work for both tools (issue #11's table): the same randomly initialised Llama (saved
once, loaded by each tool), the same locally trained tokenizer, the same pairs (the mini
suite's align split: the chat-rendered prompt, its demonstration as the chosen response and
the next record's response as the rejected one, so prompts are ~60% of the tokens fed), batch
32, fp32, AdamW (lr 1e-4, linear schedule, 10% warmup, clipping at 1.0), one epoch. TRL runs
``DPOTrainer`` with the sigmoid loss, beta 0.1 and precomputed reference log-probs; gsil-bench
runs ``reference_logps`` then ``train()`` with the ``spin`` loss (the same DPO-sigmoid maths,
-log s(beta * (r_w - r_l))) at its shipped defaults. Each tool runs in a fresh process of its
own (``--child trl|gsil``), in alternating order, ``--repeats`` times; the medians are
reported.

Measured per run: training tokens/s (tokens counted the same way for both: the non-pad tokens
of prompt+chosen and prompt+rejected, so the prompt twice, over the wall time of the tool's
training call), the reference pass in seconds, the child's peak RSS (``ru_maxrss``: Python,
the libraries and the data included), the fraction of padded slots in the batches the tool
built, and the fraction of this machine's fp32 matmul roofline: 6N FLOPs per token (N the
model's parameters) against the sustained ``torch.mm`` rate measured in the same run with the
same threads.

    python benchmarks/bench_vs_trl.py [--repeats 2] [--pairs 1024] [--batch 32] [--json FILE]
    python benchmarks/bench_vs_trl.py --quick [--tools gsil]   # a smoke run of a few seconds

TRL is in the ``bench`` extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# name: (hidden size, layers); intermediate 3 x hidden, 64-wide heads, tied embeddings.
# "small" is the 5.25M-parameter Llama at the mini suite's 512-token vocabulary.
SIZES = {"small": (256, 6), "large": (512, 8), "quick": (64, 2)}
TOOLS = ("trl", "gsil")
BETA = 0.1
LR = 1e-4
WARMUP_RATIO = 0.1


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def trl_style_ids(tokenizer, prompt: str, chosen: str, rejected: str) -> tuple[list, list, list]:
    """(prompt, chosen, rejected) token ids as TRL 1.16's DPOTrainer makes them from plain
    strings: EOS appended to each response, prompt and prompt+response tokenised whole, the
    responses starting where those token lists part (``_prepare_dataset``)."""
    eos = tokenizer.eos_token
    prompt_ids = tokenizer(prompt)["input_ids"]
    with_chosen = tokenizer(prompt + chosen + eos)["input_ids"]
    with_rejected = tokenizer(prompt + rejected + eos)["input_ids"]
    cut = min(common_prefix(prompt_ids, with_chosen), common_prefix(prompt_ids, with_rejected))
    return prompt_ids[:cut], with_chosen[cut:], with_rejected[cut:]


def common_prefix(a: list, b: list) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def tokens_fed(triples) -> int:
    """Non-pad tokens of prompt+chosen and prompt+rejected: the prompt counted twice."""
    return sum(2 * len(p) + len(c) + len(r) for p, c, r in triples)


def matmul_gflops(size: int, seconds: float) -> float:
    """Sustained fp32 ``torch.mm`` rate of (size x size) @ (size x size): the best of three
    windows of about ``seconds`` each, 2 size^3 FLOPs per product."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up
    best = 0.0
    for _ in range(3):
        n, began = 0, time.perf_counter()
        while time.perf_counter() - began < seconds:
            torch.mm(a, b)
            n += 1
        best = max(best, 2 * size**3 * n / (time.perf_counter() - began))
    return best / 1e9


def prepare(work: Path, sizes: list[str], pairs: int) -> dict[str, int]:
    """The pairs (``pairs.json``) and one saved model + tokenizer folder per size; returns
    the parameters of each model."""
    from gsil_bench.backend.chat import render_prompt
    from gsil_bench.minisuite.config import MiniSuiteConfig
    from gsil_bench.minisuite.suite import all_text, build_suite
    from gsil_bench.minisuite.tiny import build_model, train_tokenizer

    suite = build_suite(MiniSuiteConfig(n_align=pairs + 1))
    tokenizer = train_tokenizer(all_text(suite), 512)
    demos = suite.align[: pairs + 1]
    rows = [
        {
            "prompt": render_prompt(tokenizer, d.prompt),
            "chosen": d.response,
            "rejected": demos[i + 1].response,
        }
        for i, d in enumerate(demos[:-1])
    ]
    (work / "pairs.json").write_text(json.dumps(rows))
    params = {}
    for name in sizes:
        hidden, layers = SIZES[name]
        model = build_model(
            tokenizer,
            hidden_size=hidden,
            num_layers=layers,
            num_heads=max(1, hidden // 64),
            intermediate_size=3 * hidden,
            max_positions=1024,
        )
        model.save_pretrained(work / name, safe_serialization=True)
        tokenizer.save_pretrained(work / name)
        params[name] = sum(p.numel() for p in model.parameters())
    return params


def load(folder: str, threads: int):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return tokenizer, model


def child_gsil(folder: str, rows: list[dict], batch: int, threads: int) -> dict:
    from gsil_bench.backend import trainer as trainer_module
    from gsil_bench.backend.batches import TrainExample
    from gsil_bench.backend.reference import reference_logps
    from gsil_bench.config import OptimConfig
    from gsil_bench.registry import get_loss

    tokenizer, model = load(folder, threads)
    triples = [trl_style_ids(tokenizer, r["prompt"], r["chosen"], r["rejected"]) for r in rows]
    examples = [TrainExample(p, c, r) for p, c, r in triples]
    optim = OptimConfig(
        lr=LR,
        batch_size=batch,
        epochs=1,
        warmup_ratio=WARMUP_RATIO,
        checkpoint_every=10**9,
        mixed_precision="no",
    )
    pad = tokenizer.pad_token_id
    began = time.perf_counter()
    reference = reference_logps(
        model,
        examples,
        with_generated=True,
        batch_size=batch,
        pad_id=pad,
        prefix_sharing=optim.prefix_sharing,
    )
    reference_s = time.perf_counter() - began
    slots = count_slots(trainer_module, ("collate", "collate_shared"), pad)
    spec = get_loss("spin")
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        result = trainer_module.train(
            model,
            examples,
            loss=spec,
            hparams={**spec.hparams, "beta": BETA},
            optim=optim,
            seed=0,
            run_dir=Path(tmp),
            pad_id=pad,
            reference=reference,
        )
        train_s = time.perf_counter() - began
    losses = [row["loss"] for row in result.history]
    return {
        "tokens": tokens_fed(triples),
        "tokens_by_tool": result.tokens,
        "steps": result.steps,
        "train_s": train_s,
        "reference_s": reference_s,
        "padded_fraction": 1 - slots["filled"] / slots["total"],
        "mean_loss": statistics.fmean(losses),
        "prefix_sharing": optim.prefix_sharing,
    }


def count_slots(module, names: tuple[str, ...], pad_id: int) -> dict[str, int]:
    """Wrap ``module``'s collate functions ``names`` so that every batch they build adds its
    slots and its non-pad tokens to the returned counter."""
    slots = {"filled": 0, "total": 0}
    for name in names:
        original = getattr(module, name)

        def counted(*args, _original=original, **kwargs):
            batch = _original(*args, **kwargs)
            ids = batch["input_ids"]
            slots["total"] += ids.numel()
            if "attention_mask" in batch:
                slots["filled"] += int(batch["attention_mask"].sum())
            else:  # a prefix-shared batch: padding is where no segment is
                slots["filled"] += int(batch["tokens"].sum()) - shared_prompt_tokens(*args)
            return batch

        setattr(module, name, counted)
    return slots


def shared_prompt_tokens(examples, *_args) -> int:
    """The prompts a prefix-shared batch does not repeat (its ``tokens`` count them twice)."""
    return sum(len(e.prompt_ids) for e in examples)


def child_trl(folder: str, rows: list[dict], batch: int, threads: int) -> dict:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    tokenizer, model = load(folder, threads)
    reference_s = [0.0]
    precompute = DPOTrainer._precompute_ref_logps

    def timed_precompute(self, *args, **kwargs):
        began = time.perf_counter()
        out = precompute(self, *args, **kwargs)
        reference_s[0] += time.perf_counter() - began
        return out

    DPOTrainer._precompute_ref_logps = timed_precompute  # type: ignore[method-assign]
    steps = len(rows) // batch
    with tempfile.TemporaryDirectory() as tmp:
        config = DPOConfig(
            output_dir=tmp,
            per_device_train_batch_size=batch,
            precompute_ref_batch_size=batch,
            num_train_epochs=1,
            learning_rate=LR,
            lr_scheduler_type="linear",
            warmup_steps=int(round(WARMUP_RATIO * steps)),  # as gsil-bench rounds it
            weight_decay=0.0,
            max_grad_norm=1.0,
            optim="adamw_torch",
            loss_type=["sigmoid"],
            beta=BETA,
            precompute_ref_log_probs=True,
            max_length=None,
            bf16=False,
            fp16=False,
            gradient_checkpointing=False,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            logging_steps=10**6,
            disable_tqdm=True,
            dataloader_num_workers=0,
            seed=0,
        )
        trainer = DPOTrainer(
            model=model,
            args=config,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
        )
        data = trainer.train_dataset
        assert isinstance(data, Dataset)  # prepared from Dataset.from_list
        triples = list(
            zip(data["prompt_ids"], data["chosen_ids"], data["rejected_ids"], strict=True)
        )
        slots = {"filled": 0, "total": 0}
        collator = trainer.data_collator

        def counted(examples):
            out = collator(examples)
            slots["total"] += out["input_ids"].numel()
            slots["filled"] += int(out["attention_mask"].sum())
            return out

        trainer.data_collator = counted
        began = time.perf_counter()
        output = trainer.train()
        train_s = time.perf_counter() - began
    return {
        "tokens": tokens_fed(triples),
        # TRL's own count: the attention-mask sum of every training batch it built.
        "tokens_by_tool": int(getattr(trainer, "_total_train_tokens", -1)),
        "steps": trainer.state.global_step,
        "train_s": train_s,
        "reference_s": reference_s[0],
        "padded_fraction": 1 - slots["filled"] / slots["total"],
        "mean_loss": output.training_loss,
    }


def child(tool: str, folder: str, pairs_file: str, batch: int, threads: int) -> None:
    rows = json.loads(Path(pairs_file).read_text())
    run = child_trl if tool == "trl" else child_gsil
    out = run(folder, rows, batch, threads)
    out.update(tool=tool, tokens_per_s=out["tokens"] / out["train_s"], peak_rss_mb=peak_rss_mb())
    print(json.dumps(out))


def spawn(tool: str, folder: Path, work: Path, batch: int, threads: int) -> dict:
    command = [sys.executable, __file__, "--child", tool, str(folder), str(work / "pairs.json")]
    command += ["--batch", str(batch), "--threads", str(threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TQDM_DISABLE": "1"}
    # A fresh datasets cache per run: no run reads the reference log-probs TRL cached in another.
    env["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix=f"datasets-{tool}-", dir=work)
    out = subprocess.run(command, check=False, capture_output=True, text=True, env=env)
    if out.returncode:
        sys.exit(f"{tool} run failed ({folder.name}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(runs: dict[str, list[dict]], params: int, gflops: float) -> dict:
    """Medians per tool, the gsil/trl ratios, and each tool's fraction of the roofline."""
    tools: dict[str, dict] = {}
    for tool, rows in runs.items():
        median = {k: statistics.median(r[k] for r in rows) for k in MEDIAN_KEYS}
        median["roofline_fraction"] = median["tokens_per_s"] * 6 * params / (gflops * 1e9)
        median["padded_fraction"] = rows[0]["padded_fraction"]
        median["tokens"] = rows[0]["tokens"]
        tools[tool] = {"median": median, "runs": rows}
    out: dict = {"params": params, "tools": tools}
    if len(tools) == 2:
        gsil, trl = tools["gsil"]["median"], tools["trl"]["median"]
        out["ratios_gsil_over_trl"] = {k: gsil[k] / trl[k] for k in MEDIAN_KEYS}
    return out


MEDIAN_KEYS = ("tokens_per_s", "train_s", "reference_s", "peak_rss_mb")


def check_same_work(runs: dict[str, dict[str, list[dict]]]) -> None:
    """Every run of a size fed the same tokens (prompt+chosen+rejected of its data), and each
    tool's own count (gsil-bench's ``TrainResult.tokens``, TRL's ``num_tokens`` metric) says
    so too; else the comparison is void and the benchmark stops."""
    for size, tools in runs.items():
        counts = {
            (r["tool"], r["tokens"], r["tokens_by_tool"]) for rs in tools.values() for r in rs
        }
        if len({c[1:] for c in counts}) != 1 or any(c[1] != c[2] for c in counts):
            sys.exit(f"{size}: the tools did not feed the same tokens: {sorted(counts)}")


def versions() -> dict[str, str]:
    names = ("torch", "transformers", "accelerate", "datasets", "trl", "gsil-bench")
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def print_size(name: str, result: dict, pairs: int, batch: int) -> None:
    hidden, layers = SIZES[name]
    print(
        f"\n{name}: Llama d {hidden} x {layers} layers, {result['params'] / 1e6:.2f}M params, "
        f"{pairs} pairs, batch {batch}"
    )
    rows = [
        ("training tokens/s", "tokens_per_s", "{:,.0f}"),
        ("reference pass, s", "reference_s", "{:.2f}"),
        ("peak RSS, MiB", "peak_rss_mb", "{:,.0f}"),
        ("roofline fraction", "roofline_fraction", "{:.1%}"),
        ("padded slots", "padded_fraction", "{:.1%}"),
        ("tokens fed", "tokens", "{:,}"),
    ]
    tools = list(result["tools"])
    print(f"{'':22}" + "".join(f"{t:>12}" for t in tools) + "  gsil/trl")
    for label, key, form in rows:
        cells = "".join(f"{form.format(result['tools'][t]['median'][key]):>12}" for t in tools)
        ratio = result.get("ratios_gsil_over_trl", {}).get(key)
        print(f"{label:22}{cells}" + (f"  {ratio:.2f}x" if ratio else ""))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,large", help="comma-separated: small, large")
    parser.add_argument("--tools", default="trl,gsil", help="comma-separated: trl, gsil")
    parser.add_argument("--pairs", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--json", type=Path, default=None, help="where the results go")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny model, 64 pairs")
    parser.add_argument("--child", nargs=3, metavar=("TOOL", "MODEL_DIR", "PAIRS_JSON"))
    args = parser.parse_args()
    if args.child:
        return args
    args.sizes = ["quick"] if args.quick else args.sizes.split(",")
    args.tools = args.tools.split(",")
    for kind, given, allowed in (("--sizes", args.sizes, SIZES), ("--tools", args.tools, TOOLS)):
        unknown = [x for x in given if x not in allowed]
        if unknown:
            parser.error(f"{kind}: unknown {unknown[0]!r}; expected one of {', '.join(allowed)}")
    if args.quick:
        args.pairs, args.batch, args.repeats = 64, 16, 1
    if args.pairs < args.batch:
        parser.error(f"--pairs ({args.pairs}) is smaller than one --batch ({args.batch})")
    if "trl" in args.tools and importlib.util.find_spec("trl") is None:
        parser.error("--tools trl: TRL is not installed (pip install -e '.[bench]')")
    if args.json is None:
        default = "bench_vs_trl_quick.json" if args.quick else "bench_vs_trl.json"
        base = Path(tempfile.gettempdir()) if args.quick else Path("results/benchmarks")
        args.json = base / default
    return args


def main() -> None:
    from gsil_bench.io import cpu_model

    args = parse()
    if args.child:
        tool, folder, pairs_file = args.child
        child(tool, folder, pairs_file, batch=args.batch, threads=args.threads)
        return
    import torch

    torch.set_num_threads(args.threads)
    mm_size, mm_seconds = (512, 0.1) if args.quick else (2048, 1.0)
    report: dict = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": args.threads},
        "versions": versions(),
        "setup": {"pairs": args.pairs, "batch": args.batch, "repeats": args.repeats},
        "sizes": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        params = prepare(work, args.sizes, args.pairs)
        gflops_before = matmul_gflops(mm_size, mm_seconds)
        runs: dict[str, dict[str, list[dict]]] = {s: {t: [] for t in args.tools} for s in params}
        for r in range(args.repeats):
            order = args.tools if r % 2 == 0 else args.tools[::-1]
            for size in args.sizes:
                for tool in order:
                    runs[size][tool].append(
                        spawn(tool, work / size, work, args.batch, args.threads)
                    )
        gflops_after = matmul_gflops(mm_size, mm_seconds)
    check_same_work(runs)
    gflops = max(gflops_before, gflops_after)  # the machine's rate; a busy moment reads low
    report["matmul"] = {
        "size": mm_size,
        "gflops_before": gflops_before,
        "gflops_after": gflops_after,
    }
    print(f"torch.mm fp32 {mm_size}^2, {args.threads} threads: {gflops:.0f} GFLOP/s")
    for size in args.sizes:
        report["sizes"][size] = summarise(runs[size], params[size], gflops)
        print_size(size, report["sizes"][size], args.pairs, args.batch)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
