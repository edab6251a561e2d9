"""One experiment, top to bottom:

base model -> demonstrations -> [per round: negatives -> pairs -> reference -> train]
-> evaluate -> record.

Negatives and reference log-probs are cached by content (model fingerprint, data, sampling
settings, seed), so every run that shares them pays once. Rerunning the same config resumes:
a finished run returns its record, finished rounds are loaded, an interrupted round resumes
from its checkpoint.
"""

from __future__ import annotations

import time

import torch

from gsil_bench.backend.cache import DiskCache
from gsil_bench.backend.model import fingerprint_model, load_pretrained
from gsil_bench.backend.trainer import distributed_state
from gsil_bench.config import RunConfig, config_to_yaml
from gsil_bench.data.records import demonstrations_fingerprint
from gsil_bench.experiment.inputs import prepare_demonstrations, resolve_base_model
from gsil_bench.experiment.rounds import RoundPlan, Stages, run_rounds
from gsil_bench.io import machine_info, package_versions
from gsil_bench.record import Fingerprints, RunDir, RunRecord
from gsil_bench.registry import get_loss, validate_hparams


def run_experiment(config: RunConfig) -> RunRecord:
    """Run (or resume) one experiment and write ``result.json`` in its output folder."""
    began = time.perf_counter()
    torch.manual_seed(config.seed)
    run_dir = RunDir(config.resolved_output_dir())
    finished = run_dir.finished_result(config.fingerprint())
    if finished is not None:  # a finished run of the same config: nothing to redo
        return finished
    state = distributed_state()
    if state.is_main_process:
        run_dir.claim(config.fingerprint(), config_to_yaml(config))
    cache, stages = DiskCache(config.cache_dir), Stages()

    with state.main_process_first():
        with stages.timed("data_s"):
            demos, data_facts = prepare_demonstrations(config.data, seed=config.seed)
        with stages.timed("base_model_s"):
            base, base_facts = resolve_base_model(config.model, config.data, cache)
    model, tokenizer = load_pretrained(
        base, dtype=config.model.dtype, trust_remote_code=config.model.trust_remote_code
    )
    base_fp = fingerprint_model(model)

    hparams = validate_hparams(config.loss.name, config.loss.params)
    plan = RoundPlan(config, get_loss(config.loss.name), hparams, run_dir, cache, stages)
    model, tokenizer, rounds = run_rounds(plan, model, tokenizer, demos)

    benchmarks = {}
    if config.eval.suites and state.is_main_process:
        from gsil_bench.evaluation.evaluate import evaluate_model

        with stages.timed("evaluation_s"):
            results = evaluate_model(model, tokenizer, config)
        benchmarks = {name: r.to_dict() for name, r in results.items()}

    record = RunRecord(
        run_id=f"{config.loss.name}-seed{config.seed}-{config.fingerprint()}",
        loss=config.loss.name,
        hparams=hparams,
        seed=config.seed,
        config=config.model_dump(mode="json"),
        fingerprints=Fingerprints(
            base_model=base_fp,
            final_model=fingerprint_model(model),
            data=demonstrations_fingerprint(demos),
            config=config.fingerprint(),
        ),
        data={**data_facts, **({"base_model": base_facts} if base_facts else {})},
        rounds=[{k: v for k, v in r.items() if k != "trajectory"} for r in rounds],
        trajectory=rounds[-1].get("trajectory", []) if rounds else [],
        benchmarks=benchmarks,
        versions=package_versions(),
        machine=machine_info(),
        output_dir=str(run_dir.path),
        model_path=str(run_dir.model_dir(config.iterations)),
        timings=dict(stages.seconds, total_s=time.perf_counter() - began),
    )
    if state.is_main_process:
        run_dir.write_result(record)
    return record
