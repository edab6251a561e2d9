"""Reports from a study folder: ``results/<study>/records/*.json`` plus ``study.json``.

:func:`write_report` writes ``table.md``, ``table.csv``, ``table.tex``, plots under ``plots/``
and ``manifest.json`` into the study folder. Same records give byte-identical tables: every
collection is sorted and every number formatted explicitly, nothing depends on file-system
order or the clock.

``study.json`` (written by the sweep, optional here) may hold ``study``, ``sweep_file``,
``baseline`` (a method label), ``knobs`` (data-quality parameter names), ``objective``
(``{"metrics": ["mini/math/accuracy"], "directions": ["maximize"]}``; a single ``metric`` /
``direction`` is read too, and a bare benchmark name means its primary metric), ``failures``
and ``manifest``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gsil_bench.errors import UserError
from gsil_bench.report_paper import default_paper_dir, load_published, select_published
from gsil_bench.report_plots import write_knob_plots, write_reward_plot
from gsil_bench.report_render import render_csv, render_latex, render_markdown
from gsil_bench.report_table import build_table

RECORD_KEYS = ("method", "loss", "seed")  # no benchmarks: a run without eval suites
NOT_STUDIES = ("paper",)


@dataclass(frozen=True)
class RunRecord:
    """One finished run (one trial x one seed), as the sweep wrote it."""

    path: Path
    run_id: str
    method: str
    loss: str
    seed: int
    hparams: dict[str, Any]
    params: dict[str, Any]
    benchmarks: dict[str, dict[str, Any]]
    trajectory: list[dict[str, Any]]
    timings: dict[str, float]
    status: str
    reason: str = ""


@dataclass
class Study:
    """A study folder read into memory; ``records`` holds only runs with status ``ok``."""

    name: str
    path: Path
    info: dict[str, Any]
    records: list[RunRecord]
    failures: list[dict[str, Any]] = field(default_factory=list)

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
    info = _read_json(study_dir / "study.json") if (study_dir / "study.json").is_file() else {}
    if not isinstance(info, dict):
        raise UserError(f"{study_dir / 'study.json'}: expected a JSON object")
    records: list[RunRecord] = []
    failures = [dict(f) for f in info.get("failures") or [] if isinstance(f, dict)]
    for path in sorted((study_dir / "records").glob("*.json")):
        record = _parse_record(path, _read_json(path))
        if record.status == "ok":
            records.append(record)
        else:
            failures.append(
                {"method": record.method, "seed": record.seed, "reason": record.reason}
                | {"status": record.status, "record": path.name}
            )
    if not records and not failures:
        raise UserError(f"{study_dir / 'records'}: no run records yet; has any trial finished?")
    name = str(info.get("study") or study_dir.name)
    return Study(name=name, path=study_dir, info=info, records=records, failures=failures)


def write_report(
    study_dir: Path | str, *, baseline: str | None = None, paper_dir: Path | None = None
) -> dict[str, Path]:
    """Write the tables, plots and manifest of a study; returns {relative name: path}.

    ``baseline`` (a method label) overrides the study's own; ``paper_dir`` defaults to
    ``results/paper`` beside the study (see :func:`default_paper_dir`).
    """
    study = load_study(study_dir)
    table = build_table(study, baseline=baseline)
    published_dir = paper_dir if paper_dir is not None else default_paper_dir(study.path)
    published = select_published(load_published(published_dir), {r.loss for r in table.rows})
    written: dict[str, Path] = {}
    texts = {
        "table.md": render_markdown(study, table, published),
        "table.csv": render_csv(table),
        "table.tex": render_latex(study, table, published),
    }
    for name, text in texts.items():
        written[name] = _write_text(study.path / name, text)
    plots_dir = study.path / "plots"
    reward_plot = write_reward_plot(table, plots_dir)
    plots = ([reward_plot] if reward_plot else []) + write_knob_plots(study, table, plots_dir)
    for plot in plots:
        written[plot.relative_to(study.path).as_posix()] = plot
    written["manifest.json"] = _write_manifest(study, table.baseline, written)
    return written


def stage_seconds(records: list[RunRecord]) -> dict[str, float]:
    """Seconds per pipeline stage summed over runs, keys sorted, rounded to milliseconds."""
    totals: dict[str, float] = {}
    for record in records:
        for stage, seconds in record.timings.items():
            totals[stage] = totals.get(stage, 0.0) + float(seconds)
    return {stage: round(totals[stage], 3) for stage in sorted(totals)}


def _write_manifest(study: Study, baseline: str | None, written: dict[str, Path]) -> Path:
    manifest = dict(study.info.get("manifest") or {})
    manifest.update(
        {
            "study": study.name,
            "sweep_file": study.info.get("sweep_file"),
            "baseline": baseline,
            "knobs": study.knobs,
            "finished_runs": len(study.records),
            "failed_runs": len(study.failures),
            "run_seconds_by_stage": stage_seconds(study.records),
            "files": sorted([*written, "manifest.json"]),
        }
    )
    text = json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"
    return _write_text(study.path / "manifest.json", text)


def _write_text(path: Path, text: str) -> Path:
    # Temp file + rename: a reader (or a crash) never sees half a table.
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8", newline="\n")
    temporary.replace(path)
    return path


def _is_study_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "records").is_dir() or (path / "study.json").is_file())


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from exc


def _parse_record(path: Path, data: Any) -> RunRecord:
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object (a run record)")
    status = str(data.get("status", "ok"))
    required = RECORD_KEYS if status == "ok" else ("method", "seed")
    for key in required:
        if key not in data:
            raise UserError(f"{path}: missing key '{key}' in run record")
    benchmarks = data.get("benchmarks") or {}
    if not isinstance(benchmarks, dict):
        raise UserError(f"{path}: 'benchmarks' must map benchmark names to results")
    for name, result in benchmarks.items():
        if not isinstance(result, dict) or not isinstance(result.get("metrics"), dict):
            raise UserError(f"{path}: benchmarks['{name}'] has no 'metrics' mapping")
    return RunRecord(
        path=path,
        run_id=str(data.get("run_id", path.stem)),
        method=str(data["method"]),
        loss=str(data.get("loss", "")),
        seed=int(data["seed"]),
        hparams=dict(data.get("hparams") or {}),
        params=dict(data.get("params") or {}),
        benchmarks=benchmarks,
        trajectory=list(data.get("trajectory") or []),
        timings=dict(data.get("timings") or {}),
        status=status,
        reason=str(data.get("reason") or data.get("error") or ""),
    )
