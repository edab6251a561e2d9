"""One experiment: data -> generate -> reference log-probs -> train -> evaluate -> record.

Generations and reference log-probs are cached by content (the model's weight fingerprint,
the data, the sampling parameters, the seed), so every run that shares them pays once.
Rerunning the same config resumes: finished rounds are loaded, an interrupted round resumes
from its checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from gsil_bench.backend.batches import TrainExample, reference_logps, tokenize_pairs
from gsil_bench.backend.cache import DiskCache, content_key
from gsil_bench.backend.chat import render_prompt
from gsil_bench.backend.generation import generate, generate_vllm
from gsil_bench.backend.model import fingerprint_model, load_pretrained, save_pretrained
from gsil_bench.backend.trainer import distributed_state, train
from gsil_bench.config import RunConfig, config_to_yaml
from gsil_bench.data.records import Demonstration
from gsil_bench.errors import UserError
from gsil_bench.registry import get_loss, validate_hparams

PACKAGES = ("gsil-bench", "torch", "transformers", "accelerate", "tokenizers", "optuna")


def package_versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def data_fingerprint(demos: list[Demonstration]) -> str:
    digest = hashlib.sha256()
    for d in demos:
        digest.update(json.dumps([d.prompt, d.response, d.rejected], sort_keys=True).encode())
    return digest.hexdigest()[:20]


@dataclass
class Stages:
    """Seconds per stage, summed over rounds."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, began: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - began


# --------------------------------------------------------------------------- data


def load_data(config: RunConfig, cache: DiskCache, stages: Stages):
    """(base model path or name, demonstrations, mini suite or None, facts for the record)."""
    began = time.perf_counter()
    facts: dict[str, Any] = {}
    suite = None
    if config.data.source == "mini" or config.model.name == "tiny":
        from gsil_bench.data.minisuite import build_suite

        suite = build_suite(config.data.mini)
        facts["suite_fingerprint"] = suite.fingerprint()
    if suite is not None and config.data.source == "mini":
        demos = list(suite.align)
    else:
        from gsil_bench.data.loaders import load_demonstrations

        demos = load_demonstrations(
            config.data.source,
            split=config.data.split,
            config_name=config.data.config_name,
            limit=config.data.limit,
        )
    if config.data.source == "mini" and config.data.limit:
        demos = demos[: config.data.limit]
    from gsil_bench.data.transforms import apply_transforms

    demos, facts["transforms"] = apply_transforms(demos, config.data.quality, seed=config.seed)
    if not demos:
        raise UserError(f"no demonstrations left from {config.data.source!r} after transforms")
    facts["demonstrations"] = len(demos)
    facts["data_fingerprint"] = data_fingerprint(demos)
    stages.add("data_s", began)

    if config.model.name == "tiny":
        from gsil_bench.backend.base_model import tiny_base

        began = time.perf_counter()
        assert suite is not None  # built above whenever the model is the tiny one
        path, facts["base_model"] = tiny_base(config.model.tiny, suite, cache)
        stages.add("base_model_s", began)
        return str(path), demos, suite, facts
    return config.model.name, demos, suite, facts


# --------------------------------------------------------------------------- stages


def negatives_for(
    config: RunConfig,
    model,
    tokenizer,
    demos: list[Demonstration],
    cache: DiskCache,
    round_index: int,
    model_fp: str,
) -> list[str]:
    """The negative response per demonstration: self-generated (cached) or the data's rejected."""
    if config.data.negatives == "rejected":
        missing = [d.id for d in demos if not d.rejected]
        if missing:
            raise UserError(
                f"data.negatives=rejected but {len(missing)} records have no rejected response "
                f"(first: {missing[0]!r})"
            )
        return [d.rejected or "" for d in demos]
    gen = config.generation
    prompts = [render_prompt(tokenizer, d.prompt) for d in demos]
    key = content_key(
        "generated",
        {
            "model": model_fp,
            "prompts": hashlib.sha256("\x00".join(prompts).encode()).hexdigest(),
            "gen": gen.model_dump(exclude={"batch_size", "mix_previous_rounds"}),
            "seed": config.seed if gen.do_sample else 0,
        },
    )
    hit = cache.get("generated", key)
    if hit is not None:
        return json.loads((hit / "responses.json").read_text())
    sampling: dict[str, Any] = {
        "max_new_tokens": gen.max_new_tokens,
        "do_sample": gen.do_sample,
        "temperature": gen.temperature,
        "top_p": gen.top_p,
        "seed": config.seed,
    }
    if gen.backend == "vllm":
        staging = cache.root / "vllm-staging" / model_fp
        responses = generate_vllm(model, tokenizer, prompts, staging_dir=staging, **sampling)
    else:
        responses = generate(
            model,
            tokenizer,
            prompts,
            batch_size=gen.batch_size,
            description=f"round {round_index}: generating",
            **sampling,
        )

    def write(tmp: Path) -> None:
        (tmp / "responses.json").write_text(json.dumps(responses))

    cache.put("generated", key, write, {"n": len(responses), "model": model_fp})
    return responses


def cached_reference(
    model,
    examples: list[TrainExample],
    *,
    with_generated: bool,
    batch_size: int,
    pad_id: int,
    cache: DiskCache,
    model_fp: str,
    round_index: int,
) -> dict[str, torch.Tensor]:
    digest = hashlib.sha256()
    for e in examples:
        digest.update(json.dumps([e.prompt_ids, e.real_ids, e.generated_ids]).encode())
    key = content_key(
        "reference", {"model": model_fp, "examples": digest.hexdigest(), "gen": with_generated}
    )
    hit = cache.get("reference", key)
    if hit is not None:
        return torch.load(hit / "logps.pt")
    logps = reference_logps(
        model,
        examples,
        with_generated=with_generated,
        batch_size=batch_size,
        pad_id=pad_id,
        description=f"round {round_index}: reference log-probs",
    )
    cache.put(
        "reference",
        key,
        lambda tmp: torch.save(logps, tmp / "logps.pt"),
        {"n": len(examples), "model": model_fp},
    )
    return logps


def _check_run_dir(run_dir: Path, config: RunConfig) -> None:
    saved = run_dir / "config.json"
    if saved.exists():
        previous = json.loads(saved.read_text()).get("fingerprint")
        if previous != config.fingerprint():
            raise UserError(
                f"{run_dir} holds a run with a different config; choose another output_dir "
                "(e.g. --set output_dir=runs/new) or delete the folder"
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({"fingerprint": config.fingerprint()}))
    (run_dir / "config.yaml").write_text(config_to_yaml(config))


# --------------------------------------------------------------------------- rounds


def run_round(
    config: RunConfig,
    model,
    tokenizer,
    demos: list[Demonstration],
    cache: DiskCache,
    round_index: int,
    stages: Stages,
    previous_negatives: list[str] | None,
) -> tuple[Any, dict[str, Any], list[str] | None]:
    """Train one round against ``model`` (generator and reference); returns the new policy."""
    spec = get_loss(config.loss.name)
    hparams = validate_hparams(config.loss.name, config.loss.params)
    round_dir = config.resolved_output_dir() / f"round-{round_index}"
    state = distributed_state()
    facts: dict[str, Any] = {}
    model_fp = fingerprint_model(model)
    negatives = None
    if spec.needs_generated:
        began = time.perf_counter()
        with state.main_process_first():
            negatives = negatives_for(config, model, tokenizer, demos, cache, round_index, model_fp)
        stages.add("generation_s", began)
    prompts, reals = [d.prompt for d in demos], [d.response for d in demos]
    negs = negatives
    if negatives is not None and previous_negatives and config.generation.mix_previous_rounds:
        prompts, reals = prompts + prompts, reals + reals
        negs = negatives + previous_negatives
    if negs is not None:
        facts["identical_negatives"] = sum(r == n for r, n in zip(reals, negs, strict=True))
        if config.data.drop_identical:
            keep = [i for i, (r, n) in enumerate(zip(reals, negs, strict=True)) if r != n]
            prompts, reals = [prompts[i] for i in keep], [reals[i] for i in keep]
            negs = [negs[i] for i in keep]
    examples, _, length = tokenize_pairs(
        tokenizer,
        prompts,
        reals,
        negs,
        max_prompt_tokens=config.data.max_prompt_tokens,
        max_length=config.data.max_length,
    )
    facts["length_policy"] = length.as_dict()
    reference = None
    if spec.needs_reference:
        began = time.perf_counter()
        with state.main_process_first():
            reference = cached_reference(
                model,
                examples,
                with_generated=spec.needs_generated,
                batch_size=config.optim.batch_size * 2,
                pad_id=tokenizer.pad_token_id,
                cache=cache,
                model_fp=model_fp,
                round_index=round_index,
            )
        stages.add("reference_s", began)
    # Negatives and reference log-probs are computed, so the reference itself is no longer
    # needed: train it in place rather than holding two copies of the model in memory.
    policy = model
    began = time.perf_counter()
    result = train(
        policy,
        examples,
        loss=spec,
        hparams=hparams,
        optim=config.optim,
        seed=config.seed,
        run_dir=round_dir,
        pad_id=tokenizer.pad_token_id,
        reference=reference,
        description=f"round {round_index}: {spec.name}",
    )
    stages.add("training_s", began)
    policy = getattr(policy, "module", policy)
    facts.update(
        steps=result.steps,
        resumed_from=result.resumed_from,
        tokens_per_s=result.tokens_per_s,
        log=str(result.log_path),
    )
    facts["trajectory"] = result.history
    if state.is_main_process:
        save_pretrained(policy, tokenizer, round_dir / "model")
        (round_dir / "model" / "COMPLETE").write_text(
            json.dumps({k: v for k, v in facts.items() if k != "trajectory"})
        )
    state.wait_for_everyone()
    return policy, facts, negatives


def run_rounds(
    config: RunConfig,
    model,
    tokenizer,
    demos: list[Demonstration],
    cache: DiskCache,
    stages: Stages,
) -> tuple[Any, Any, list[dict[str, Any]]]:
    """Every round in turn; a round whose model is already saved is loaded, not retrained."""
    rounds: list[dict[str, Any]] = []
    previous_negatives = None
    for round_index in range(1, config.iterations + 1):
        done = config.resolved_output_dir() / f"round-{round_index}" / "model"
        if (done / "COMPLETE").exists():
            model, tokenizer = load_pretrained(str(done), dtype=config.model.dtype)
            facts = json.loads((done / "COMPLETE").read_text()) | {"loaded": True}
            log = Path(facts["log"])
            lines = log.read_text().splitlines() if log.exists() else []
            facts["trajectory"] = [json.loads(x) for x in lines]
            rounds.append(facts)
            continue
        model, facts, previous_negatives = run_round(
            config, model, tokenizer, demos, cache, round_index, stages, previous_negatives
        )
        rounds.append(facts)
    return model, tokenizer, rounds


def run_experiment(config: RunConfig) -> dict[str, Any]:
    """Run (or resume) one experiment and write ``result.json`` in its output folder."""
    began_all = time.perf_counter()
    torch.manual_seed(config.seed)
    run_dir = config.resolved_output_dir()
    finished = run_dir / "result.json"
    if finished.exists():  # a finished run of the same config: nothing to redo
        previous = json.loads(finished.read_text())
        if previous.get("fingerprints", {}).get("config") == config.fingerprint():
            return previous
    state = distributed_state()
    if state.is_main_process:
        _check_run_dir(run_dir, config)
    cache = DiskCache(config.cache_dir)
    stages = Stages()
    with state.main_process_first():
        base, demos, suite, facts = load_data(config, cache, stages)
    model, tokenizer = load_pretrained(
        base, dtype=config.model.dtype, trust_remote_code=config.model.trust_remote_code
    )
    base_fp = fingerprint_model(model)
    model, tokenizer, rounds = run_rounds(config, model, tokenizer, demos, cache, stages)
    record: dict[str, Any] = {
        "run_id": f"{config.loss.name}-seed{config.seed}-{config.fingerprint()}",
        "loss": config.loss.name,
        "hparams": validate_hparams(config.loss.name, config.loss.params),
        "seed": config.seed,
        "config": config.model_dump(mode="json"),
        "fingerprints": {
            "base_model": base_fp,
            "final_model": fingerprint_model(model),
            "data": facts["data_fingerprint"],
            "config": config.fingerprint(),
        },
        "data": {k: v for k, v in facts.items() if k != "data_fingerprint"},
        "rounds": [{k: v for k, v in r.items() if k != "trajectory"} for r in rounds],
        "trajectory": rounds[-1].get("trajectory", []) if rounds else [],
        "versions": package_versions(),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch_threads": torch.get_num_threads(),
            "device": "cuda" if torch.cuda.is_available() else "cpu",
        },
        "output_dir": str(run_dir),
        "model_path": str(run_dir / f"round-{config.iterations}" / "model"),
    }
    if config.eval.suites and state.is_main_process:
        from gsil_bench.evaluation.suites import evaluate_model

        began = time.perf_counter()
        results = evaluate_model(model, tokenizer, config.eval, suite=suite)
        stages.add("evaluation_s", began)
        record["benchmarks"] = {name: r.to_dict() for name, r in results.items()}
    record["timings"] = dict(stages.seconds, total_s=time.perf_counter() - began_all)
    record["status"] = "ok"
    if state.is_main_process:
        (run_dir / "result.json").write_text(json.dumps(record, indent=1, default=float))
    return record
