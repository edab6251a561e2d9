"""A study folder read into memory: ``results/<study>/records/*.json`` plus ``study.json``.

Each record is a :class:`gsil_bench.record.RunRecord` (validated on reading; a malformed one is a
UserError naming the file and key). ``study.json`` (written by the sweep, optional here) may hold
``study``, ``sweep_file``, ``baseline`` (a method label), ``knobs`` (data-quality parameter
names), ``grid``, ``objective`` (see :mod:`gsil_bench.report.objective`), ``seeds`` (every
configuration's seeds: a row with fewer is partial), ``failures`` and ``manifest``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from gsil_bench.errors import UserError
from gsil_bench.io import read_json
from gsil_bench.record import RunRecord

NOT_STUDIES = ("paper",)


class RecordFile(NamedTuple):
    """A run record and the file it was read from (the report names files in its notes)."""

    path: Path
    record: RunRecord


@dataclass
class Study:
    """A study folder read into memory; ``record_files`` holds only runs with status ``ok``,
    sorted by file name (so every choice made in their order is stable)."""

    name: str
    path: Path
    info: dict[str, Any]
    record_files: list[RecordFile]
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def records(self) -> list[RunRecord]:
        return [stored.record for stored in self.record_files]

    @property
    def knobs(self) -> list[str]:
        return [str(k) for k in self.info.get("knobs") or []]

    @property
    def baseline(self) -> str | None:
        value = self.info.get("baseline")
        return None if value is None else str(value)


def find_study(study: str, results_dir: Path) -> Path:
    """A study name under ``results_dir`` or a path to a study folder; UserError if absent."""
    as_path = Path(study)
    if _is_study_dir(as_path) and (as_path.is_absolute() or len(as_path.parts) > 1):
        return as_path
    candidate = results_dir / study
    if _is_study_dir(candidate):
        return candidate
    if _is_study_dir(as_path):
        return as_path
    existing = list_studies(results_dir)
    known = ", ".join(existing) if existing else "none yet (run `gsil-bench sweep` first)"
    raise UserError(f"no study folder at {candidate}; studies under {results_dir}: {known}")


def list_studies(results_dir: Path) -> list[str]:
    """Names of the study folders under ``results_dir``, sorted."""
    if not results_dir.is_dir():
        return []
    return sorted(
        p.name for p in results_dir.iterdir() if p.name not in NOT_STUDIES and _is_study_dir(p)
    )


def load_study(study_dir: Path | str) -> Study:
    """Read ``study.json`` (optional) and every ``records/*.json`` of a study folder."""
    study_dir = Path(study_dir)
    if not _is_study_dir(study_dir):
        raise UserError(f"{study_dir}: not a study folder (expected records/ or study.json)")
    info_path = study_dir / "study.json"
    info = read_json(info_path) if info_path.is_file() else {}
    if not isinstance(info, dict):
        raise UserError(f"{info_path}: expected a JSON object")
    record_files: list[RecordFile] = []
    failures = [dict(f) for f in info.get("failures") or [] if isinstance(f, dict)]
    for path in sorted((study_dir / "records").glob("*.json")):
        data = read_json(path)
        if isinstance(data, dict) and str(data.get("status", "ok")) != "ok":
            failures.append(_failure_of(path, data))
        else:
            record_files.append(RecordFile(path, RunRecord.parse(data, str(path))))
    if not record_files and not failures:
        raise UserError(f"{study_dir / 'records'}: no run records yet; has any trial finished?")
    name = str(info.get("study") or study_dir.name)
    return Study(name=name, path=study_dir, info=info, record_files=record_files, failures=failures)


def stage_seconds(records: list[RunRecord]) -> dict[str, float]:
    """Seconds per pipeline stage summed over runs, keys sorted, rounded to milliseconds."""
    totals: dict[str, float] = {}
    for record in records:
        for stage, seconds in record.timings.items():
            totals[stage] = totals.get(stage, 0.0) + float(seconds)
    return {stage: round(totals[stage], 3) for stage in sorted(totals)}


def _failure_of(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """A record of a run that did not finish: only its method, seed and reason are needed (a
    run can fail before it knows anything else), so it is not held to the full schema."""
    for key in ("method", "seed"):
        if key not in data:
            raise UserError(f"{path}: missing key '{key}' in run record")
    reason = str(data.get("reason") or data.get("error") or "")
    return {"method": str(data["method"]), "seed": int(data["seed"]), "reason": reason} | {
        "status": str(data["status"]),
        "record": path.name,
    }


def _is_study_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "records").is_dir() or (path / "study.json").is_file())
