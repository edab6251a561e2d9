"""Running a sweep: workers claim trials until the study is done, then the report is written.

One trial = one configuration run over every seed of the sweep (:mod:`gsil_bench.study.trial`);
before the trials, the base-model controls (one evaluation of the untrained base model per
seed) run in the starting process.
Several local workers (processes) or machines (an RDB storage URL) share one study. Since run
folders and records are keyed by configuration and seed, a sweep killed at any moment and
started again resumes where it was, and its final table equals that of an uninterrupted one.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import TrialState

from gsil_bench.errors import UserError
from gsil_bench.report.write import write_report
from gsil_bench.study.spec import load_sweep
from gsil_bench.study.storage import (
    budget_left,
    enqueue_grid,
    open_study,
    paths_for,
    recover_interrupted,
    write_study_summary,
)
from gsil_bench.study.trial import run_controls, run_trial

OnTrial = Callable[[optuna.Study], None]


def worker_loop(
    spec_path: str,
    results_dir: str,
    runs_dir: str,
    storage_url: str | None,
    budget: int | None = None,
    threads: int | None = None,
    on_trial: OnTrial | None = None,
) -> int:
    """Claim and run trials until the sweep is done; returns how many this worker ran."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    spec = load_sweep(spec_path)
    paths = paths_for(spec, Path(results_dir), Path(runs_dir))
    study = open_study(spec, paths, storage_url)
    ran = 0
    while budget_left(study, spec, budget):
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
    live: OnTrial | None = None,
) -> Path:
    """Run (or resume) a sweep and write its report; returns the study's results folder."""
    began = time.perf_counter()
    spec = load_sweep(spec_path)
    paths = paths_for(spec, Path(results_dir), Path(runs_dir))
    study = open_study(spec, paths, storage_url)
    recover_interrupted(study)
    enqueue_grid(study, spec)
    # The base-model controls first: one run per seed, outside the trials (never counted in
    # the budget, never a candidate for best), and they fill the base-model cache the
    # trials of that seed then reuse.
    run_controls(spec, paths, str(spec_path))
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
    _require_a_finished_trial(study, paths.results)
    write_study_summary(spec, paths, study, str(spec_path), time.perf_counter() - began)
    write_report(paths.results, baseline=spec.baseline)
    return paths.results


def _require_a_finished_trial(study: optuna.Study, results: Path) -> None:
    """A sweep none of whose trials finished must not replace the study's summary and tables
    (they may hold an earlier, finished sweep): one line naming the study and the first reason."""
    trials = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.COMPLETE for t in trials):
        return
    failed = [t for t in trials if t.state == TrialState.FAIL]
    reason = next(
        (str(t.user_attrs["fail_reason"]) for t in failed if "fail_reason" in t.user_attrs), ""
    )
    first = f"; the first: {reason}" if reason else ""
    raise UserError(
        f"study {study.study_name!r}: no trial finished ({len(failed)} failed{first}); "
        f"{results} was left as it was"
    )
