"""Experiment trackers: TensorBoard, Weights & Biases, MLflow and Trackio, through accelerate's
tracker classes (``accelerate.tracking``), as TRL's ``report_to`` does.

A run with ``report_to`` mirrors every row it writes to ``train_log.jsonl`` (loss, reward
metrics, learning rate, gradient norm, tokens/s) as ``train/<key>`` at the row's step, and at
the end its evaluation results (``eval/<benchmark>/<metric>``) and the movement against the
base model (``diagnostics/<key>``) at the final step. A run of several rounds logs round r as
``train/round<r>/<key>``: every round counts its steps from 1.

The trainer's own Accelerator is not asked to track: the trackers are opened once per run
(around every round and the evaluation), on the main process only, and the training loop only
sees a callback. A sweep names its runs by study and method (:class:`RunLabels`).
"""

from __future__ import annotations

import importlib.util
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from accelerate import PartialState

from gsil_bench.config import TrackerName
from gsil_bench.errors import UserError
from gsil_bench.io import atomic_write_text

TRACKERS: tuple[str, ...] = get_args(TrackerName)
# The module each tracker needs: its own name (accelerate's TensorBoard tracker writes through
# torch.utils.tensorboard, which needs the tensorboard package).
_MODULES = {name: name for name in TRACKERS}

StepLogger = Callable[[Mapping[str, float]], None]


def require_trackers(names: Iterable[str], where: str = "report_to") -> None:
    """Raise one line naming the extra to install for the first tracker that is missing.

    Called before a run does any work, so a missing package never costs a trained model.
    """
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    for name in names:
        if name not in TRACKERS:
            raise UserError(f"{where}: unknown tracker {name!r}; choose from {', '.join(TRACKERS)}")
        extra = f'pip install "gsil-bench[{name}]"'
        if importlib.util.find_spec(_MODULES[name]) is None:
            raise UserError(f"{where}: {name} is not installed; install it with {extra}")
        if name not in LOGGER_TYPE_TO_CLASS:  # accelerate before its Trackio tracker
            raise UserError(f"{where}: this accelerate has no {name} tracker; {extra}")


def parse_report_to(values: Iterable[str], where: str = "--report-to") -> list[str]:
    """Tracker names from repeated or comma-separated options (``--report-to a,b``), checked:
    an unknown name or a missing package is one line naming ``where``."""
    names = [n.strip() for value in values for n in value.split(",") if n.strip()]
    names = list(dict.fromkeys(names))
    require_trackers(names, where)
    return names


# A sweep's --report-to reaches the runs of all its worker processes (spawned ones included)
# through the environment, so the study's queueing code need not carry it.
SWEEP_REPORT_TO_ENV = "GSIL_BENCH_SWEEP_REPORT_TO"


@contextmanager
def sweep_report_to(names: list[str]) -> Iterator[None]:
    """Within the block, every sweep run also reports to ``names`` (see :func:`trackers_for`)."""
    previous = os.environ.get(SWEEP_REPORT_TO_ENV)
    os.environ[SWEEP_REPORT_TO_ENV] = ",".join(names)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(SWEEP_REPORT_TO_ENV, None)
        else:
            os.environ[SWEEP_REPORT_TO_ENV] = previous


def trackers_for_sweep_run(report_to: Iterable[str]) -> list[str]:
    """A sweep run's trackers: its config's ``report_to`` and the sweep's ``--report-to``."""
    extra = os.environ.get(SWEEP_REPORT_TO_ENV, "").split(",")
    return list(dict.fromkeys([*report_to, *(n for n in extra if n)]))


def _safe(part: str) -> str:
    """A run or method label as one path component (TensorBoard names runs by folder)."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", part).strip("_") or "run"


@dataclass(frozen=True)
class RunLabels:
    """Where a run shows up in the trackers.

    ``project``: the W&B/Trackio project and the MLflow experiment; ``name``: the run;
    ``group``: runs of one method (W&B/Trackio group, an MLflow tag); ``tags``: W&B and
    MLflow tags; ``tensorboard_dir``: the run's own TensorBoard folder (TensorBoard names runs
    by folder, so a sweep puts them under ``<study>/tensorboard/<method>/seed<k>``);
    ``run_id``: a stable id, so a resumed run continues its W&B or Trackio run instead of
    starting another.
    """

    project: str
    name: str
    tensorboard_dir: Path
    group: str | None = None
    tags: tuple[str, ...] = ()
    run_id: str | None = None

    @classmethod
    def for_run(cls, output_dir: Path, *, loss: str, seed: int) -> RunLabels:
        """A run on its own (``gsil-bench train``): named after its output folder."""
        return cls(
            project="gsil-bench",
            name=output_dir.name,
            tensorboard_dir=output_dir / "tensorboard",
            group=loss,
            tags=(loss, f"seed{seed}"),
        )

    @classmethod
    def for_trial(
        cls, runs_dir: Path, *, study: str, method: str, loss: str, seed: int
    ) -> RunLabels:
        """A sweep's run: project = study, group = method, one TensorBoard folder per method
        under ``<runs_dir>/tensorboard`` (``tensorboard --logdir`` there compares them)."""
        return cls(
            project=study,
            name=f"{method} seed{seed}",
            tensorboard_dir=runs_dir / "tensorboard" / _safe(method) / f"seed{seed}",
            group=method,
            tags=(study, loss, method),
        )


def run_id_of(run_dir: Path, fingerprint: str) -> str:
    """The tracker run id kept in the run's folder: the same when an interrupted run resumes,
    a new one when the folder was deleted and the run starts over (W&B would otherwise drop
    every step up to the old run's last)."""
    path = run_dir / "tracker_run_id"
    if path.exists():
        return path.read_text().strip()
    run_id = f"{fingerprint}-{uuid.uuid4().hex[:8]}"
    atomic_write_text(path, run_id)
    return run_id


def _make_tracker(name: str, labels: RunLabels) -> Any:
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    cls = LOGGER_TYPE_TO_CLASS[name]
    if name == "tensorboard":
        folder = labels.tensorboard_dir
        return cls(folder.name, str(folder.parent))  # writes to <logging_dir>/<run_name>
    if name == "wandb":
        return cls(
            labels.project,
            name=labels.name,
            group=labels.group,
            tags=list(labels.tags),
            id=labels.run_id,
            resume="allow" if labels.run_id else None,
        )
    if name == "trackio":
        # auto_log_cpu off: a background sampler thread per run is not a training metric.
        return cls(
            labels.project,
            name=labels.name,
            group=labels.group,
            resume="allow" if labels.run_id else "never",
            auto_log_cpu=False,
        )
    tags = {tag: "true" for tag in labels.tags}
    if labels.group:
        tags["method"] = labels.group
    return cls(experiment_name=labels.project, run_name=labels.name, tags=tags)


def flat_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys with the scalar values trackers accept (others as text)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_params(value, dotted + "."))
        elif value is None or isinstance(value, bool | int | float | str):
            flat[dotted] = value
        else:
            flat[dotted] = str(value)
    return flat


@dataclass
class Tracking:
    """The open trackers of one run (none on the other processes, or without ``report_to``)."""

    trackers: list[Any] = field(default_factory=list)
    rounds: int = 1

    @classmethod
    def open(
        cls,
        report_to: Iterable[str],
        labels: RunLabels,
        *,
        config: Mapping[str, Any],
        rounds: int = 1,
    ) -> Tracking:
        names = list(dict.fromkeys(report_to))
        if not names or not PartialState().is_main_process:
            return cls([], rounds)
        require_trackers(names)
        params = flat_params(config)
        tracking = cls([], rounds)
        try:
            for name in names:
                tracker = _make_tracker(name, labels)
                tracker.start()
                tracking.trackers.append(tracker)
                tracker.store_init_configuration(params)
        except BaseException:
            tracking.close()
            raise
        return tracking

    def log(self, values: Mapping[str, float], step: int) -> None:
        for tracker in self.trackers:
            tracker.log(dict(values), step=step)

    def train_logger(self, round_index: int) -> StepLogger | None:
        """The trainer's callback for one round: each train_log row at its own step."""
        if not self.trackers:
            return None
        prefix = "train" if self.rounds == 1 else f"train/round{round_index}"

        def log_row(row: Mapping[str, float]) -> None:
            values = {f"{prefix}/{k}": float(v) for k, v in row.items() if k != "step"}
            self.log(values, step=int(row["step"]))

        return log_row

    def log_results(
        self,
        benchmarks: Mapping[str, Mapping[str, Any]],
        diagnostics: Mapping[str, float],
        step: int,
    ) -> None:
        """The run's evaluation results (every numeric metric of each benchmark) and its
        movement against the base model, at the final training step."""
        values: dict[str, float] = {}
        for bench, result in benchmarks.items():
            for metric, value in (result.get("metrics") or {}).items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    values[f"eval/{bench}/{metric}"] = float(value)
        for key, value in diagnostics.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                values[f"diagnostics/{key}"] = float(value)
        if values:
            self.log(values, step=step)

    def close(self) -> None:
        """Finish every tracker (each one even when another fails to)."""
        trackers, self.trackers = self.trackers, []
        errors = []
        for tracker in trackers:
            try:
                tracker.finish()
            except Exception as exc:  # one tracker's failure must not leave the others open
                errors.append(exc)
        if errors:
            raise errors[0]
