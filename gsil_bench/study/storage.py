"""Where a study lives and how its queue survives crashes: storage, grid queue, recovery,
and the ``study.json`` summary the report reads.

Storage is a journal file under ``results/<study>/`` by default (readable by
optuna-dashboard) or any Optuna RDB URL, which is how several machines share one study.
Grid sweeps enqueue every configuration once; workers pop queued trials atomically, so none
is run twice or lost. A trial interrupted by a crash or SIGKILL is failed and queued again
on the next start (:func:`recover_interrupted`).
"""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import optuna.storages.journal
from optuna.trial import TrialState

from gsil_bench.io import atomic_write_json, git_commit, package_versions, read_json
from gsil_bench.study.samplers import PRUNERS, SAMPLERS
from gsil_bench.study.spec import SweepSpec, grid_points

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
    """Create the study, or load it when it exists (a resumed sweep, another worker)."""
    paths.results.mkdir(parents=True, exist_ok=True)
    if storage_url:
        storage: Any = optuna.storages.RDBStorage(
            storage_url, heartbeat_interval=60, grace_period=180
        )
    else:
        backend = optuna.storages.journal.JournalFileBackend(str(paths.results / "study.journal"))
        storage = optuna.storages.JournalStorage(backend)
    return optuna.create_study(
        study_name=spec.study,
        storage=storage,
        load_if_exists=True,
        sampler=SAMPLERS.get(spec.sampler)(spec),
        pruner=PRUNERS.get(spec.pruner)(spec),
        directions=[spec.objective.direction, *spec.objective.extra_directions],
    )


# --------------------------------------------------------------------------- queue


def fixed_params(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The parameters a trial was enqueued with (or sampled): what a requeued copy gets."""
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
        study.enqueue_trial(fixed_params(trial))
        requeued.append(trial.number)
    if isinstance(study._storage, optuna.storages.RDBStorage):  # remote workers: heartbeats
        for trial in optuna.storages.fail_stale_trials(study) or []:
            study.enqueue_trial(fixed_params(trial))
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


def budget_left(study: optuna.Study, spec: SweepSpec, budget: int | None) -> bool:
    """Whether a worker should claim another trial: a queued grid point, or trial budget."""
    if spec.sampler == "grid":
        return bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    finished = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state in counted or t.user_attrs.get("fail_reason")
    ]
    return len(finished) < (budget or spec.trials or 0)


# --------------------------------------------------------------------------- summary


def write_study_summary(
    spec: SweepSpec, paths: SweepPaths, study: optuna.Study, spec_path: str, wall_s: float
) -> None:
    """study.json: what the report needs besides the records (failures, manifest)."""
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
            "git_commit": git_commit(),
            "versions": package_versions(),
            "machine": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "host": socket.gethostname(),
            },
            "wall_time_s": wall_s,
            "stage_seconds_summed_over_runs": _stage_totals(paths.records),
        },
    }
    atomic_write_json(paths.results / "study.json", summary)


def _stage_totals(records_dir: Path) -> dict[str, float]:
    # Read as plain JSON: a hand-written record of a failed run need not carry timings.
    totals: dict[str, float] = {}
    for path in sorted(records_dir.glob("*.json")):
        for stage, seconds in (read_json(path).get("timings") or {}).items():
            totals[stage] = totals.get(stage, 0.0) + float(seconds)
    return totals
