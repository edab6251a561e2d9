"""The report as Markdown: the main table, its footnotes, the comparison with the baseline, the
instrument (signal, noise, SNR, MDE per benchmark), the controls' diagnostics, published
numbers, time by stage, failures and notes."""

from __future__ import annotations

from typing import Any

from gsil_bench.report.iterations import (
    ITERATIONS_NOTE,
    ITERATIONS_TITLE,
    IterationTable,
    interval_text,
    iteration_tables,
)
from gsil_bench.report.paper import PublishedNumber
from gsil_bench.report.render import (
    DAGGER,
    INSTRUMENT_HEADERS,
    INSTRUMENT_NOTE,
    ITEM_TEST_NOTE,
    PUBLISHED_TITLE,
    RUN_TEST_NOTE,
    SIGNIFICANCE,
    STAR,
    does_not_separate,
    format_number,
    format_p,
    format_published,
    instrument_cells,
    is_significant,
    row_marks,
)
from gsil_bench.report.rows import Cell, Row
from gsil_bench.report.study import Study, stage_seconds
from gsil_bench.report.table import Table

INSTRUMENT_TITLE = "The instrument: signal, noise, power"
CONTROLS_TITLE = "Controls: how far each method moved from the base model"
COMPARISON_NOTE = (
    "Difference = method − baseline: the mean over seeds [95% t interval], the run-level "
    "p-value and its test (the † of the main table); then the item-level p-value over "
    "the items both sides scored (secondary). MDE: the smallest true difference the "
    "run-level test detects with 80% power in this study (see the instrument below)."
)
CONTROLS_NOTE = (
    "Mean over seeds. moved_answers/<benchmark>: share of test answers that differ from "
    "the base model's; heldout_logp_delta: change in mean per-token log-likelihood of "
    "held-out demonstrations; identical_pairs: share of training pairs whose negative "
    "equals the demonstration (no gradient for SPIN and GSIL at shift 0); — : not recorded."
)
PUBLISHED_INTRO = (
    "The papers' 7B models on the real benchmarks: context for the rows above, "
    "not a comparison with them."
)


def render_markdown(study: Study, table: Table, published: list[PublishedNumber]) -> str:
    lines = [f"# gsil-bench report: {study.name}", ""]
    lines += [summary_line(study, table), ""]
    lines += _markdown_main(table) + [""] + [f"- {line}" for line in footnotes(table)]
    per_iteration = iteration_tables(table)
    if per_iteration:
        lines += ["", f"## {ITERATIONS_TITLE}", ""] + _markdown_iterations(per_iteration)
    if table.baseline is not None:
        lines += ["", f"## Paired comparison with the baseline ({table.baseline})", ""]
        lines += _markdown_comparisons(table)
    if table.columns:
        lines += ["", f"## {INSTRUMENT_TITLE}", ""] + _markdown_instrument(table)
    if table.diagnostic_keys:
        lines += ["", f"## {CONTROLS_TITLE}", ""] + _markdown_diagnostics(table)
    if published:
        lines += ["", f"## {PUBLISHED_TITLE}", ""] + _markdown_published(table, published)
    stages = stage_seconds(study.records)
    if stages:
        lines += ["", "## Time by stage (seconds, summed over runs)", ""]
        lines += [" · ".join(f"{stage} {seconds:.1f}" for stage, seconds in stages.items())]
    lines += ["", "## Failures", ""] + (
        [f"- {failure_text(f)}" for f in study.failures] or ["None."]
    )
    if table.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


def summary_line(study: Study, table: Table) -> str:
    text = f"{len(study.records)} finished runs in {len(table.rows)} rows"
    if table.seeds:
        text += f", seeds {', '.join(map(str, table.seeds))}"
    if study.knobs:
        text += f", data-quality knobs: {', '.join(f'`{k}`' for k in study.knobs)}"
    baseline = f"`{table.baseline}`" if table.baseline is not None else "none"
    return text + f". Baseline for paired tests: {baseline}."


def _markdown_main(table: Table) -> list[str]:
    header = ["method", "loss", "seeds", *[c.header for c in table.columns]]
    lines = [_md_row(header), "|" + "---|" * 2 + "---:|" * (1 + len(table.columns))]
    for row in table.rows:
        label = row.label + row_marks(row) + (f" {STAR}" if row.is_best else "")
        cells = [cell_text(row, row.cells.get(c)) for c in table.columns]
        lines.append(_md_row([label, row.loss or "—", str(len(row.seeds)), *cells]))
    return lines


def cell_text(row: Row, cell: Cell | None) -> str:
    if cell is None:
        return "—"
    summary = cell.summary
    if summary.half_width is None:
        text = f"{summary.mean:.3f} (n=1, no CI)"
    else:
        text = f"{summary.mean:.3f} ± {summary.half_width:.3f}"
        if summary.n != len(row.seeds):
            text += f" (n={summary.n})"
    return text + (f" {DAGGER}" if is_significant(cell) else "")


def footnotes(table: Table) -> list[str]:
    """The main table's footnotes, one sentence each (Markdown inline code in backticks)."""
    lines = [
        "Each cell: the mean over seeds of each run's score; ± is the half-width of the 95% "
        "Student-t interval over the seeds (the run is the unit, so the interval covers "
        'run-to-run variance); "n=1, no CI": a single seed gives no interval; — : not evaluated.'
    ]
    if any(row.is_control for row in table.rows):
        lines.append(
            "base (control): the untrained base model, evaluated once per seed; "
            "never ranked or tested."
        )
    if table.baseline is not None:
        lines.append(
            f"{DAGGER} p < {SIGNIFICANCE} against the baseline `{table.baseline}` at the same "
            f"data setting, {RUN_TEST_NOTE}."
        )
    if any(not row.complete for row in table.rows):
        lines.append(
            f"partial: n=k: ran k of the study's {len(table.seeds)} seeds (pruned, or runs "
            "failed); shown, never ranked against rows that ran every seed."
        )
    if any(row.is_best for row in table.rows):
        lines.append(
            f"{STAR} best configuration of its loss (at its data setting) by the sweep's "
            f"objective, {table.ranking.description()} ({table.ranking.direction}), among the "
            "rows that ran every seed."
        )
    flat = does_not_separate(table)
    if flat:
        lines.append(f"Does not separate (SNR < 1, see the instrument below): {', '.join(flat)}.")
    return lines


def _markdown_comparisons(table: Table) -> list[str]:
    lines = [_md_row(["method", *[c.header for c in table.columns]])]
    lines.append("|---|" + "---:|" * len(table.columns))
    for row in table.rows:
        if row.is_baseline or not any(
            c.comparison or c.item_comparison for c in row.cells.values()
        ):
            continue
        cells = [comparison_text(row.cells.get(column)) for column in table.columns]
        lines.append(_md_row([row.label + row_marks(row), *cells]))
    mdes = [format_number(table.instruments[column].mde) for column in table.columns]
    lines.append(_md_row(["MDE (80% power)", *mdes]))
    lines.append("")
    lines.append(COMPARISON_NOTE)
    return lines + ["", f"- {sentence(RUN_TEST_NOTE)}", f"- {sentence(ITEM_TEST_NOTE)}"]


def comparison_text(cell: Cell | None) -> str:
    if cell is None or (cell.comparison is None and cell.item_comparison is None):
        return "—"
    runs, items = cell.comparison, cell.item_comparison
    if runs is None:
        text = "no run-level test (a side has one seed)"
    else:
        text = (
            f"{runs.difference:+.3f} [{runs.ci_low:+.3f}, {runs.ci_high:+.3f}], "
            f"p={format_p(runs.p_value)} ({runs.test}, {runs.seeds} seeds)"
        )
    if items is not None:
        text += f"; items: p={format_p(items.p_value)} ({items.n_items} items)"
    return text


def _markdown_iterations(tables: list[IterationTable]) -> list[str]:
    lines = []
    for per_iteration in tables:
        headers = per_iteration.headers
        lines += [f"### {per_iteration.column.header}", ""]
        lines += [_md_row(["method", "seeds", *headers]), "|---|" + "---:|" * (1 + len(headers))]
        for row in per_iteration.rows:
            cells = [
                interval_text(row.cells[t]) if t < len(row.cells) else "—"
                for t in range(len(headers))
            ]
            lines.append(_md_row([row.label, str(row.seeds), *cells]))
        lines.append("")
    return lines + [ITERATIONS_NOTE]


def _markdown_instrument(table: Table) -> list[str]:
    header = ["benchmark metric", *INSTRUMENT_HEADERS, "test", ""]
    lines = [_md_row(header), "|---|" + "---:|" * len(INSTRUMENT_HEADERS) + "---|---|"]
    for column in table.columns:
        instrument = table.instruments[column]
        verdict = "does not separate" if instrument.separates is False else ""
        cells = [column.header, *instrument_cells(instrument)]
        lines.append(_md_row([*cells, instrument.test, verdict]))
    return lines + ["", sentence(INSTRUMENT_NOTE)]


def _markdown_diagnostics(table: Table) -> list[str]:
    keys = table.diagnostic_keys
    lines = [_md_row(["method", "seeds", *keys]), "|---|" + "---:|" * (1 + len(keys))]
    for row in table.rows:
        cells = [format_number(row.diagnostics.get(key)) for key in keys]
        lines.append(_md_row([row.label + row_marks(row), str(len(row.seeds)), *cells]))
    lines += ["", CONTROLS_NOTE]
    return lines


def _markdown_published(table: Table, published: list[PublishedNumber]) -> list[str]:
    header, rows, notes = published_rows(table, published)
    align = "|" + "---|" * 4 + "---:|" + ("---:|" if "ours" in header else "") + "---|---|"
    lines = [PUBLISHED_INTRO, "", _md_row(header), align] + [_md_row(row) for row in rows]
    lines += [""] + [f"- {mark} {note}." for note, mark in notes.items()] if notes else []
    return lines


def published_rows(
    table: Table, published: list[PublishedNumber]
) -> tuple[list[str], list[list[str]], dict[str, str]]:
    """Header, rows and {note: mark} of the published numbers (an "ours" column when our
    best configuration of a loss has a benchmark of the same name)."""
    ours = [our_value(table, number) for number in published]
    header = ["loss", "paper's method", "benchmark", "metric", "published"]
    header += ["ours"] if any(v is not None for v in ours) else []
    header += ["source", "checked"]
    rows = []
    # One footnote per distinct note rather than the same sentence on every row.
    notes: dict[str, str] = {}
    for number, value in zip(published, ours, strict=True):
        cells = [number.loss, number.method, number.benchmark, number.metric]
        cells.append(format_published(number.value))
        if "ours" in header:
            cells.append(f"{value:.2f}" if value is not None else "—")
        checked = "yes" if number.verified else "no"
        if number.note:
            mark = notes.setdefault(number.note, f"({chr(ord('a') + len(notes))})")
            checked += f" {mark}"
        rows.append([*cells, number.source, checked])
    return header, rows, notes


def our_value(table: Table, number: PublishedNumber) -> float | None:
    """Our best configuration of exactly that loss on a benchmark of exactly that name."""
    column = next((c for c in table.columns if c.benchmark == number.benchmark), None)
    rows = [
        r for r in table.rows if r.loss == number.loss and column in r.cells and not r.is_control
    ]
    if column is None or not rows:
        return None
    row = next((r for r in rows if r.is_best), rows[0])
    scale = 100.0 if number.unit == "percent" else 1.0
    return row.cells[column].summary.mean * scale


def failure_text(failure: dict[str, Any]) -> str:
    parts = [f"trial {failure['trial']}"] if failure.get("trial") is not None else []
    parts.append(str(failure.get("method", "?")))
    parts += [f"seed {failure['seed']}"] if failure.get("seed") is not None else []
    reason = str(failure.get("reason") or "no reason recorded").replace("\n", " ")
    return " · ".join(parts) + f": {reason}"


def sentence(text: str) -> str:
    return f"{text[0].upper()}{text[1:]}."


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
