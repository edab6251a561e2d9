"""GPU check: one short GSIL round of a ~0.5B Llama and a tiny quickstart, on one device.

    python benchmarks/gpu_check.py [--device cuda] [--size 0.5b] [--out DIR] [--peak-tflops X]
    python benchmarks/gpu_check.py --device cpu --size tiny     # the same path on a CPU, < 1 min

For a machine with one NVIDIA GPU and no network. Builds a randomly initialised Llama in-process
(``0.5b``: Qwen2.5-0.5B's shape, d 896, 24 layers, 14 heads / 2 KV heads, intermediate 4864,
vocabulary 151,936, tied embeddings; about 494M parameters) with a tokenizer trained locally on
the mini suite, the configured vocabulary padded past the tokenizer's with zero rows, as unused
rows of a trained model carry no probability: greedy decoding then picks real tokens. The
model is loaded in bf16 as a GPU run loads it (``model.dtype: auto``), then runs one round
through the project's own functions: greedy negatives for the mini suite's align prompts
(``generation.generate``), reference log-probs (``reference.reference_logps``) and optimizer
steps of ``gsil-logistic`` (``trainer.train``: fp32 master weights under bf16 autocast, at the
papers' lr 5e-7 by default). Then a copy of ``sweeps/quickstart.yaml`` with one seed and two
methods (sft, gsil-logistic) runs through ``gsil-bench sweep`` under a time limit.

Printed and written to ``DIR/gpu_check.json``: the device, torch and transformers versions,
generation and training tokens/s, MFU against the device's bf16 dense peak, peak memory, and
the fraction of weights that moved (fp32 masters after training, and after the cast back to
bf16 that the saved model gets).

MFU counts model FLOPs (forward and backward, 3x the forward) of the steps after the first
(CUDA start-up excluded): per token forwarded, 6 x the parameters outside the embedding; per
response token, 6 x hidden x vocabulary (the LM head runs on response positions only); per
layer and per (query, key) pair the mask lets attend, 12 x hidden (scores and values, a
multiply-add each per channel). A causal row of T tokens has T (T + 1) / 2 pairs; a
prefix-shared pair's row has the prompt's causal pairs plus each response's pairs with the
prompt and itself. Recomputed activations are not model FLOPs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Shapes per --size. ``vocab_size`` None: the tokenizer's plus 64 padded rows (so the padded
# rows exist at the tiny size too).
SIZES: dict[str, dict[str, Any]] = {
    "0.5b": {
        "hidden_size": 896,
        "num_layers": 24,
        "num_heads": 14,
        "num_kv_heads": 2,
        "intermediate_size": 4864,
        "vocab_size": 151_936,
        "prompts": 64,
        "max_new_tokens": 128,
        "batch_size": 8,
    },
    "tiny": {
        "hidden_size": 64,
        "num_layers": 2,
        "num_heads": 4,
        "num_kv_heads": 2,
        "intermediate_size": 128,
        "vocab_size": None,
        "prompts": 16,
        "max_new_tokens": 16,
        "batch_size": 4,
    },
}

# bf16 dense peaks, TFLOP/s (NVIDIA data sheets, without sparsity). Longer names first: the
# first name found in torch.cuda.get_device_name() wins.
PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H200": 989.0, "H100": 989.0, "A100": 312.0, "L4": 121.0}

# The quickstart copy at --size tiny: a base model of a few steps and a few dozen records, so
# the whole check runs on a CPU in under a minute. At 0.5b the quickstart keeps its own sizes.
TINY_QUICKSTART_BASE = {
    "model": {"tiny": {"base_steps": 12, "base_decay_steps": 4, "hidden_size": 32}},
    "data": {"mini": {"n_base": 48, "n_align": 16, "n_test": 24}},
    "optim": {"batch_size": 8},
    "generation": {"max_new_tokens": 12},
    "eval": {"max_new_tokens": 12},
}
QUICKSTART_METHODS = ("sft", "gsil-logistic")
REPO = Path(__file__).resolve().parents[1]


def peak_tflops(device_name: str, given: float | None) -> float | None:
    """The bf16 dense peak of ``device_name`` (``given`` wins), or None when unknown."""
    if given is not None:
        return given
    for name, peak in PEAK_BF16_TFLOPS.items():
        if name in device_name:
            return peak
    return None


def training_flops(
    rows: list[tuple[int, int, int]], *, body_params: int, hidden: int, vocab: int, layers: int
) -> float:
    """Model FLOPs of one forward and backward over ``rows``, each (tokens forwarded,
    response tokens predicted, attending pairs): see the module docstring for the terms."""
    total = 0.0
    for tokens, predicted, pairs in rows:
        total += 6 * body_params * tokens
        total += 6 * hidden * vocab * predicted
        total += 12 * layers * hidden * pairs
    return total


def attending_pairs(prompt: int, responses: tuple[int, ...]) -> int:
    """(query, key) pairs of one row whose responses each see the prompt and themselves:
    the causal pairs (n (n + 1) / 2, the diagonal included) of the prompt and of each
    response, plus each response's tokens times the prompt's. With one response, the causal
    row of prompt + response."""
    return prompt * (prompt + 1) // 2 + sum(n * prompt + n * (n + 1) // 2 for n in responses)


def moved_fraction(before: dict[str, Any], model) -> float:
    """The share of weight elements whose value differs from ``before`` (compared in fp32)."""
    moved = total = 0
    for name, param in model.named_parameters():
        start = before[name].float()
        now = param.detach().float().cpu()
        moved += int((now != start).sum())
        total += start.numel()
    return moved / total if total else 0.0


def build_model(tokenizer, size: dict[str, Any], device: str):
    """A randomly initialised Llama of ``size`` on ``device`` in bf16; vocabulary rows past
    the tokenizer's are zero."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    vocab = size["vocab_size"] or len(tokenizer) + 64
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=size["hidden_size"],
        num_hidden_layers=size["num_layers"],
        num_attention_heads=size["num_heads"],
        num_key_value_heads=size["num_kv_heads"],
        intermediate_size=size["intermediate_size"],
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    with torch.device(device):  # initialised where it runs: seconds instead of a minute
        model: Any = LlamaForCausalLM(config)
    with torch.no_grad():
        model.get_input_embeddings().weight[len(tokenizer) :] = 0.0
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.to(torch.bfloat16)


def timed_generation(model, tokenizer, prompts: list[str], size: dict[str, Any], sync):
    """(negatives, generated tokens, seconds) of greedy decoding; tokens are counted from the
    ids each continuation is decoded from."""
    from gsil_bench.backend.generation import generate

    counted: list[int] = []
    decode = tokenizer.decode

    def counting_decode(ids, **kwargs):
        counted.append(len(ids))
        return decode(ids, **kwargs)

    tokenizer.decode = counting_decode
    try:
        sync()
        began = time.perf_counter()
        negatives = generate(
            model,
            tokenizer,
            prompts,
            max_new_tokens=size["max_new_tokens"],
            batch_size=len(prompts),
            progress=False,
        )
        sync()
        seconds = time.perf_counter() - began
    finally:
        del tokenizer.decode  # the class's own method again
    return negatives, sum(counted), seconds


def step_rows(examples, steps: int, batch: int, seed: int, shared: bool) -> list[list[tuple]]:
    """Per optimizer step, its rows as (tokens forwarded, response tokens predicted,
    attending pairs, tokens the trainer counts), in the trainer's batch order."""
    from gsil_bench.backend.trainer import batch_indices

    plan = []
    for step in range(steps):
        rows = []
        for i in batch_indices(len(examples), step, batch, seed).tolist():
            e = examples[i]
            p, r, g = len(e.prompt_ids), len(e.real_ids), len(e.generated_ids or [])
            if shared:  # the trainer counts the prompt twice, as the unshared rows feed it
                rows.append((p + r + g, r + g, attending_pairs(p, (r, g)), 2 * p + r + g))
            else:
                rows += [(p + n, n, attending_pairs(p, (n,)), p + n) for n in (r, g)]
        plan.append(rows)
    return plan


def run_round(args, size: dict[str, Any], report: dict[str, Any], work: Path) -> None:
    """Generation, reference and training of one gsil-logistic round; fills ``report``."""
    from gsil_bench.minisuite.config import MiniSuiteConfig
    from gsil_bench.minisuite.suite import all_text, build_suite
    from gsil_bench.minisuite.tiny import train_tokenizer

    suite = build_suite(MiniSuiteConfig(n_base=400, n_align=size["prompts"], n_test=100))
    tokenizer = train_tokenizer(all_text(suite), vocab_size=512)
    model = build_model(tokenizer, size, args.device)
    report["model"] = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": model.config.vocab_size,
        "tokenizer_vocab": len(tokenizer),
        **{k: size[k] for k in ("hidden_size", "num_layers", "num_heads", "num_kv_heads")},
        "intermediate_size": size["intermediate_size"],
        "dtype": str(next(model.parameters()).dtype),
    }
    demos = suite.align[: size["prompts"]]
    examples, reference = negatives_and_reference(args, size, model, tokenizer, demos, report)
    train_and_check(args, size, model, tokenizer, examples, reference, report, work)


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def negatives_and_reference(args, size, model, tokenizer, demos, report: dict[str, Any]):
    """(training examples, reference log-probs): greedy negatives, then the reference pass,
    each timed."""
    import torch

    from gsil_bench.backend.batches import tokenize_pairs
    from gsil_bench.backend.chat import render_prompt
    from gsil_bench.backend.reference import reference_logps

    with torch.inference_mode():  # library start-up (cuBLAS handles, kernels) off the clock
        model(input_ids=torch.ones((2, 16), dtype=torch.long, device=args.device))
    negatives, gen_tokens, gen_s = timed_generation(
        model,
        tokenizer,
        [render_prompt(tokenizer, d.prompt) for d in demos],
        size,
        lambda: _sync(args.device),
    )
    report["generation"] = {"prompts": len(demos), "tokens": gen_tokens, "seconds": gen_s}
    report["generation_tokens_per_s"] = gen_tokens / gen_s
    examples, _, _ = tokenize_pairs(
        tokenizer,
        [d.prompt for d in demos],
        [d.response for d in demos],
        negatives,
        max_prompt_tokens=256,
        max_length=512,
    )
    _sync(args.device)
    began = time.perf_counter()
    reference = reference_logps(
        model,
        examples,
        with_generated=True,
        batch_size=2 * size["batch_size"],
        pad_id=tokenizer.pad_token_id,
        prefix_sharing=True,
    )
    _sync(args.device)
    report["reference"] = {"pairs": len(examples), "seconds": time.perf_counter() - began}
    return examples, reference


def train_and_check(args, size, model, tokenizer, examples, reference, report, work: Path):
    """``args.steps`` optimizer steps of gsil-logistic (fp32 masters, bf16 autocast), then
    how many weights moved, in the masters and after the cast back to bf16."""
    import torch

    from gsil_bench.backend.blocks import use_prefix_sharing
    from gsil_bench.backend.model import finish_training
    from gsil_bench.backend.trainer import train
    from gsil_bench.config import OptimConfig
    from gsil_bench.registry import get_loss, validate_hparams

    shared = use_prefix_sharing(model, True)
    before = {name: p.detach().cpu().clone() for name, p in model.named_parameters()}
    batch = size["batch_size"]
    optim = OptimConfig(
        lr=args.lr,
        batch_size=batch,
        epochs=math.ceil(args.steps * batch / len(examples)),
        max_steps=args.steps,
        checkpoint_every=10**9,  # no checkpoint write inside the measurement
    )
    if args.device == "cuda":  # the peak of generation and reference, then training's own
        report["generation_reference_peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
    result = train(
        model,
        examples,
        loss=get_loss("gsil-logistic"),
        hparams=validate_hparams("gsil-logistic", {}),
        optim=optim,
        seed=0,
        run_dir=work / "round",
        pad_id=tokenizer.pad_token_id,
        reference=reference,
    )
    master_dtype = str(next(model.parameters()).dtype)
    report["weights_moved_fraction"] = moved_fraction(before, model)
    saved = finish_training(model, torch.bfloat16)
    report["weights_moved_fraction_bf16"] = moved_fraction(before, saved)
    report["experiment_load"] = loaded_placement(saved, tokenizer, work / "model")
    plan = step_rows(examples, result.steps, batch, seed=0, shared=shared)
    shape = {
        "body_params": report["model"]["parameters"] - saved.get_input_embeddings().weight.numel(),
        "hidden": size["hidden_size"],
        "vocab": saved.config.vocab_size,
        "layers": size["num_layers"],
    }
    _training_report(report, result, plan, shape, args, shared, master_dtype)


def loaded_placement(model, tokenizer, folder: Path) -> dict[str, str]:
    """Where a run's model lands when the experiment loads it (``load_pretrained``, dtype
    auto): the round above placed its model itself; a run's first round generates and
    scores its reference on this device."""
    from gsil_bench.backend.model import load_pretrained, save_pretrained

    save_pretrained(model, tokenizer, folder)
    loaded, _ = load_pretrained(str(folder), dtype="auto")
    param = next(loaded.parameters())
    return {"device": str(param.device), "dtype": str(param.dtype)}


def _training_report(report, result, plan, shape, args, shared: bool, master_dtype: str) -> None:
    """Training tokens/s (the trainer's count: a shared prompt counts twice) and MFU over the
    steps after the first; each step's seconds are its counted tokens over its logged rate."""
    import torch

    step_seconds = [
        sum(row[3] for row in rows) / logged["tokens_per_s"]
        for rows, logged in zip(plan, result.history, strict=True)
    ]
    later = plan[1:] or plan
    later_s = sum(step_seconds[1:]) or sum(step_seconds)
    flops = sum(training_flops([row[:3] for row in rows], **shape) for rows in later)
    peak = peak_tflops(report["device_name"], args.peak_tflops)
    # The replayed batches must be the trainer's: its token count is the check.
    replayed = sum(row[3] for rows in plan for row in rows)
    if replayed != result.tokens:
        print(
            f"gpu_check: replayed batches hold {replayed} tokens, the trainer fed "
            f"{result.tokens}; no MFU",
            file=sys.stderr,
        )
        peak = None
    report["training"] = {
        "steps": result.steps,
        "tokens": result.tokens,
        "seconds": result.seconds,
        "seconds_after_first_step": later_s,
        "lr": args.lr,
        "loss": "gsil-logistic",
        "master_dtype": master_dtype,
        "autocast": "bf16",
        "prefix_sharing": shared,
        "model_tflops_after_first_step": flops / 1e12,
        "first_loss": result.history[0]["loss"],
        "last_loss": result.history[-1]["loss"],
    }
    report["training_tokens_per_s"] = result.tokens_per_s
    report["peak_tflops"] = peak
    report["mfu"] = flops / later_s / (peak * 1e12) if peak else None
    report["peak_memory_gib"] = None
    if args.device == "cuda":
        training_peak = torch.cuda.max_memory_allocated() / 2**30
        report["training_peak_memory_gib"] = training_peak
        before = report["generation_reference_peak_memory_gib"]
        report["peak_memory_gib"] = max(before, training_peak)
    report["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def quickstart_file(source: Path, target: Path, tiny: bool) -> None:
    """A copy of the quickstart sweep with one seed, one worker and the two methods."""
    import yaml

    spec = yaml.safe_load(source.read_text())
    spec["study"] = "gpu-check-quickstart"
    spec["seeds"] = spec["seeds"][:1]
    spec["workers"] = 1
    spec["methods"] = [m for m in spec["methods"] if m["loss"] in QUICKSTART_METHODS]
    if tiny:
        spec["base"] = _merged(spec.get("base", {}), TINY_QUICKSTART_BASE)
    target.write_text(yaml.safe_dump(spec, sort_keys=False))


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both else value
    return out


def run_quickstart(args, work: Path) -> dict[str, Any]:
    """``gsil-bench sweep`` on the quickstart copy, in ``work``, stopped after the limit
    (SIGTERM: the sweep checkpoints and exits; killed 30 s later if it has not)."""
    sweep = work / "quickstart.yaml"
    quickstart_file(Path(args.quickstart), sweep, args.size == "tiny")
    command = [sys.executable, "-m", "gsil_bench.cli.app", "sweep", str(sweep), "--workers", "1"]
    began = time.perf_counter()
    child = subprocess.Popen(command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = child.communicate(timeout=args.quickstart_limit)
        status = "ok" if child.returncode == 0 else f"failed (exit {child.returncode})"
    except subprocess.TimeoutExpired:
        child.terminate()
        try:
            output, _ = child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            output, _ = child.communicate()
        status = f"stopped after the {args.quickstart_limit} s limit"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    table = work / "results" / "gpu-check-quickstart" / "table.md"
    if table.exists():  # the whole report beside the JSON
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "quickstart_table.md").write_text(table.read_text())
    text = output.decode(errors="replace")
    return {
        "command": " ".join(["gsil-bench", *command[3:]]),
        "status": status,
        "seconds": time.perf_counter() - began,
        "stage_seconds": stage_line(table.read_text()) if table.exists() else None,
        "output_tail": text[-1500:] if status != "ok" else None,
    }


def stage_line(table: str) -> str | None:
    """The report's "Time by stage" line (seconds summed over the runs), if it has one."""
    lines = table.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("## Time by stage"):
            rest = [x for x in lines[i + 1 :] if x.strip()]
            return rest[0] if rest else None
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--size", choices=tuple(SIZES), default="0.5b")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--lr", type=float, default=5e-7)
    parser.add_argument("--peak-tflops", type=float, help="bf16 dense peak of an unlisted GPU")
    parser.add_argument("--out", type=Path, default=Path("gpu-check"), help="folder for the JSON")
    parser.add_argument("--quickstart", default=str(REPO / "sweeps" / "quickstart.yaml"))
    parser.add_argument("--quickstart-limit", type=int, default=360, help="seconds")
    parser.add_argument("--no-quickstart", action="store_true")
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error("--steps: at least 2 (MFU is measured after the first step)")
    if not args.no_quickstart and not Path(args.quickstart).is_file():
        parser.error(f"--quickstart: {args.quickstart} is not a file")
    return args


def device_report(args) -> dict[str, Any]:
    """The device and versions; exits with one line when the device cannot be measured."""
    import torch
    import transformers

    if args.device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("gpu_check: --device cuda but torch sees no GPU (use --device cpu)")
        name = torch.cuda.get_device_name(0)
        if peak_tflops(name, args.peak_tflops) is None:
            known = ", ".join(PEAK_BF16_TFLOPS)
            sys.exit(f"gpu_check: no bf16 peak known for {name!r} ({known}); give --peak-tflops")
    else:
        name = cpu_name()
    return {
        "device": args.device,
        "device_name": name,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.version.cuda,
        "size": args.size,
        "torch_threads": torch.get_num_threads(),
    }


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else the machine type."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def summary(report: dict[str, Any]) -> str:
    def fmt(value, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    lines = [
        f"device              {report['device_name']} ({report['device']})",
        f"torch/transformers  {report['torch']} / {report['transformers']}",
        f"parameters          {report['model']['parameters'] / 1e6:.1f}M",
        f"generation          {report['generation_tokens_per_s']:,.0f} tokens/s",
        f"training            {report['training_tokens_per_s']:,.0f} tokens/s",
        f"MFU (bf16 peak)     {fmt(report['mfu'], '.1%')} of {fmt(report['peak_tflops'], 'g')}"
        " TFLOP/s",
        f"peak memory         {fmt(report['peak_memory_gib'], '.2f')} GiB allocated",
        f"weights moved       {report['weights_moved_fraction']:.1%} (fp32 masters), "
        f"{report['weights_moved_fraction_bf16']:.1%} after the cast back to bf16",
        f"load_pretrained     {report['experiment_load']['device']}, "
        f"{report['experiment_load']['dtype']} (where a run's first round generates)",
    ]
    return "\n".join(lines)


def release_device_memory(device: str) -> None:
    """Hand the round's cached GPU memory back before the quickstart's process needs it."""
    import gc

    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def write_report(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.device == "cpu":  # before torch starts: the trainer then places nothing on a GPU
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    # SIGTERM (the wrapper's time limit) unwinds: the quickstart's sweep is stopped and the
    # temporary folder removed. The round's numbers are written before the quickstart starts.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.quickstart = str(Path(args.quickstart).resolve())
    report = device_report(args)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        run_round(args, SIZES[args.size], report, Path(tmp))
        report["total_s"] = time.perf_counter() - began
        write_report(report, args.out)
        print(summary(report))
        if not args.no_quickstart:
            release_device_memory(args.device)
            report["quickstart"] = run_quickstart(args, Path(tmp))
            report["total_s"] = time.perf_counter() - began
            write_report(report, args.out)
            print(
                f"quickstart          {report['quickstart']['status']}, "
                f"{report['quickstart']['seconds']:.0f} s"
            )
    print(f"written: {args.out / 'gpu_check.json'}")
    return report


if __name__ == "__main__":
    main()
