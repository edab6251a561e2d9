"""One experiment, top to bottom:

base model -> demonstrations -> [per round: negatives -> pairs -> reference -> train]
-> evaluate (and the base model, cached, for the diagnostics) -> record.

``iterations: 0`` trains nothing: the run evaluates its base model (a study's ``base`` row).

Negatives and reference log-probs are cached by content (model fingerprint, data, sampling
settings, seed), so every run that shares them pays once. Rerunning the same config resumes:
a finished run returns its record, finished rounds are loaded, an interrupted round resumes
from its checkpoint.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from typing import Any

import torch

from gsil_bench.backend.cache import DiskCache
from gsil_bench.backend.model import fingerprint_model, load_pretrained
from gsil_bench.backend.tracking import RunLabels, Tracking, require_trackers, run_id_of
from gsil_bench.backend.trainer import distributed_state
from gsil_bench.config import RunConfig, config_to_yaml
from gsil_bench.data.records import Demonstration, demonstrations_fingerprint
from gsil_bench.evaluation.evaluate import evaluate_model
from gsil_bench.evaluation.preflight import preflight
from gsil_bench.experiment.card import write_model_cards
from gsil_bench.experiment.controls import Results, base_evaluation, run_diagnostics
from gsil_bench.experiment.inputs import prepare_demonstrations, resolve_base_model
from gsil_bench.experiment.rounds import RoundPlan, Stages, run_rounds
from gsil_bench.io import machine_info, package_versions
from gsil_bench.record import Fingerprints, RunDir, RunRecord, failure_reason
from gsil_bench.registry import get_loss, validate_hparams


def run_experiment(config: RunConfig, *, labels: RunLabels | None = None) -> RunRecord:
    """Run (or resume) one experiment and write ``result.json`` in its output folder.

    A run that fails writes a failed record there instead (status ``failed``, the reason and
    the stage) and raises again; a failed record is not a finished run, so the same config
    run again tries again (from the last checkpoint). With ``config.report_to`` the training
    curves and results also go to those trackers, under ``labels`` (default: named after the
    output folder; a sweep names its runs by study and method).
    """
    began = time.perf_counter()
    torch.manual_seed(config.seed)
    run_dir = RunDir(config.resolved_output_dir())
    finished = run_dir.finished_result(config.fingerprint())
    if finished is not None:  # a finished run of the same config: nothing to redo
        return finished
    require_trackers(config.report_to)  # a missing tracker package, before any work
    preflight(config)  # the evaluation's files, judge and tasks, before any work
    state = distributed_state()
    if state.is_main_process:
        # A folder that holds another config raises here, before anything is written in it.
        run_dir.claim(config.fingerprint(), config_to_yaml(config))
    stages = Stages()
    tracking = Tracking()
    try:
        tracking = _open_tracking(config, run_dir, labels)
        record = _run(config, run_dir, stages, tracking)
        final_step = int(record.rounds[-1]["steps"]) if record.rounds else 0
        tracking.log_results(record.benchmarks, record.diagnostics, final_step)
    except Exception as exc:
        with contextlib.suppress(Exception):  # the run's own error is the one to raise
            tracking.close()
        if state.is_main_process:
            _write_failure(config, run_dir, stages, exc, time.perf_counter() - began)
        raise
    tracking.close()
    record.timings["total_s"] = time.perf_counter() - began
    if state.is_main_process:
        run_dir.write_result(record)
        write_model_cards(record, config, run_dir)
    return record


def _open_tracking(config: RunConfig, run_dir: RunDir, labels: RunLabels | None) -> Tracking:
    """The run's trackers (none without ``report_to`` or off the main process)."""
    if not config.report_to or not distributed_state().is_main_process:
        return Tracking()
    labels = labels or RunLabels.for_run(run_dir.path, loss=config.loss.name, seed=config.seed)
    labels = replace(labels, run_id=run_id_of(run_dir.path, config.fingerprint()))
    params = {**config.model_dump(mode="json"), "run_id": _run_id(config)}
    return Tracking.open(config.report_to, labels, config=params, rounds=max(1, config.iterations))


def _run(config: RunConfig, run_dir: RunDir, stages: Stages, tracking: Tracking) -> RunRecord:
    """The pipeline itself: inputs, rounds, evaluation, the record (timings but the total)."""
    state = distributed_state()
    cache = DiskCache(config.cache_dir)
    with state.main_process_first():  # the other processes then read the cached entries
        demos, data_facts, base, base_facts = _inputs(config, cache, stages)
    model, tokenizer = load_pretrained(
        base,
        dtype=config.model.dtype,
        trust_remote_code=config.model.trust_remote_code,
        revision=config.model.revision,
    )
    base_fp = fingerprint_model(model)

    hparams = validate_hparams(config.loss.name, config.loss.params)
    rounds: list[dict[str, Any]] = []
    if config.iterations:
        spec = get_loss(config.loss.name)
        plan = RoundPlan(config, spec, hparams, run_dir, cache, stages, tracking)
        model, tokenizer, rounds = run_rounds(plan, model, tokenizer, demos)

    benchmarks: Results = {}
    base_benchmarks: Results | None = None
    if config.eval.suites and state.is_main_process:
        benchmarks, base_benchmarks = _evaluate(
            config, cache, stages, base, base_fp, model, tokenizer
        )

    return RunRecord(
        run_id=_run_id(config),
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
        # A base-only run is the control itself: nothing moved.
        diagnostics=run_diagnostics(benchmarks, base_benchmarks, rounds) if rounds else {},
        versions=package_versions(),
        machine=machine_info(),
        output_dir=str(run_dir.path),
        model_path=str(run_dir.model_dir(config.iterations)) if config.iterations else base,
        timings=dict(stages.seconds),
    )


def _run_id(config: RunConfig) -> str:
    return f"{config.loss.name}-seed{config.seed}-{config.fingerprint()}"


def _write_failure(
    config: RunConfig, run_dir: RunDir, stages: Stages, exc: Exception, seconds: float
) -> None:
    """The failed record of a run (its reason and stage). Best effort: when the disk is full
    this write fails too, and the original error is the one that matters."""
    record = RunRecord(
        run_id=_run_id(config),
        status="failed",
        reason=failure_reason(exc),
        stage=stages.current,
        loss=config.loss.name,
        hparams=dict(config.loss.params),
        seed=config.seed,
        config=config.model_dump(mode="json"),
        fingerprints=Fingerprints(config=config.fingerprint()),
        versions=package_versions(),
        machine=machine_info(),
        output_dir=str(run_dir.path),
        timings=dict(stages.seconds, total_s=seconds),
    )
    with contextlib.suppress(OSError):
        run_dir.write_result(record)


def _inputs(
    config: RunConfig, cache: DiskCache, stages: Stages
) -> tuple[list[Demonstration], dict[str, Any], str, dict[str, Any]]:
    """The demonstrations and the base model (both with facts for the record); the run seed
    drives the data-quality transforms and, for the tiny model, the base model's seed."""
    with stages.timed("data_s"):
        demos, data_facts = prepare_demonstrations(config.data, seed=config.seed)
    with stages.timed("base_model_s"):
        base, base_facts = resolve_base_model(config.model, config.data, cache, seed=config.seed)
    return demos, data_facts, base, base_facts


def _evaluate(
    config: RunConfig, cache: DiskCache, stages: Stages, base: str, base_fp: str, model, tokenizer
) -> tuple[Results, Results | None]:
    """(the run's results, the base model's results to measure movement against, or None for
    a base-only run). The base model's evaluation is cached by content: a base-only run
    (``iterations: 0``) fills or reuses it as its own result, a trained run reuses it (or
    evaluates a fresh copy of the base once, for every later run of that base)."""
    if not config.iterations:
        with stages.timed("evaluation_s"):
            return base_evaluation(config, cache, base_fp, lambda: (model, tokenizer)), None
    with stages.timed("evaluation_s"):
        results = evaluate_model(model, tokenizer, config)
    with stages.timed("base_evaluation_s"):
        base_results = base_evaluation(
            config,
            cache,
            base_fp,
            lambda: load_pretrained(
                base,
                dtype=config.model.dtype,
                trust_remote_code=config.model.trust_remote_code,
                revision=config.model.revision,
            ),
        )
    return {name: r.to_dict() for name, r in results.items()}, base_results
