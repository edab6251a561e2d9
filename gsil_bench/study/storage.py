"""Where a study lives and how its queue survives crashes: storage, grid queue, recovery,
and the ``study.json`` summary the report reads.

Storage is a journal file under ``results/<study>/`` by default (readable by
optuna-dashboard) or any Optuna RDB URL, which is how several machines share one study.
Grid sweeps queue every configuration that has no finished, running or queued trial; workers
pop queued trials atomically, so none is run twice or lost, and a configuration whose trial
failed is queued again on the next start. A trial interrupted by a crash or SIGKILL is failed
and queued again on the next start (:func:`recover_interrupted`). Processes that start a
sweep of the same study on this machine take turns (:func:`study_lock`) to recover, queue,
run the controls and write the report.

A study folder belongs to one sweep specification: ``sweep.json`` keeps the content hash of
the spec that made it, and a different spec is refused (:func:`check_sweep_file`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import optuna.storages.journal
from optuna.trial import TrialState

from gsil_bench.errors import UserError
from gsil_bench.io import (
    atomic_write_json,
    cpu_model,
    file_lock,
    git_commit,
    package_versions,
    read_json,
)
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


# --------------------------------------------------------------------------- ownership

SWEEP_FILE = "sweep.json"  # beside the records: the spec hash and the sweep file that made it


def spec_digest(spec: SweepSpec) -> str:
    """Content hash of a sweep spec as loaded (comments and key order do not count; nor
    ``workers``, which says how the study runs, not what it measures)."""
    payload = json.dumps(spec.model_dump(mode="json", exclude={"workers"}), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _stored_sweep(results: Path) -> dict[str, Any] | None:
    """The spec hash (and sweep file) a study folder was made from, if it says."""
    for name in (SWEEP_FILE, "study.json"):
        path = results / name
        if path.is_file():
            data = read_json(path)
            if isinstance(data, dict) and data.get("spec_sha256"):
                return data
    return None


def check_sweep_file(spec: SweepSpec, paths: SweepPaths, spec_path: str, *, store: bool) -> None:
    """Refuse a study folder made from a different sweep spec (before anything is written);
    with ``store``, record this spec's hash when the folder has none yet (its first run, or a
    folder from before hashes were kept)."""
    digest = spec_digest(spec)
    stored = _stored_sweep(paths.results)
    if stored is not None and stored["spec_sha256"] != digest:
        raise UserError(
            f"{paths.results} holds study {spec.study!r} made from sweep file "
            f"{stored.get('sweep_file', '?')} (spec {stored['spec_sha256'][:12]}), and "
            f"{spec_path} differs from it (spec {digest[:12]}): give the new sweep another "
            f"study name, or delete {paths.results} to start the study over"
        )
    if store and not (paths.results / SWEEP_FILE).is_file():
        record = {"study": spec.study, "sweep_file": str(spec_path), "spec_sha256": digest}
        atomic_write_json(paths.results / SWEEP_FILE, record)


@contextlib.contextmanager
def study_lock(paths: SweepPaths) -> Iterator[None]:
    """Exclusive among the processes of this machine that run the study (an flock on
    ``results/<study>/.lock``, released when the process dies)."""
    paths.results.mkdir(parents=True, exist_ok=True)
    with file_lock(paths.results / ".lock"):
        yield


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


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


SETTLED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


def enqueue_grid(study: optuna.Study, spec: SweepSpec) -> list[int]:
    """Queue every grid configuration that is not finished, running or queued: a failed one
    is tried again. Returns the points queued."""
    if spec.sampler != "grid":
        return []
    settled = {
        _key(fixed_params(t)) for t in study.get_trials(deepcopy=False) if t.state in SETTLED
    }
    queued = []
    for index, (m, _) in enumerate(grid_points(spec)):
        params = {"point": index, "method": m}
        if _key(params) not in settled:
            study.enqueue_trial(params)
            queued.append(index)
    return queued


def requeue(study: optuna.Study, number: int) -> None:
    """Fail a claimed trial without a reason (interrupted, not broken) and queue a copy."""
    trial = study.trials[number]
    study.tell(number, state=TrialState.FAIL)
    study.enqueue_trial(fixed_params(trial))


def still_running(study: optuna.Study) -> int:
    """Trials queued, or running in a live worker (this machine) or elsewhere (another host)."""
    host = socket.gethostname()
    count = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        worker = trial.user_attrs.get("worker", {})
        dead_here = worker.get("host") == host and not _alive(int(worker.get("pid", -1)))
        count += trial.state == TrialState.WAITING or not dead_here
    return count


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
    waiting = bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    if spec.sampler == "grid" or waiting:  # a queued trial (a requeued one, too) always runs
        return waiting
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
    # The latest attempt of each configuration: one that failed and then finished when tried
    # again is not a failure; one that failed twice is listed once.
    latest: dict[str, optuna.trial.FrozenTrial] = {}
    for t in trials:
        if t.state != TrialState.FAIL or t.user_attrs.get("fail_reason"):
            latest[_key(fixed_params(t))] = t
    failures = [
        {
            "trial": t.number,
            "method": t.user_attrs.get("label", "?"),
            "reason": t.user_attrs["fail_reason"],
        }
        for t in latest.values()
        if t.state == TrialState.FAIL
    ]
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    summary = {
        "study": spec.study,
        "sweep_file": spec_path,
        "spec_sha256": spec_digest(spec),
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
                "cpu": cpu_model(),
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
