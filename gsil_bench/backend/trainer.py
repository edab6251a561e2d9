"""The one training loop every loss shares.

Per optimizer step: micro-batches of real (+ generated) responses in one concatenated forward,
summed response log-probs, ``loss_fn(LogpBatch, **hparams).loss.mean()``, gradient
accumulation, clipping, a scheduler step. Batch order is a pure function of (seed, epoch,
step), so a run resumed from a checkpoint replays exactly the batches an uninterrupted run
would have seen; under ``accelerate launch`` each process takes its slice of every global batch.

A run that cannot learn fails loudly rather than ending "ok" with its starting weights
(:class:`Health`): a non-finite loss, a non-finite gradient norm (clipping would zero the
update), or a loss that did not change while the weights did not move over the first
``STALL_STEPS`` optimizer steps. After SIGTERM (:mod:`gsil_bench.stop`) the loop saves a
checkpoint after the step in flight and raises ``StopRequested``.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState

from gsil_bench.backend.batches import (
    TrainExample,
    collate,
    example_length,
    length_buckets,
    length_grouped,
    move,
    sequence_logps,
)
from gsil_bench.backend.blocks import (
    block_logps,
    collate_packed,
    collate_shared,
    use_packing,
    use_prefix_sharing,
)
from gsil_bench.backend.checkpoint import Checkpointer
from gsil_bench.backend.health import Health, stop_now
from gsil_bench.backend.model import (
    LOW_PRECISION,
    training_precision,
    upcast_to_master_weights,
)
from gsil_bench.config import OptimConfig
from gsil_bench.errors import NonFiniteLossError, UserError
from gsil_bench.progress import progress_bar
from gsil_bench.stop import StopRequested
from gsil_bench.types import LogpBatch, LossSpec


@dataclass
class TrainResult:
    steps: int
    seconds: float
    tokens: int
    resumed_from: int
    log_path: Path
    history: list[dict] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def _cpu_only() -> bool:
    # Without a GPU, accelerate joins the processes of `accelerate launch`/`torchrun` (gloo)
    # only when told it runs on CPU; otherwise each process would silently train alone.
    return not torch.cuda.is_available()


def distributed_state() -> PartialState:
    """The process group this process belongs to (a single process when not launched)."""
    return PartialState(cpu=_cpu_only())


def make_accelerator(mixed_precision: str) -> Accelerator:
    if mixed_precision == "auto":
        gpu_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        mixed_precision = "bf16" if gpu_bf16 else "no"
    return Accelerator(mixed_precision=mixed_precision, cpu=_cpu_only())


def _training_accelerator(precision: str) -> Accelerator:
    """An accelerator with ``precision`` even when an earlier one in this process had another:
    accelerate keeps one mixed-precision setting per process and refuses a second (the tiny
    base model trains without autocast, a bf16 run after it with). Only the accelerator
    state is reset; the process group (PartialState) stays."""
    if AcceleratorState._shared_state and AcceleratorState().mixed_precision != precision:
        AcceleratorState._reset_state(reset_partial_state=False)
    return make_accelerator(precision)


def _optimizer(
    model, optim: OptimConfig, device: torch.device | None = None
) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    low = sorted({str(p.dtype) for p in params if p.dtype in LOW_PRECISION})
    if low:
        # Updates below a bf16 weight's rounding step (2**-8 of it) would be lost.
        raise UserError(
            f"the optimizer would update {low[0]} weights directly and lose small updates; "
            "train with fp32 master weights (upcast_to_master_weights)"
        )
    # One multi-tensor update instead of a loop over parameters: foreach everywhere, AdamW's
    # fused kernel on the GPU (``device``: where the model will train, after prepare()).
    lr, decay = optim.lr, optim.weight_decay
    if optim.optimizer == "rmsprop":  # the GSIL release's choice
        return torch.optim.RMSprop(params, lr=lr, weight_decay=decay, foreach=True)
    if device is not None and device.type == "cuda":
        return torch.optim.AdamW(params, lr=lr, weight_decay=decay, fused=True)
    return torch.optim.AdamW(params, lr=lr, weight_decay=decay, foreach=True)


def lr_factor(step: int, total: int, optim: OptimConfig) -> float:
    """Linear warmup (``warmup_steps``, else ``warmup_ratio`` of the steps), then constant /
    linear decay to 0 / cosine over the remaining steps.

    With ``decay_steps`` set, "linear" holds the peak and decays over the last decay_steps
    only (warmup-stable-decay), which is how the tiny base model is annealed.
    """
    warmup = optim.warmup_steps
    if warmup is None:
        warmup = int(round(optim.warmup_ratio * total))
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if optim.schedule == "constant":
        return 1.0
    decay_start = warmup if optim.decay_steps is None else max(warmup, total - optim.decay_steps)
    if step < decay_start:
        return 1.0
    progress = (step - decay_start) / max(1, total - decay_start)
    if optim.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return max(0.0, 1.0 - progress)


def plan_steps(n_examples: int, global_batch: int, optim: OptimConfig) -> int:
    steps_per_epoch = n_examples // global_batch
    if steps_per_epoch == 0:
        raise UserError(
            f"{n_examples} training examples are fewer than one global batch ({global_batch}); "
            "lower optim.batch_size or optim.grad_accum"
        )
    total = max(1, int(optim.epochs * steps_per_epoch))
    return min(total, optim.max_steps) if optim.max_steps else total


def batch_indices(
    n: int, step: int, global_batch: int, seed: int, lengths: Sequence[int] | None = None
) -> torch.Tensor:
    """Indices of the global batch of ``step``: a seeded permutation per epoch; with
    ``lengths`` (``optim.group_by_length``), regrouped into batches of similar lengths."""
    per_epoch = n // global_batch
    epoch, offset = divmod(step, per_epoch)
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=generator)
    if lengths is not None:
        perm = length_grouped(perm[: per_epoch * global_batch], lengths, global_batch, generator)
    return perm[offset * global_batch : (offset + 1) * global_batch]


def _logp_batch(policy: torch.Tensor, counts: torch.Tensor, b: int, ref, idx, with_gen: bool):
    fields = {"policy_real": policy[:b], "real_tokens": counts[:b].to(policy.dtype)}
    if with_gen:
        fields["policy_generated"] = policy[b:]
        fields["generated_tokens"] = counts[b:].to(policy.dtype)
    if ref is not None:
        fields["ref_real"] = ref["real"][idx].to(policy.device, policy.dtype)
        if with_gen:
            fields["ref_generated"] = ref["generated"][idx].to(policy.device, policy.dtype)
    return LogpBatch(**fields)


def _check_finite(loss: torch.Tensor, spec: LossSpec, step: int, batch: LogpBatch) -> None:
    if torch.isfinite(loss).all():
        return
    parts = [f"loss={loss.detach().float().mean().item():.4g}"]
    for name in ("policy_real", "policy_generated", "ref_real", "ref_generated"):
        value = getattr(batch, name)
        if value is not None:
            parts.append(f"{name} mean={value.detach().float().mean().item():.4g}")
    raise NonFiniteLossError(
        f"loss {spec.name!r} became non-finite at step {step}: {', '.join(parts)}; "
        "lower beta or the learning rate"
    )


def _resume_log(path: Path, upto: int, rewrite: bool) -> list[dict]:
    """The logged rows up to the checkpoint we resume from; ``rewrite`` drops later ones."""
    rows = []
    if path.exists():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    history = [r for r in rows if r["step"] <= upto]
    if rewrite:
        path.write_text("".join(json.dumps(r) + "\n" for r in history))
    return history


@dataclass(frozen=True)
class _StepContext:
    """What every optimizer step reads; grouped so the step is a function of its own."""

    accelerator: Accelerator
    model: Any
    examples: list[TrainExample]
    loss: LossSpec
    hparams: dict
    optim: OptimConfig
    reference: dict[str, torch.Tensor] | None
    pad_id: int


def _accumulate_gradients(
    step: int, global_idx: torch.Tensor, ctx: _StepContext
) -> tuple[dict[str, float], int]:
    """Forward and backward over this process's micro-batches of one global batch; returns
    the summed per-micro-batch means of the loss and metrics, and the tokens seen."""
    accelerator, optim, loss = ctx.accelerator, ctx.optim, ctx.loss
    world, rank = accelerator.num_processes, accelerator.process_index
    micro, with_gen = optim.batch_size, loss.needs_generated
    shared = with_gen and use_prefix_sharing(ctx.model, optim.prefix_sharing)
    packed = world == 1 and use_packing(ctx.model, optim.packing)
    # Summed on the device in float64 (exactly the Python float sums of the per-micro-batch
    # means) and read back once per optimizer step.
    sums: dict[str, torch.Tensor] = {}
    # Finiteness too: checked in that one read-back, before the optimizer step; the first
    # non-finite micro-batch is then named as a per-micro-batch check would have.
    finite = torch.ones((), dtype=torch.bool, device=accelerator.device)
    seen: list[tuple[torch.Tensor, LogpBatch]] = []
    step_tokens = 0
    for m in range(optim.grad_accum):
        lo = (m * world + rank) * micro
        idx = global_idx[lo : lo + micro]
        chunk = [ctx.examples[i] for i in idx.tolist()]
        sync = m == optim.grad_accum - 1
        no_sync = contextlib.nullcontext() if sync else accelerator.no_sync(ctx.model)
        with no_sync, accelerator.autocast():
            policy, counts, fed = _micro_logps(ctx, chunk, with_gen, shared, packed)
            step_tokens += fed
            logp = _logp_batch(policy, counts, len(chunk), ctx.reference, idx, with_gen)
            out = loss.fn(logp, **ctx.hparams)
            finite &= torch.isfinite(out.loss.detach()).all()
            seen.append((out.loss.detach(), logp))
            accelerator.backward(out.loss.mean() / optim.grad_accum)
        means = {"loss": out.loss.detach().mean().double()}
        for key, value in out.metrics.items():
            means[key] = value.detach().float().mean().double()
        for key, value in means.items():
            sums[key] = sums[key] + value if key in sums else value
    *values, all_finite = torch.stack([*sums.values(), finite.double()]).tolist()
    if not all_finite:
        for bad_loss, bad_batch in seen:
            _check_finite(bad_loss, loss, step + 1, bad_batch)
    return dict(zip(sums, values, strict=True)), step_tokens


def _micro_logps(
    ctx: _StepContext, chunk: list[TrainExample], with_gen: bool, shared: bool, packed: bool
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Summed log-probs and counts of a micro-batch's rows (real responses, then generated
    ones, in ``chunk``'s order) and the tokens fed (prompts counted once per row, as
    unshared, so that throughput compares the same work).

    ``packed``: one forward of packed rows (:func:`collate_packed`). Otherwise the rows run as
    one forward per length bucket (:func:`length_buckets`): each bucket is padded to its own
    width, and the per-row results are put back in order, so the loss sees the same rows as
    from one padded forward. A distributed model runs one forward (its gradients synchronise
    once per backward).
    """
    if packed:
        host = collate_packed(chunk, with_generated=with_gen, shared=shared, pad_id=ctx.pad_id)
        outputs = (2 if with_gen else 1) * len(chunk)
        policy, counts = block_logps(ctx.model, move(host, ctx.accelerator.device), outputs)
        return policy, counts, int(host["tokens"].sum())
    if ctx.accelerator.num_processes > 1:
        groups = [list(range(len(chunk)))]
    else:
        widths = [_row_width(e, with_gen, shared) for e in chunk]
        groups = length_buckets(widths)
    real, generated, order, fed = [], [], [], 0
    for group in groups:
        part = [chunk[i] for i in group]
        if shared:
            host = collate_shared(part, pad_id=ctx.pad_id)
            fed += int(host["tokens"].sum())
            batch = move(host, ctx.accelerator.device)
            policy, counts = block_logps(ctx.model, batch, 2 * len(part))
        else:
            host = collate(part, with_generated=with_gen, pad_id=ctx.pad_id)
            fed += int(host["attention_mask"].sum())
            policy, counts = sequence_logps(ctx.model, move(host, ctx.accelerator.device))
        real.append((policy[: len(part)], counts[: len(part)]))
        generated.append((policy[len(part) :], counts[len(part) :]))
        order += group
    back = torch.empty(len(order), dtype=torch.long)
    back[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
    back = back.to(ctx.accelerator.device)
    halves = [real, generated] if with_gen else [real]
    policy = torch.cat([torch.cat([p for p, _ in half])[back] for half in halves])
    counts = torch.cat([torch.cat([c for _, c in half])[back] for half in halves])
    return policy, counts, fed


def _row_width(example: TrainExample, with_gen: bool, shared: bool) -> int:
    """Tokens of the widest row ``example`` puts in a batch."""
    if shared:
        return len(example.prompt_ids) + len(example.real_ids) + len(example.generated_ids or [])
    return example_length(example) if with_gen else len(example.prompt_ids) + len(example.real_ids)


def train(
    model,
    examples: list[TrainExample],
    *,
    loss: LossSpec,
    hparams: dict,
    optim: OptimConfig,
    seed: int,
    run_dir: Path,
    pad_id: int,
    reference: dict[str, torch.Tensor] | None = None,
    description: str = "training",
    on_log: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place; resumes from ``run_dir/checkpoint`` when one exists.

    A bf16/fp16 model trains on fp32 master weights under autocast and comes back in fp32;
    :func:`~gsil_bench.backend.model.finish_training` casts it back to its dtype.
    """
    loaded_dtype = upcast_to_master_weights(model)
    accelerator = _training_accelerator(training_precision(optim.mixed_precision, loaded_dtype))
    if loss.needs_reference and reference is None:
        raise ValueError(f"loss {loss.name!r} needs reference log-probs")
    world = accelerator.num_processes
    optim = optim.for_world(world)  # the per-process batch of optim.global_batch_size
    global_batch = optim.batch_size * optim.grad_accum * world
    total = plan_steps(len(examples), global_batch, optim)

    torch.manual_seed(seed)
    optimizer = _optimizer(model, optim, accelerator.device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, optim))
    # The scheduler is stepped by us once per optimizer step: accelerate's wrapper would step
    # it once per process, running the schedule num_processes times too fast.
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    model.train()
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpointer = Checkpointer(run_dir, accelerator)
    start, saved = checkpointer.load()
    log_path = run_dir / "train_log.jsonl"
    history = _resume_log(log_path, start, accelerator.is_main_process)
    health = Health(accelerator, loss.name, model, start, total, saved)

    ctx = _StepContext(accelerator, model, examples, loss, hparams, optim, reference, pad_id)
    lengths = [example_length(e) for e in examples] if optim.group_by_length else None
    tokens, began = 0, time.perf_counter()
    # The last checkpoint write is waited for (and its error raised) however the loop ends.
    flushing = checkpointer.flushing()
    with progress_bar(total, description, enabled=accelerator.is_main_process) as bar, flushing:
        bar.set_completed(start)
        for step in range(start, total):
            step_began = time.perf_counter()
            global_idx = batch_indices(len(examples), step, global_batch, seed, lengths)
            optimizer.zero_grad(set_to_none=True)
            sums, step_tokens = _accumulate_gradients(step, global_idx, ctx)
            grad_norm = _clip(accelerator, model, optim.max_grad_norm)
            health.check_gradient(step + 1, grad_norm, sums["loss"] / optim.grad_accum)
            optimizer.step()
            scheduler.step()
            tokens += step_tokens * world
            elapsed = time.perf_counter() - step_began
            row = {"step": step + 1, **{k: v / optim.grad_accum for k, v in sums.items()}}
            row.update(
                grad_norm=grad_norm,
                lr=float(scheduler.get_last_lr()[0]),
                tokens_per_s=step_tokens * world / max(elapsed, 1e-9),
            )
            health.after_step(step + 1, row["loss"], grad_norm, model)
            history.append(row)
            if accelerator.is_main_process:
                with log_path.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                if on_log is not None:  # experiment trackers (backend/tracking.py)
                    on_log(row)
            bar.advance(1, status=f"loss {row['loss']:.4f}")
            if step + 1 < total:
                _checkpoint(checkpointer, step + 1, optim.checkpoint_every, health.saved())
    seconds = time.perf_counter() - began
    return TrainResult(total, seconds, tokens, start, log_path, history)


def _checkpoint(checkpointer: Checkpointer, step: int, every: int, extra: dict) -> None:
    """The periodic checkpoint (written in the background where it can be); after SIGTERM, a
    checkpoint on disk now and :class:`StopRequested`."""
    stop = stop_now(checkpointer.accelerator)
    if step % every == 0 or stop:
        checkpointer.save(step, extra, wait=stop)
    if stop:
        raise StopRequested(f"stopped on SIGTERM; checkpoint saved at step {step}")


def _clip(accelerator: Accelerator, model, max_norm: float | None) -> float:
    if max_norm is None:
        norms = [p.grad.detach().norm() for p in model.parameters() if p.grad is not None]
        return float(torch.stack(norms).norm()) if norms else 0.0
    return float(accelerator.clip_grad_norm_(model.parameters(), max_norm))


def unwrap(accelerator_model):
    return getattr(accelerator_model, "module", accelerator_model)
