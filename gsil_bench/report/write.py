"""The report of a study folder: ``table.md``, ``table.csv``, ``table.tex``, plots under
``plots/``, ``index.html`` (all of it on one self-contained page) and ``manifest.json``,
written into the folder.

Same records give byte-identical tables: every collection is sorted and every number formatted
explicitly, nothing depends on file-system order or the clock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gsil_bench.io import atomic_write_text
from gsil_bench.report.html import render_html
from gsil_bench.report.latex import render_latex
from gsil_bench.report.markdown import render_markdown
from gsil_bench.report.paper import default_paper_dir, load_published, select_published
from gsil_bench.report.plots import write_knob_plots, write_reward_plot
from gsil_bench.report.render import render_csv
from gsil_bench.report.study import Study, load_study, stage_seconds
from gsil_bench.report.table import build_table


def write_report(
    study_dir: Path | str, *, baseline: str | None = None, paper_dir: Path | None = None
) -> dict[str, Path]:
    """Write the tables, plots, page and manifest of a study; returns {relative name: path}.

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
    # The page shows the manifest, and the manifest lists the page: both know every name.
    manifest = _manifest(study, table.baseline, [*written, "index.html"])
    page = render_html(study, table, published, manifest, plots)
    written["index.html"] = _write_text(study.path / "index.html", page)
    text = json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"
    written["manifest.json"] = _write_text(study.path / "manifest.json", text)
    return written


def _manifest(study: Study, baseline: str | None, names: list[str]) -> dict[str, Any]:
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
            "files": sorted([*names, "manifest.json"]),
        }
    )
    return manifest


def _write_text(path: Path, text: str) -> Path:
    # Atomic: a reader (or a crash) never sees half a table.
    atomic_write_text(path, text)
    return path
