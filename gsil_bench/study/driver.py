"""Running a sweep: workers claim trials until the study is done, then the report is written.

One trial = one configuration run over every seed of the sweep (:mod:`gsil_bench.study.trial`);
before the trials, the base-model controls (one evaluation of the untrained base model per
seed) run in the starting process.
Several local workers (processes) or machines (an RDB storage URL) share one study. Since run
folders and records are keyed by configuration and seed, a sweep killed at any moment and
started again resumes where it was, and its final table equals that of an uninterrupted one.

Faults end a sweep with one line and leave what was finished as it was: SIGTERM stops at the
next safe point (the trial in flight is checkpointed or finished, then queued again); a
configuration error met by two different runs (every trial would meet it) stops the sweep
instead of failing each trial in turn; a full disk stops it. A failed trial is tried again
by the next run of the sweep. The report is written by the process that finishes the study.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import optuna
from optuna.trial import TrialState

from gsil_bench.errors import UserError
from gsil_bench.record import failure_reason
from gsil_bench.report.write import write_report
from gsil_bench.stop import check_stop, sigterm_stops
from gsil_bench.study.spec import SweepSpec, load_sweep
from gsil_bench.study.storage import (
    SweepPaths,
    budget_left,
    check_sweep_file,
    enqueue_grid,
    open_study,
    paths_for,
    recover_interrupted,
    requeue,
    still_running,
    study_lock,
    write_study_summary,
)
from gsil_bench.study.trial import disk_full, run_controls, run_trial

OnTrial = Callable[[optuna.Study], None]

STOPPED = "stopped"  # study user attribute: why the sweep stopped (empty: it did not)


def worker_loop(
    spec_path: str,
    results_dir: str,
    runs_dir: str,
    storage_url: str | None,
    budget: int | None = None,
    on_trial: OnTrial | None = None,
    config_errors: Iterable[str] = (),
) -> int:
    """Claim and run trials until the sweep is done or stopped; returns how many this worker
    ran. ``config_errors``: configuration errors already met (by the controls)."""
    spec = load_sweep(spec_path)
    paths = paths_for(spec, Path(results_dir), Path(runs_dir))
    study = open_study(spec, paths, storage_url)
    seen = set(config_errors)
    ran = 0
    while not study.user_attrs.get(STOPPED) and budget_left(study, spec, budget):
        check_stop("before claiming a trial")
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
        except KeyboardInterrupt:  # SIGTERM or Ctrl-C: queued again, resumed next time
            requeue(study, trial.number)
            raise
        except Exception as exc:  # a failed trial is recorded with its reason; the sweep goes on
            _fail(study, trial, failure_reason(exc))
            if disk_full(exc):
                raise
            if isinstance(exc, UserError):
                message = str(exc).splitlines()[0]
                if message in seen:  # a second configuration met it: every one would
                    study.set_user_attr(STOPPED, f"after trial {trial.number}: {message}")
                seen.add(message)
        else:
            study.tell(trial, values)
        ran += 1
        if on_trial is not None:
            on_trial(study)
    return ran


def _fail(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    trial.set_user_attr("fail_reason", reason)
    study.tell(trial, state=TrialState.FAIL)


# worker_loop's positional arguments: sweep file, results and runs folders, storage, budget.
WorkerArgs = tuple[str, str, str, str | None, int | None]


def _spawn_worker(args: WorkerArgs, threads: int) -> int:
    with sigterm_stops():
        return _controls_then_trials(args, threads)


def _controls_then_trials(
    args: WorkerArgs, threads: int | None, on_trial: OnTrial | None = None
) -> int:
    """One worker: the base-model controls no other worker has claimed (they build each
    seed's base model, so the workers build them side by side), then trials until the study
    is done."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    spec_path, results_dir, runs_dir = args[:3]
    spec = load_sweep(spec_path)
    failures = run_controls(spec, paths_for(spec, Path(results_dir), Path(runs_dir)), spec_path)
    known = sorted(str(f["reason"]).split(": ", 1)[-1] for f in failures if f["config_error"])
    return worker_loop(*args, on_trial=on_trial, config_errors=known)


def run_sweep(
    spec_path: str | Path,
    *,
    results_dir: str | Path = "results",
    runs_dir: str | Path = "runs/sweeps",
    storage_url: str | None = None,
    workers: int | None = None,
    trials: int | None = None,
    live: OnTrial | None = None,
) -> Path:
    """Run (or resume) a sweep and write its report; returns the study's results folder.

    One line (a UserError) when the folder belongs to another sweep spec, when no trial
    finished, when the sweep stopped on a configuration error or when the disk is full;
    ``StopRequested`` after SIGTERM. In each case the report is left as it was.
    ``workers``: local worker processes, by default the sweep file's ``workers`` or 1.
    """
    began = time.perf_counter()
    spec = load_sweep(spec_path)
    workers = workers or spec.workers or 1
    paths = paths_for(spec, Path(results_dir), Path(runs_dir))
    check_sweep_file(spec, paths, str(spec_path), store=False)  # before anything is written
    with _disk_full_is_one_line(paths), sigterm_stops():
        with study_lock(paths):
            check_sweep_file(spec, paths, str(spec_path), store=True)
            study = open_study(spec, paths, storage_url)
            study.set_user_attr(STOPPED, "")
            recover_interrupted(study)
            enqueue_grid(study, spec)
        # The base-model controls come first in every worker: one run per seed, outside the
        # trials (never counted in the budget, never a candidate for best); they fill the
        # base-model cache the trials of that seed then reuse.
        args: WorkerArgs = (str(spec_path), str(results_dir), str(runs_dir), storage_url, trials)
        if workers > 1:
            threads = max(1, (os.cpu_count() or 1) // workers)
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(workers - 1) as pool:
                pending = pool.starmap_async(_spawn_worker, [(args, threads)] * (workers - 1))
                _controls_then_trials(args, threads, on_trial=live)
                pending.get()
        else:
            _controls_then_trials(args, None, on_trial=live)
        _finish(study, spec, str(spec_path), paths, began)
    return paths.results


def _finish(
    study: optuna.Study, spec: SweepSpec, spec_path: str, paths: SweepPaths, began: float
) -> None:
    """The summary and report, written by the process that finishes the study (under the
    lock: two processes never write them at once)."""
    stopped = str(study.user_attrs.get(STOPPED) or "")
    if stopped:
        raise UserError(
            f"study {spec.study!r}: stopped {stopped}; every trial fails with this same "
            f"configuration error; completed trials and {paths.results} were left as they "
            "were (fix it and run the sweep again)"
        )
    with study_lock(paths):
        busy = still_running(study)
        if busy:
            print(
                f"[gsil-bench] study {spec.study!r}: {busy} trial(s) still queued or running "
                "in other workers; the one that finishes the study writes the report",
                file=sys.stderr,
                flush=True,
            )
            return
        _require_a_finished_trial(study, paths.results)
        write_study_summary(spec, paths, study, spec_path, time.perf_counter() - began)
        write_report(paths.results, baseline=spec.baseline)


@contextlib.contextmanager
def _disk_full_is_one_line(paths: SweepPaths) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if not disk_full(exc):
            raise
        where = exc.filename or paths.results
        raise UserError(
            f"{where}: no space left on device ({exc.strerror or exc}); the files written "
            "before are intact; free some space and run the sweep again (it resumes)"
        ) from None


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
