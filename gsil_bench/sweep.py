"""Optuna sweeps: one trial = one configuration run over every seed of the sweep.

Storage is a journal file under ``results/<study>/`` by default (readable by
optuna-dashboard) or any Optuna RDB URL, which is how several machines share one study.
Grid sweeps enqueue every configuration once; workers pop queued trials atomically, so none
is run twice or lost. A trial interrupted by a crash or SIGKILL is failed and queued again
on the next start; since run folders and records are keyed by configuration and seed, the
rerun resumes from its last checkpoint and reuses finished seeds, and the final table equals
that of an uninterrupted sweep.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import optuna.storages.journal
from optuna.trial import TrialState

from gsil_bench.errors import UserError
from gsil_bench.evaluation.result import primary_metric
from gsil_bench.sweep_spec import (
    SweepSpec,
    config_id,
    grid_points,
    load_sweep,
    method_label,
    run_config_for,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class SweepPaths:
    results: Path  # results/<study>: records, tables, plots, manifest, journal
    runs: Path  # heavy artifacts: checkpoints and models per configuration and seed

    @property
    def records(self) -> Path:
        return self.results / "records"


def paths_for(spec: SweepSpec, results_dir: Path, runs_dir: Path) -> SweepPaths:
    return SweepPaths(results_dir / spec.study, runs_dir / spec.study)


def open_study(spec: SweepSpec, paths: SweepPaths, storage_url: str | None) -> optuna.Study:
    paths.results.mkdir(parents=True, exist_ok=True)
    if storage_url:
        storage: Any = optuna.storages.RDBStorage(
            storage_url, heartbeat_interval=60, grace_period=180
        )
    else:
        backend = optuna.storages.journal.JournalFileBackend(str(paths.results / "study.journal"))
        storage = optuna.storages.JournalStorage(backend)
    directions = [spec.objective.direction, *spec.objective.extra_directions]
    sampler = {
        "tpe": optuna.samplers.TPESampler(seed=0),
        "random": optuna.samplers.RandomSampler(seed=0),
    }.get(spec.sampler, optuna.samplers.RandomSampler(seed=0))
    pruner: optuna.pruners.BasePruner = {
        "median": optuna.pruners.MedianPruner(n_startup_trials=3),
        "hyperband": optuna.pruners.HyperbandPruner(min_resource=1, max_resource=len(spec.seeds)),
    }.get(spec.pruner, optuna.pruners.NopPruner())
    return optuna.create_study(
        study_name=spec.study,
        storage=storage,
        load_if_exists=True,
        sampler=sampler,
        pruner=pruner,
        directions=directions,
    )


# --------------------------------------------------------------------------- queue


def _fixed(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return trial.system_attrs.get("fixed_params", trial.params)


def enqueue_grid(study: optuna.Study, spec: SweepSpec) -> None:
    """Queue every grid configuration not already queued, running or finished."""
    if spec.sampler != "grid":
        return
    for index, (m, _) in enumerate(grid_points(spec)):
        study.enqueue_trial({"point": index, "method": m}, skip_if_exists=True)


def recover_interrupted(study: optuna.Study) -> list[int]:
    """Fail trials whose worker on this host is gone, and requeue them (same parameters)."""
    host = socket.gethostname()
    requeued = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker", {})
        if worker.get("host") != host or _alive(int(worker.get("pid", -1))):
            continue
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(_fixed(trial))
        requeued.append(trial.number)
    if isinstance(study._storage, optuna.storages.RDBStorage):  # remote workers: heartbeats
        for trial in optuna.storages.fail_stale_trials(study) or []:
            study.enqueue_trial(_fixed(trial))
    return requeued


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _budget_left(study: optuna.Study, spec: SweepSpec, budget: int | None) -> bool:
    if spec.sampler == "grid":
        return bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    finished = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state in counted or t.user_attrs.get("fail_reason")
    ]
    return len(finished) < (budget or spec.trials or 0)


# --------------------------------------------------------------------------- one trial


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


def metric_value(record: dict[str, Any], name: str) -> float:
    benchmarks = record.get("benchmarks") or {}
    if name == "mean":
        primaries = [b["metrics"][primary_metric(b)] for b in benchmarks.values()]
        if not primaries:
            raise UserError("objective 'mean' needs at least one benchmark in eval.suites")
        return sum(primaries) / len(primaries)
    bench, _, metric = name.rpartition("/")
    if bench not in benchmarks or metric not in benchmarks[bench]["metrics"]:
        raise UserError(f"objective metric {name!r} is not in the results ({sorted(benchmarks)})")
    return float(benchmarks[bench]["metrics"][metric])


def objective_values(spec: SweepSpec, records: list[dict[str, Any]]) -> list[float]:
    def mean(name: str) -> float:
        return sum(metric_value(r, name) for r in records) / len(records)

    main = sum(weight * mean(name) for name, weight in spec.objective.metrics.items())
    return [main, *(mean(name) for name in spec.objective.extra)]


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    os.replace(tmp, path)


def run_trial(trial: optuna.Trial, spec: SweepSpec, paths: SweepPaths, source: str) -> list[float]:
    """Run one configuration over every seed; records land in results/<study>/records/."""
    from gsil_bench.pipeline import run_experiment

    method_index, values = choose(trial, spec)
    method = spec.methods[method_index]
    label = method_label(method, values)
    trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})
    trial.set_user_attr("label", label)
    records = []
    for step, seed in enumerate(spec.seeds):
        config = run_config_for(spec, method, values, seed, source)
        cid = config_id(config)
        trial.set_user_attr("config_id", cid)
        record_path = paths.records / f"{cid}-seed{seed}.json"
        if record_path.exists():
            record = json.loads(record_path.read_text())
        else:
            out = paths.runs / cid / f"seed{seed}"
            config = config.model_copy(update={"output_dir": str(out)})
            record = run_experiment(config)
            record.update(method=label, params={**method.params, **values}, config_id=cid)
            write_json_atomic(record_path, record)
        records.append(record)
        values_so_far = objective_values(spec, records)
        if len(values_so_far) == 1:
            trial.report(values_so_far[0], step)
            if step + 1 < len(spec.seeds) and trial.should_prune():
                raise optuna.TrialPruned(f"pruned after {step + 1} seeds")
    return objective_values(spec, records)


# --------------------------------------------------------------------------- workers


def worker_loop(
    spec_path: str,
    results_dir: str,
    runs_dir: str,
    storage_url: str | None,
    budget: int | None = None,
    threads: int | None = None,
    on_trial=None,
) -> int:
    """Claim and run trials until the sweep is done; returns how many this worker ran."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    spec = load_sweep(spec_path)
    paths = paths_for(spec, Path(results_dir), Path(runs_dir))
    study = open_study(spec, paths, storage_url)
    ran = 0
    while _budget_left(study, spec, budget):
        trial = study.ask()
        fixed = study.trials[trial.number].system_attrs.get("fixed_params")
        if spec.sampler == "grid" and fixed is None:
            # Another worker popped the last queued trial between our check and ask().
            study.tell(trial, state=TrialState.PRUNED)
            break
        try:
            values = run_trial(trial, spec, paths, spec_path)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a failed trial is recorded with its reason; the sweep goes on
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            trial.set_user_attr("fail_reason", reason)
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, values)
        ran += 1
        if on_trial is not None:
            on_trial(study)
    return ran


def _spawn_worker(args: tuple) -> int:
    return worker_loop(*args)


def run_sweep(
    spec_path: str | Path,
    *,
    results_dir: str | Path = "results",
    runs_dir: str | Path = "runs/sweeps",
    storage_url: str | None = None,
    workers: int = 1,
    trials: int | None = None,
    live=None,
) -> Path:
    """Run (or resume) a sweep and write its report; returns the study's results folder."""
    from gsil_bench.report import write_report

    began = time.perf_counter()
    spec = load_sweep(spec_path)
    paths = paths_for(spec, Path(results_dir), Path(runs_dir))
    study = open_study(spec, paths, storage_url)
    recover_interrupted(study)
    enqueue_grid(study, spec)
    args = (str(spec_path), str(results_dir), str(runs_dir), storage_url, trials)
    threads = max(1, (os.cpu_count() or 1) // workers)
    if workers > 1:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers - 1) as pool:
            pending = pool.map_async(_spawn_worker, [(*args, threads)] * (workers - 1))
            worker_loop(*args, threads=threads, on_trial=live)
            pending.get()
    else:
        worker_loop(*args, on_trial=live)
    write_study_summary(spec, paths, study, str(spec_path), time.perf_counter() - began)
    write_report(paths.results, baseline=spec.baseline)
    return paths.results


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_study_summary(
    spec: SweepSpec, paths: SweepPaths, study: optuna.Study, spec_path: str, wall_s: float
) -> None:
    """study.json: what the report needs besides the records (failures, manifest)."""
    import platform

    from gsil_bench.pipeline import package_versions

    trials = study.get_trials(deepcopy=False)
    failures = [
        {
            "trial": t.number,
            "method": t.user_attrs.get("label", "?"),
            "reason": t.user_attrs["fail_reason"],
        }
        for t in trials
        if t.state == TrialState.FAIL and t.user_attrs.get("fail_reason")
    ]
    stage_totals: dict[str, float] = {}
    for path in sorted(paths.records.glob("*.json")):
        for stage, seconds in json.loads(path.read_text()).get("timings", {}).items():
            stage_totals[stage] = stage_totals.get(stage, 0.0) + float(seconds)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    summary = {
        "study": spec.study,
        "sweep_file": spec_path,
        "baseline": spec.baseline,
        "knobs": spec.knobs,
        "grid": spec.grid,
        "objective": spec.objective.model_dump(),
        "seeds": spec.seeds,
        "failures": failures,
        "trials": counts,
        "manifest": {
            "git_commit": _git_commit(),
            "versions": package_versions(),
            "machine": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "host": socket.gethostname(),
            },
            "wall_time_s": wall_s,
            "stage_seconds_summed_over_runs": stage_totals,
        },
    }
    write_json_atomic(paths.results / "study.json", summary)
