"""PNG plots of a study: reward trajectories per loss, and metric-versus-knob curves.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas and never through
``pyplot``, so that a report neither needs a display nor changes the process-wide backend.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gsil_bench.record import RunRecord
from gsil_bench.report.rows import KnobSetting, Row, format_value, knob_name, value_key
from gsil_bench.report.study import Study
from gsil_bench.report.table import Table

REWARD_KEYS = ("reward/real", "reward/generated")
REWARD_LABELS = {"reward/real": "real (demonstrations)", "reward/generated": "generated"}
PANEL_SIZE = (4.2, 3.2)
DPI = 100


def write_reward_plot(table: Table, plots_dir: Path) -> Path | None:
    """One panel per loss: mean over seeds of the real and generated rewards per step.

    Both curves falling together is SPIN's known failure (the demonstration's likelihood drops
    along with the generated one's); a panel makes it visible at a glance. Each loss shows its
    best configuration (or its only one). Losses that log no rewards (sft) get no panel.
    """
    panels = []
    for row in _one_row_per_loss(table.rows):
        curves = {key: mean_trajectory(row.records, key) for key in REWARD_KEYS}
        if any(steps for steps, _ in curves.values()):
            panels.append((row, curves))
    if not panels:
        return None
    figure, axes = _grid(len(panels))
    for ax, (row, curves) in zip(axes, panels, strict=False):
        for key, (steps, values) in curves.items():
            if steps:
                ax.plot(steps, values, label=REWARD_LABELS[key])
        ax.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(f"{row.loss}\n{row.label} ({len(row.seeds)} seeds)", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("reward = beta · log-ratio", fontsize=8)
        ax.legend(fontsize=7)
    return _save(figure, plots_dir / "rewards.png")


def write_knob_plots(study: Study, table: Table, plots_dir: Path) -> list[Path]:
    """For each data-quality knob, one PNG: a panel per benchmark metric, a line per method,
    mean with 95% interval bars against the knob's values."""
    if not any(not row.is_control for row in table.rows) or not table.columns:
        return []
    return [
        _knob_plot(table, index, knob, plots_dir / f"knob-{knob}.png", study.info.get("grid"))
        for index, knob in enumerate(study.knobs)
    ]


def mean_trajectory(records: list[RunRecord], key: str) -> tuple[list[int], list[float]]:
    """Mean of ``key`` over the runs that logged it, step by step (steps sorted)."""
    by_step: dict[int, list[float]] = {}
    for record in records:
        for point in record.trajectory:
            value = point.get(key)
            if value is not None and "step" in point and math.isfinite(float(value)):
                by_step.setdefault(int(point["step"]), []).append(float(value))
    steps = sorted(by_step)
    return steps, [float(np.mean(by_step[s])) for s in steps]


def _knob_plot(table: Table, index: int, knob: str, path: Path, grid: Any) -> Path:
    methods = [r for r in table.rows if not r.is_control]
    control = next((r for r in table.rows if r.is_control), None)
    fixed = _modal_other_setting(methods, index, grid if isinstance(grid, dict) else None)
    rows = [r for r in methods if _others(r.knobs, index) == fixed]
    values = sorted({r.knobs[index][1] for r in rows}, key=value_key)
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    position = {v: (float(v) if numeric else float(i)) for i, v in enumerate(values)}
    figure, axes = _grid(len(table.columns))
    for ax, column in zip(axes, table.columns, strict=False):
        for series in sorted({r.series for r in rows}):
            points = [r for r in rows if r.series == series and column in r.cells]
            points.sort(key=lambda r: value_key(r.knobs[index][1]))
            if not points:
                continue
            xs = [position[r.knobs[index][1]] for r in points]
            summaries = [r.cells[column].summary for r in points]
            # No interval (one seed) is drawn as no bar, not as a zero-width one.
            errors = [s.half_width if s.half_width is not None else np.nan for s in summaries]
            means = [s.mean for s in summaries]
            ax.errorbar(xs, means, yerr=errors, marker="o", capsize=3, label=series)
        if control is not None and column in control.cells:
            # The untrained base model does not depend on the knob: a level to read moves by.
            base = control.cells[column].summary.mean
            ax.axhline(base, color="grey", linewidth=0.8, linestyle="--", label="base model")
        ax.set_title(column.header, fontsize=9)
        ax.set_xlabel(knob_name(knob))
        if not numeric:
            ax.set_xticks([position[v] for v in values], [format_value(v) for v in values])
        ax.legend(fontsize=7)
    title = knob
    if fixed:
        title += (
            "  (other knobs at "
            + ", ".join(f"{knob_name(k)}={format_value(v)}" for k, v in fixed)
            + ")"
        )
    figure.suptitle(title, fontsize=10)
    return _save(figure, path)


def _modal_other_setting(
    rows: list[Row], index: int, grid: dict[str, list[Any]] | None = None
) -> KnobSetting:
    """The most common setting of the other knobs, so each curve varies one knob only.

    In a one-knob-at-a-time design that is the reference setting. In a full grid every setting
    is equally common; then the one whose values come first in the sweep's grid lists wins
    (sweep files list the clean value first), else the smallest values. The figure title
    names the setting either way.
    """
    counts = Counter(_others(r.knobs, index) for r in rows)
    most = max(counts.values())
    candidates = [setting for setting, count in counts.items() if count == most]
    return min(candidates, key=lambda s: [_grid_position(grid, k, v) for k, v in s])


def _grid_position(grid: dict[str, list[Any]] | None, knob: str, value: Any) -> tuple[Any, ...]:
    listed = (grid or {}).get(knob) or []
    position = listed.index(value) if value in listed else len(listed)
    return (position, value_key(value))


def _others(setting: KnobSetting, index: int) -> KnobSetting:
    return setting[:index] + setting[index + 1 :]


def _one_row_per_loss(rows: list[Row]) -> list[Row]:
    chosen: dict[str, Row] = {}
    for row in rows:
        if row.is_control:
            continue
        if row.loss not in chosen or (row.is_best and not chosen[row.loss].is_best):
            chosen[row.loss] = row
    return [chosen[loss] for loss in sorted(chosen)]


def _grid(panels: int) -> tuple[Figure, list[Any]]:
    columns = min(panels, 4)
    rows = math.ceil(panels / columns)
    figure = Figure(figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel().tolist()
    for ax in axes[panels:]:
        ax.set_visible(False)
    return figure, axes[:panels]


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    # No "Software" stamp: the same records should give the same bytes across versions.
    figure.savefig(path, format="png", metadata={"Software": None})
    return path
