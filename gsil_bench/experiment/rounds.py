"""Rounds: round t trains against the negatives and reference of round t-1's model (both
papers' iteration). A round whose model is saved is loaded, not retrained; an interrupted
round resumes from its checkpoint.

Round t trains with ``config.for_round(t)`` (the run's ``rounds`` overrides: SPIN's learning
rate and beta per iteration). With ``eval.every_round`` each round evaluates the model it
starts from (the base model, then round t-1's model; cached by content, so a resumed run and
the run's own base evaluation reuse them) into its facts as ``start_benchmarks``; the final
model is the run's own evaluation (``RunRecord.iteration_results``).

Precision between rounds: a bf16/fp16 model trains on fp32 master weights within a round, and
hands the next round its masters cast back to the loaded dtype, the model the round saves (and
the one a resumed run loads). A weight whose change over the round stays below half its
rounding step (at least |w| * 2**-9 in bf16) starts the next round where it started this
one: a short round at lr 1e-7 to 5e-7 hands on few of its changes. Both releases do the
same: each iteration is a new process that loads the previous iteration's saved model, and
DeepSpeed ZeRO-3 with bf16 saves the 16-bit weights, not its fp32 masters (uclaml/SPIN
``configs/deepspeed_zero3.yaml``, ``zero3_save_16bit_model: true``; tengxiao1/GSIL
``configs/deepspeed_config_bf16.json``, ``stage3_gather_16bit_weights_on_model_save: true``).
``model.dtype: float32`` keeps every update from round to round."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gsil_bench.backend import lora
from gsil_bench.backend.batches import tokenize_pairs
from gsil_bench.backend.cache import DiskCache
from gsil_bench.backend.model import (
    LOW_PRECISION,
    fingerprint_model,
    finish_training,
    load_pretrained,
    parameter_dtype,
    save_pretrained,
    training_precision,
)
from gsil_bench.backend.tracking import Tracking
from gsil_bench.backend.trainer import distributed_state, train
from gsil_bench.config import RunConfig
from gsil_bench.data.records import Demonstration
from gsil_bench.experiment.controls import Results, base_evaluation
from gsil_bench.experiment.negatives import generated_negatives, rejected_negatives
from gsil_bench.experiment.pairs import build_pairs
from gsil_bench.experiment.reference import cached_reference
from gsil_bench.record import RunDir
from gsil_bench.registry import validate_hparams
from gsil_bench.types import LossSpec


@dataclass
class Stages:
    """Seconds per stage, summed over rounds; ``current`` names the stage running now (or the
    one an error left: a failed run's record says where it failed)."""

    seconds: dict[str, float] = field(default_factory=dict)
    current: str = "setup"

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        began, outer = time.perf_counter(), self.current
        self.current = stage.removesuffix("_s")
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - began
        self.current = outer  # reached only when the stage ended without an error


@dataclass(frozen=True)
class RoundPlan:
    """What every round shares: the config, the loss and its validated hyperparameters."""

    config: RunConfig
    loss: LossSpec
    hparams: dict[str, Any]
    run_dir: RunDir
    cache: DiskCache
    stages: Stages
    tracking: Tracking | None = None  # experiment trackers (report_to), main process only

    def for_round(self, index: int) -> RoundPlan:
        """The plan of round ``index``: its config (the run's with its ``rounds`` entry) and
        that config's loss hyperparameters."""
        if not self.config.rounds:
            return self
        config = self.config.for_round(index)
        return replace(
            self, config=config, hparams=validate_hparams(config.loss.name, config.loss.params)
        )


def _low_precision(model):
    """The model's dtype when it is bf16/fp16 (training gives it fp32 masters), else None."""
    dtype = parameter_dtype(model)
    return dtype if dtype in LOW_PRECISION else None


def _precision(plan: RoundPlan, model) -> str:
    """The mixed precision the round's training resolves to (part of the cache keys)."""
    return training_precision(plan.config.optim.mixed_precision, _low_precision(model))


def _negatives(plan: RoundPlan, model, tokenizer, demos, model_fp: str, index: int) -> list[str]:
    config = plan.config
    if config.data.negatives == "rejected":
        return rejected_negatives(demos)
    return generated_negatives(
        config.generation,
        model,
        tokenizer,
        demos,
        seed=config.seed,
        cache=plan.cache,
        model_fp=model_fp,
        round_index=index,
        mixed_precision=_precision(plan, model),
    )


def _reference(plan: RoundPlan, model, pad_id: int, examples, model_fp: str, index: int):
    per_process = plan.config.optim.for_world(distributed_state().num_processes).batch_size
    return cached_reference(
        model,
        examples,
        with_generated=plan.loss.needs_generated,
        batch_size=per_process * 2,
        pad_id=pad_id,
        cache=plan.cache,
        model_fp=model_fp,
        round_index=index,
        mixed_precision=_precision(plan, model),
        prefix_sharing=plan.config.optim.prefix_sharing,
    )


def run_round(
    plan: RoundPlan,
    model,
    tokenizer,
    demos: list[Demonstration],
    index: int,
    previous_negatives: list[str] | None,
) -> tuple[Any, dict[str, Any], list[str] | None]:
    """Train one round against ``model`` (generator and reference); returns the new policy,
    the round's facts and its negatives (for the next round's mixing)."""
    config, spec, stages = plan.config, plan.loss, plan.stages
    state = distributed_state()
    model = lora.merged(model)  # LoRA: the previous round's adapters become the weights
    model_fp = fingerprint_model(model)
    negatives = None
    if spec.needs_generated:
        with stages.timed("generation_s"), state.main_process_first():
            negatives = _negatives(plan, model, tokenizer, demos, model_fp, index)
    if config.model.peft is not None:
        # Fresh adapters (after generating: vLLM reads plain weights); with them disabled the
        # model is this round's reference.
        model = lora.add_adapters(
            model,
            config.model.peft,
            weights_from=_weights_from(plan, model, index),
            seed=config.seed,
        )
    pairs = build_pairs(
        demos,
        negatives,
        previous_negatives=previous_negatives,
        mix_previous_rounds=config.generation.mix_previous_rounds,
        drop_identical=config.data.drop_identical,
    )
    examples, _, length = tokenize_pairs(
        tokenizer,
        pairs.prompts,
        pairs.reals,
        pairs.negatives,
        max_prompt_tokens=config.data.max_prompt_tokens,
        max_length=config.data.max_length,
    )
    facts: dict[str, Any] = {**pairs.facts, "length_policy": length.as_dict()}
    reference = None
    if spec.needs_reference:
        with stages.timed("reference_s"), state.main_process_first(), lora.adapters_disabled(model):
            reference = _reference(plan, model, tokenizer.pad_token_id, examples, model_fp, index)
    # Negatives and reference log-probs are computed, so the reference itself is no longer
    # needed: train it in place rather than holding two copies of the model in memory.
    loaded_dtype = _low_precision(model)
    with stages.timed("training_s"):
        result = train(
            model,
            examples,
            loss=spec,
            hparams=plan.hparams,
            optim=config.optim,
            seed=config.seed,
            run_dir=plan.run_dir.round_dir(index),
            pad_id=tokenizer.pad_token_id,
            reference=reference,
            description=f"round {index}: {spec.name}",
            on_log=plan.tracking.train_logger(index) if plan.tracking else None,
        )
    # Back in its own dtype: the model the next round starts from is then the saved one.
    policy = finish_training(model, loaded_dtype)
    if config.model.peft is not None and config.model.peft.merge_on_save:
        policy = lora.merged(policy)  # the model in memory is the one saved
    facts.update(
        steps=result.steps,
        resumed_from=result.resumed_from,
        tokens_per_s=result.tokens_per_s,
        log=str(result.log_path),
    )
    _save_round(plan, policy, tokenizer, index, facts)
    return policy, {**facts, "trajectory": result.history}, negatives


def _weights_from(plan: RoundPlan, model, index: int) -> str:
    """Where round ``index``'s starting weights are saved (written into its adapter config):
    the previous round's model folder, or for round 1 the base model."""
    if index > 1:
        return str(plan.run_dir.model_dir(index - 1).resolve())
    name = str(getattr(model, "name_or_path", ""))
    return str(Path(name).resolve()) if name and Path(name).exists() else name


def _save_round(plan: RoundPlan, policy, tokenizer, index: int, facts: dict[str, Any]) -> None:
    """The round's model, then its COMPLETE marker: a crash in between retrains the round."""
    state = distributed_state()
    if state.is_main_process:
        save_pretrained(policy, tokenizer, plan.run_dir.model_dir(index))
        plan.run_dir.mark_round_complete(index, facts)
    state.wait_for_everyone()


def _load_round(
    plan: RoundPlan, index: int, previous, tokenizer
) -> tuple[Any, Any, dict[str, Any]]:
    """A finished round's model, tokenizer and facts (with its logged trajectory). Saved LoRA
    adapters go onto ``previous`` (the round's starting model), as the round left them."""
    folder = plan.run_dir.model_dir(index)
    if lora.has_adapters(folder):
        model = lora.load_adapters(lora.merged(previous), folder)
    else:
        model, tokenizer = load_pretrained(str(folder), dtype=plan.config.model.dtype)
    facts = plan.run_dir.round_facts(index) | {"loaded": True}
    log = Path(facts["log"])
    lines = log.read_text().splitlines() if log.exists() else []
    facts["trajectory"] = [json.loads(x) for x in lines]
    return model, tokenizer, facts


def _mixed_into_next_round(plan: RoundPlan, index: int) -> bool:
    """Whether finished round ``index``'s negatives are needed: the next round mixes them in
    (SPIN) and is still to be trained."""
    return (
        plan.config.for_round(index + 1).generation.mix_previous_rounds
        and plan.loss.needs_generated
        and index < plan.config.iterations
        and not plan.run_dir.round_complete(index + 1)
    )


def _restored_negatives(plan: RoundPlan, model, tokenizer, demos, index: int) -> list[str]:
    """Finished round ``index``'s negatives, as it used them: generated by ``model`` (the
    round's starting model), read from the generation cache (or generated again, identically,
    when the cache was cleared)."""
    state = distributed_state()
    with plan.stages.timed("generation_s"), state.main_process_first():
        return _negatives(plan, model, tokenizer, demos, fingerprint_model(model), index)


def run_rounds(
    plan: RoundPlan, model, tokenizer, demos: list[Demonstration]
) -> tuple[Any, Any, list[dict[str, Any]]]:
    """Every round in turn: (final model, its tokenizer, one facts dict per round)."""
    rounds: list[dict[str, Any]] = []
    previous_negatives = None
    for index in range(1, plan.config.iterations + 1):
        round_plan = plan.for_round(index)
        start = _start_evaluation(plan, model, tokenizer)
        if plan.run_dir.round_complete(index):
            model = lora.merged(model)  # LoRA: as run_round starts (same fingerprint)
            if _mixed_into_next_round(plan, index):
                previous_negatives = _restored_negatives(round_plan, model, tokenizer, demos, index)
            model, tokenizer, facts = _load_round(plan, index, model, tokenizer)
        else:
            model, facts, previous_negatives = run_round(
                round_plan, model, tokenizer, demos, index, previous_negatives
            )
        facts.update(lr=round_plan.config.optim.lr, hparams=round_plan.hparams)
        if start is not None:
            facts["start_benchmarks"] = start
        rounds.append(facts)
    return model, tokenizer, rounds


def _start_evaluation(plan: RoundPlan, model, tokenizer) -> Results | None:
    """With ``eval.every_round``, the results of the model a round starts from (iteration
    t-1 of the per-iteration table), on the main process (None elsewhere and without it).
    Cached by the model's fingerprint as the base model's evaluation is: round 1's is the
    run's base evaluation, and a resumed run evaluates nothing again."""
    config, state = plan.config, distributed_state()
    if not (config.eval.every_round and config.eval.suites):
        return None
    results = None
    if state.is_main_process:
        with plan.stages.timed("round_evaluation_s"):
            fingerprint = fingerprint_model(model)
            results = base_evaluation(config, plan.cache, fingerprint, lambda: (model, tokenizer))
    state.wait_for_everyone()
    return results
