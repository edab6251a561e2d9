"""One trial: one configuration of the sweep, run over every seed; and the base-model
controls, one run per seed outside the trials.

Run folders and records are keyed by configuration and seed, so a trial run again (after a
crash, or sampled twice) resumes from its last checkpoint and reuses the seeds already
finished. Each record is the experiment's :class:`RunRecord`, placed in the study through its
``method``, ``series``, ``knobs``, ``params`` and ``config_id`` fields.

Every trial runs the sweep's seeds in the sweep's order and reports after each one, so the
pruner compares trials at step k over the same first k + 1 seeds, and a trial's objective is
over exactly the sweep's seeds: only a trial that ran them all completes (a pruned one never
becomes Optuna's best). The controls are not trials: they never count against ``trials``,
never feed the sampler and are never a candidate for best.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Any

import optuna

from gsil_bench.backend.tracking import RunLabels, trackers_for_sweep_run
from gsil_bench.config import RunConfig
from gsil_bench.errors import UserError
from gsil_bench.experiment.recipe import run_experiment
from gsil_bench.io import atomic_write_json, file_lock, read_json
from gsil_bench.record import RunRecord, failure_reason
from gsil_bench.report.objective import Objective, metric_value
from gsil_bench.report.stats import mean
from gsil_bench.stop import check_stop
from gsil_bench.study.spec import (
    CONTROL_LABEL,
    Method,
    SweepSpec,
    config_id,
    control_config,
    grid_points,
    method_label,
    run_config_for,
)
from gsil_bench.study.storage import SweepPaths


def choose(trial: optuna.Trial, spec: SweepSpec) -> tuple[int, dict[str, Any]]:
    """(method index, run-config values) of this trial, fixed or sampled."""
    if spec.sampler == "grid":
        points = grid_points(spec)
        method_index, values = points[trial.suggest_int("point", 0, len(points) - 1)]
        trial.suggest_int("method", 0, len(spec.methods) - 1)
        return method_index, values
    names = [method_label(m, {}) for m in spec.methods]
    method_index = names.index(trial.suggest_categorical("method", names))
    method = spec.methods[method_index]
    values = {key: dist.suggest(trial, key) for key, dist in method.space.items()}
    for key, choices in spec.grid.items():
        values[key] = trial.suggest_categorical(key, choices)
    return method_index, values


def objective_values(objective: Objective, records: list[RunRecord]) -> list[float]:
    """The weighted sum of each metric's mean over the seeds run so far, then the extras."""

    def seed_mean(name: str) -> float:
        return mean([metric_value(record.benchmarks, name) for record in records])

    main = sum(weight * seed_mean(name) for name, weight in objective.metrics.items())
    return [main, *(seed_mean(name) for name in objective.extra)]


def study_fields(spec: SweepSpec, method: Method, values: dict[str, Any]) -> dict[str, Any]:
    """The RunRecord fields that place a run of (method, values) in the study."""
    return {
        "method": method_label(method, values),
        # The data-quality knobs (a subset of the grid) vary along a plot's x axis; the label
        # without them names the curve.
        "series": method_label(method, values, hidden=spec.knobs),
        "knobs": {knob: values[knob] for knob in spec.knobs if knob in values},
        "params": {**method.params, **values},
    }


def run_trial(trial: optuna.Trial, spec: SweepSpec, paths: SweepPaths, source: str) -> list[float]:
    """Run one configuration over every seed; records land in results/<study>/records/."""
    method_index, values = choose(trial, spec)
    method = spec.methods[method_index]
    fields = study_fields(spec, method, values)
    trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})
    trial.set_user_attr("label", fields["method"])
    trial.set_user_attr("seeds", list(spec.seeds))
    records = []
    for step, seed in enumerate(spec.seeds):
        config = run_config_for(spec, method, values, seed, source)
        trial.set_user_attr("config_id", config_id(config))
        records.append(run_or_reuse(config, fields, paths))
        values_so_far = objective_values(spec.objective, records)
        if len(values_so_far) == 1:
            trial.report(values_so_far[0], step)
            if step + 1 < len(spec.seeds) and trial.should_prune():
                raise optuna.TrialPruned(f"pruned after {step + 1} seeds")
        if step + 1 < len(spec.seeds):
            check_stop(f"after seed {seed} of trial {trial.number}")
    return objective_values(spec.objective, records)


def run_or_reuse(config: RunConfig, fields: dict[str, Any], paths: SweepPaths) -> RunRecord:
    """The finished record of (config, seed) if the study has one, else run it and write it
    (a failed record is not a finished one: the run is tried again)."""
    record_path = record_path_of(config, paths)
    if record_path.exists() and read_json(record_path).get("status", "ok") == "ok":
        return RunRecord.read(record_path)
    cid = config_id(config)
    out = paths.runs / cid / f"seed{config.seed}"
    labels = RunLabels.for_trial(
        paths.runs,
        study=paths.results.name,
        method=fields["method"],
        loss=config.loss.name,
        seed=config.seed,
    )
    trackers = trackers_for_sweep_run(config.report_to)
    update = {"output_dir": str(out), "report_to": trackers}
    record = run_experiment(config.model_copy(update=update), labels=labels)
    record = record.model_copy(update={**fields, "config_id": cid})
    record.write(record_path)
    return record


def record_path_of(config: RunConfig, paths: SweepPaths) -> Path:
    return paths.records / f"{config_id(config)}-seed{config.seed}.json"


def control_fields(spec: SweepSpec) -> dict[str, Any]:
    """The study fields of a base-model control run: label ``base``, the knobs at their
    reference (first) value, no swept parameters."""
    reference = {knob: spec.grid[knob][0] for knob in spec.knobs if spec.grid.get(knob)}
    return {"method": CONTROL_LABEL, "series": CONTROL_LABEL, "knobs": reference, "params": {}}


def run_controls(spec: SweepSpec, paths: SweepPaths, source: str) -> list[dict[str, Any]]:
    """Evaluate the base model once per seed (``controls: {base: true}``); returns failures.

    Resumable like the trials: a seed whose record exists is not run again. Every worker of
    a sweep calls this first; a seed that another process is running (an flock per seed) is
    skipped, so the workers build the seeds' base models side by side. A control that
    fails is written as a failed record (the report lists it under failures) and tried again
    on the next start; the sweep goes on either way. A failure's ``config_error`` says whether
    it was a configuration error (a UserError), which the trials may then meet again.
    """
    if not spec.controls.base:
        return []
    failures = []
    for index, seed in enumerate(spec.seeds):
        if index:
            check_stop(f"after the base-model control of seed {spec.seeds[index - 1]}")
        with file_lock(paths.results / "records" / f".control-{seed}.lock", wait=False) as mine:
            if mine:
                failure = _run_control(spec, paths, source, seed)
                failures += [failure] if failure else []
    return failures


def _run_control(
    spec: SweepSpec, paths: SweepPaths, source: str, seed: int
) -> dict[str, Any] | None:
    """The control of one seed; its failure record when it failed."""
    config = control_config(spec, seed, source)
    try:
        run_or_reuse(config, control_fields(spec), paths)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # recorded with its reason, like a failed trial
        if disk_full(exc):
            raise
        failure = {
            "method": CONTROL_LABEL,
            "seed": seed,
            "status": "failed",
            "reason": failure_reason(exc),
            "config_error": isinstance(exc, UserError),
        }
        atomic_write_json(record_path_of(config, paths), failure)
        return failure
    return None


def disk_full(exc: BaseException) -> bool:
    """An error no trial can get past: the disk (or the user's quota) is full."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
