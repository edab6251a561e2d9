"""The typed run record and the run folder that owns where everything of a run lives.

A :class:`RunRecord` is written once by the experiment (``result.json``), given its place in a
study by the sweep through real fields (``method``, ``series``, ``knobs``, ``config_id``), and
read by the report, the sweep's objective and ``train``'s summary: one schema for all of them,
validated when written and when read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gsil_bench.errors import UserError
from gsil_bench.io import atomic_write_json, atomic_write_text, read_json

SCHEMA_VERSION = 1


def failure_reason(exc: BaseException, limit: int = 500) -> str:
    """One line for a failed run or trial: the error's type and the first line of its message."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:limit]


class Fingerprints(BaseModel):
    """Content hashes that identify what a run started from and what it produced."""

    model_config = ConfigDict(extra="allow")

    base_model: str | None = None
    final_model: str | None = None
    data: str | None = None
    config: str | None = None


class RunRecord(BaseModel):
    """One run: what ran (loss, hyperparameters, seed, config), on what (fingerprints), what it
    gave (benchmarks with per-item outcomes, trajectory) and what it cost (timings).

    ``method``, ``series``, ``knobs`` and ``config_id`` place the run in a study; a run made by
    ``train`` alone leaves them at their defaults (the method is the loss name).
    """

    model_config = ConfigDict(extra="ignore")

    schema_version: int = SCHEMA_VERSION
    run_id: str
    # A failed run's record says so: ``reason`` is the error's first line, ``stage`` the
    # pipeline stage it failed in (data, base_model, generation, reference, training, ...).
    # Nothing reads it as finished: a rerun of the same config runs again.
    status: Literal["ok", "failed"] = "ok"
    reason: str = ""
    stage: str = ""
    loss: str
    hparams: dict[str, Any] = Field(default_factory=dict)
    seed: int
    # Study placement, filled by the sweep.
    method: str = ""  # the row label, e.g. "gsil-logistic beta=3 swap_rejected=0.5"
    series: str = ""  # the label without data-quality knobs: one curve of a knob plot
    knobs: dict[str, Any] = Field(default_factory=dict)  # data-quality knob -> value
    params: dict[str, Any] = Field(default_factory=dict)  # every swept run-config key -> value
    config_id: str | None = None
    # What ran and on what.
    config: dict[str, Any] = Field(default_factory=dict)
    fingerprints: Fingerprints = Fingerprints()
    data: dict[str, Any] = Field(default_factory=dict)
    rounds: list[dict[str, Any]] = Field(default_factory=list)
    trajectory: list[dict[str, Any]] = Field(default_factory=list)
    benchmarks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Controls: how far the run moved its base model (filled by experiment/controls.py):
    # "moved_answers/<benchmark>" share of test answers that differ from the base model's,
    # "heldout_logp_delta" change in mean per-token log-likelihood of held-out demonstrations,
    # "identical_pairs" share of training pairs whose negative equals the demonstration.
    diagnostics: dict[str, float] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    machine: dict[str, Any] = Field(default_factory=dict)
    output_dir: str = ""
    model_path: str = ""
    timings: dict[str, float] = Field(default_factory=dict)

    @field_validator("benchmarks")
    @classmethod
    def _results_have_metrics(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, result in value.items():
            if not isinstance(result.get("metrics"), dict):
                raise ValueError(f"benchmarks[{name!r}] has no 'metrics' mapping")
        return value

    def model_post_init(self, __context: Any) -> None:
        if not self.method:
            self.method = self.loss
        if not self.series:
            self.series = self.method

    def iteration_results(self) -> list[dict[str, dict[str, Any]]] | None:
        """The results of iteration 0 (the base model) to T (the final model), for a run with
        ``eval.every_round``: each round's ``start_benchmarks`` (the model it started from),
        then the run's own ``benchmarks``. None when a round has none (or nothing was
        evaluated)."""
        starts = [r.get("start_benchmarks") for r in self.rounds]
        if not starts or not self.benchmarks or any(not isinstance(s, dict) for s in starts):
            return None
        return [*(dict(s) for s in starts if isinstance(s, dict)), self.benchmarks]

    # ----------------------------------------------------------------- I/O

    def write(self, path: str | Path) -> None:
        """Write atomically as JSON (a reader never sees half a record)."""
        atomic_write_json(path, self.model_dump(mode="json"))

    @classmethod
    def read(cls, path: str | Path) -> RunRecord:
        """Read and validate a record; a malformed one is a UserError naming file and key."""
        return cls.parse(read_json(path), str(path))

    @classmethod
    def parse(cls, data: Any, source: str) -> RunRecord:
        if not isinstance(data, dict):
            raise UserError(f"{source}: expected a JSON object (a run record)")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            if err["type"] == "missing":
                raise UserError(f"{source}: missing key '{key}' in run record") from None
            msg = err["msg"].removeprefix("Value error, ")
            raise UserError(f"{source}: run record key '{key}': {msg}") from None


@dataclass(frozen=True)
class RunDir:
    """The layout of one run's folder::

    config.json            fingerprint of the config that owns the folder
    config.yaml            the full config, for people and for ``eval``
    round-<i>/             checkpoints and train_log.jsonl of round i
    round-<i>/model/       the round's final model; ``COMPLETE`` holds its facts
    result.json            the RunRecord, written last
    """

    path: Path

    @property
    def result_path(self) -> Path:
        return self.path / "result.json"

    @property
    def config_yaml(self) -> Path:
        return self.path / "config.yaml"

    def round_dir(self, index: int) -> Path:
        return self.path / f"round-{index}"

    def model_dir(self, index: int) -> Path:
        return self.round_dir(index) / "model"

    def round_complete(self, index: int) -> bool:
        return (self.model_dir(index) / "COMPLETE").exists()

    def round_facts(self, index: int) -> dict[str, Any]:
        """The facts a finished round saved beside its model."""
        return dict(json.loads((self.model_dir(index) / "COMPLETE").read_text()))

    def mark_round_complete(self, index: int, facts: dict[str, Any]) -> None:
        """Written after the model itself: a round is finished only once this file exists."""
        atomic_write_text(self.model_dir(index) / "COMPLETE", json.dumps(facts, default=float))

    def claim(self, fingerprint: str, config_yaml: str) -> None:
        """Take the folder for a config; a folder holding another config is a UserError."""
        saved = self.path / "config.json"
        if saved.exists():
            previous = json.loads(saved.read_text()).get("fingerprint")
            if previous != fingerprint:
                raise UserError(
                    f"{self.path} holds a run with a different config; choose another "
                    "output_dir (e.g. --set output_dir=runs/new) or delete the folder"
                )
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(saved, json.dumps({"fingerprint": fingerprint}))
        atomic_write_text(self.config_yaml, config_yaml)

    def finished_result(self, fingerprint: str) -> RunRecord | None:
        """The record of a finished run of the same config, if there is one (a failed run's
        record is not one: the run is tried again)."""
        if not self.result_path.exists():
            return None
        record = RunRecord.read(self.result_path)
        finished = record.status == "ok" and record.fingerprints.config == fingerprint
        return record if finished else None

    def write_result(self, record: RunRecord) -> None:
        record.write(self.result_path)
