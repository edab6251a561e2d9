"""The comparison table as Markdown, CSV and LaTeX text. Pure functions of the table: every
number goes through one explicit format, so the same records give the same bytes."""

from __future__ import annotations

import csv
import io
from typing import Any

from gsil_bench.report.paper import PublishedNumber
from gsil_bench.report.study import Study, stage_seconds
from gsil_bench.report.table import Cell, Row, Table

SIGNIFICANCE = 0.05
DAGGER = "†"
STAR = "★"
PUBLISHED_TITLE = "Published numbers (not comparable to the mini suite)"
TEST_NOTE = (
    "two-sided paired sign-flip (permutation) test over benchmark items matched by id, each "
    "item's score first averaged over seeds; exact (Monte Carlo with a fixed seed only for "
    "scores off a lattice); the interval of the difference is a t interval over items"
)


def render_markdown(study: Study, table: Table, published: list[PublishedNumber]) -> str:
    lines = [f"# gsil-bench report: {study.name}", ""]
    lines += [_summary_line(study, table), ""]
    lines += _markdown_main(table) + [""] + _markdown_footnotes(table)
    if table.baseline is not None:
        lines += ["", f"## Paired comparison with the baseline ({table.baseline})", ""]
        lines += _markdown_comparisons(table)
    if published:
        lines += ["", f"## {PUBLISHED_TITLE}", ""] + _markdown_published(table, published)
    stages = stage_seconds(study.records)
    if stages:
        lines += ["", "## Time by stage (seconds, summed over runs)", ""]
        lines += [" · ".join(f"{stage} {seconds:.1f}" for stage, seconds in stages.items())]
    lines += ["", "## Failures", ""] + (
        [f"- {_failure_text(f)}" for f in study.failures] or ["None."]
    )
    if table.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


def render_csv(table: Table) -> str:
    """One row per method; per column the mean, interval, n and (with a baseline) the test."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    knobs = [knob for knob, _ in table.rows[0].knobs] if table.rows else []
    header = ["method", "loss", *knobs, "seeds", "baseline", "best_of_loss"]
    stats = ["mean", "ci95_half_width", "n"]
    if table.baseline is not None:
        stats += ["diff_vs_baseline", "diff_ci95_low", "diff_ci95_high", "p_value", "items"]
    for column in table.columns:
        header += [f"{column.benchmark}/{column.metric}:{stat}" for stat in stats]
    writer.writerow(header)
    for row in table.rows:
        values: list[Any] = [row.method, row.loss, *[_csv_value(v) for _, v in row.knobs]]
        values += [" ".join(map(str, row.seeds)), int(row.is_baseline), int(row.is_best)]
        for column in table.columns:
            values += _csv_cell(row.cells.get(column), len(stats))
        writer.writerow(values)
    return buffer.getvalue()


def render_latex(study: Study, table: Table, published: list[PublishedNumber]) -> str:
    """A booktabs table (``\\usepackage{booktabs}``), plus the published numbers if any."""
    spec = "ll r" + " r" * len(table.columns)
    header = ["Method", "Loss", "Seeds", *[tex_escape(c.header) for c in table.columns]]
    lines = [
        f"% gsil-bench report of study {tex_escape(study.name)}; generated, do not edit.",
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(header) + " \\\\",
        "\\midrule",
    ]
    for row in table.rows:
        cells = [_latex_cell(row, row.cells.get(c)) for c in table.columns]
        lines.append(" & ".join([_latex_label(row), tex_escape(row.loss), str(len(row.seeds))]))
        lines[-1] += "".join(f" & {cell}" for cell in cells) + " \\\\"
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{_latex_caption(table)}}}"]
    lines += [f"\\label{{tab:{_latex_label_key(study.name)}}}", "\\end{table}"]
    if published:
        lines += [""] + _latex_published(published)
    return "\n".join(lines) + "\n"


def tex_escape(text: str) -> str:
    replacements = {
        "\\": "\\textbackslash{}",
        "&": "\\&",
        "%": "\\%",
        "$": "\\$",
        "#": "\\#",
        "_": "\\_",
        "{": "\\{",
        "}": "\\}",
        "~": "\\textasciitilde{}",
        "^": "\\textasciicircum{}",
        "·": "$\\cdot$",
    }
    return "".join(replacements.get(ch, ch) for ch in text)


def format_p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def is_significant(cell: Cell | None) -> bool:
    return bool(cell and cell.comparison and cell.comparison.p_value < SIGNIFICANCE)


def _summary_line(study: Study, table: Table) -> str:
    text = f"{len(study.records)} finished runs in {len(table.rows)} rows"
    if study.knobs:
        text += f", data-quality knobs: {', '.join(f'`{k}`' for k in study.knobs)}"
    baseline = f"`{table.baseline}`" if table.baseline is not None else "none"
    return text + f". Baseline for paired tests: {baseline}."


def _markdown_main(table: Table) -> list[str]:
    header = ["method", "loss", "seeds", *[c.header for c in table.columns]]
    lines = [_md_row(header), "|" + "---|" * 2 + "---:|" * (1 + len(table.columns))]
    for row in table.rows:
        label = row.label + (" (baseline)" if row.is_baseline else "")
        label += f" {STAR}" if row.is_best else ""
        cells = [_md_cell(row, row.cells.get(c)) for c in table.columns]
        lines.append(_md_row([label, row.loss, str(len(row.seeds)), *cells]))
    return lines


def _md_cell(row: Row, cell: Cell | None) -> str:
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


def _markdown_footnotes(table: Table) -> list[str]:
    lines = [
        "± is the half-width of the 95% Student-t interval of the mean over seeds; "
        '"n=1, no CI": a single seed gives no interval; — : not evaluated.'
    ]
    if table.baseline is not None:
        lines.append(
            f"{DAGGER} p < {SIGNIFICANCE} against the baseline `{table.baseline}` at the same "
            f"data setting: {TEST_NOTE}."
        )
    if any(row.is_best for row in table.rows):
        lines.append(
            f"{STAR} best configuration of its loss (at its data setting) by the sweep's "
            f"objective, {table.ranking.description()} ({table.ranking.direction})."
        )
    return [f"- {line}" for line in lines]


def _markdown_comparisons(table: Table) -> list[str]:
    lines = [_md_row(["method", *[c.header for c in table.columns]])]
    lines.append("|---|" + "---:|" * len(table.columns))
    for row in table.rows:
        if row.is_baseline or not any(c.comparison for c in row.cells.values()):
            continue
        cells = [_comparison_text(row.cells.get(column)) for column in table.columns]
        lines.append(_md_row([row.label, *cells]))
    lines.append("")
    lines.append("Difference = method − baseline, mean over items [95% t interval], p-value.")
    return lines


def _comparison_text(cell: Cell | None) -> str:
    comparison = cell.comparison if cell is not None else None
    if comparison is None:
        return "—"
    interval = ""
    if comparison.ci_low is not None:
        interval = f" [{comparison.ci_low:+.3f}, {comparison.ci_high:+.3f}]"
    return (
        f"{comparison.difference:+.3f}{interval}, p={format_p(comparison.p_value)} "
        f"({comparison.n_items} items)"
    )


def _markdown_published(table: Table, published: list[PublishedNumber]) -> list[str]:
    ours = [_ours(table, number) for number in published]
    header = ["loss", "paper's method", "benchmark", "metric", "published"]
    header += ["ours"] if any(v is not None for v in ours) else []
    header += ["source", "checked"]
    lines = [
        "The papers' 7B models on the real benchmarks: context for the rows above, "
        "not a comparison with them.",
        "",
        _md_row(header),
        "|" + "---|" * 4 + "---:|" + ("---:|" if "ours" in header else "") + "---|---|",
    ]
    # One footnote per distinct note rather than the same sentence on every row.
    notes: dict[str, str] = {}
    for number, our_value in zip(published, ours, strict=True):
        cells = [number.loss, number.method, number.benchmark, number.metric]
        cells.append(format_published(number.value))
        if "ours" in header:
            cells.append(f"{our_value:.2f}" if our_value is not None else "—")
        checked = "yes" if number.verified else "no"
        if number.note:
            mark = notes.setdefault(number.note, f"({chr(ord('a') + len(notes))})")
            checked += f" {mark}"
        lines.append(_md_row([*cells, number.source, checked]))
    lines += [""] + [f"- {mark} {note}." for note, mark in notes.items()] if notes else []
    return lines


def format_published(value: float) -> str:
    """Two decimals as the papers print them; whole numbers (a 60% win rate) stay whole."""
    return f"{value:g}" if float(value).is_integer() else f"{value:.2f}"


def _ours(table: Table, number: PublishedNumber) -> float | None:
    """Our best configuration of exactly that loss on a benchmark of exactly that name."""
    column = next((c for c in table.columns if c.benchmark == number.benchmark), None)
    rows = [r for r in table.rows if r.loss == number.loss and column in r.cells]
    if column is None or not rows:
        return None
    row = next((r for r in rows if r.is_best), rows[0])
    scale = 100.0 if number.unit == "percent" else 1.0
    return row.cells[column].summary.mean * scale


def _failure_text(failure: dict[str, Any]) -> str:
    parts = [f"trial {failure['trial']}"] if failure.get("trial") is not None else []
    parts.append(str(failure.get("method", "?")))
    parts += [f"seed {failure['seed']}"] if failure.get("seed") is not None else []
    reason = str(failure.get("reason") or "no reason recorded").replace("\n", " ")
    return " · ".join(parts) + f": {reason}"


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _csv_value(value: Any) -> Any:
    return f"{value:.10g}" if isinstance(value, float) else value


def _csv_cell(cell: Cell | None, width: int) -> list[Any]:
    if cell is None:
        return [""] * width
    summary = cell.summary
    values: list[Any] = [summary.mean, summary.half_width, summary.n]
    if width > 3:
        comparison = cell.comparison
        if comparison is None:
            values += [None] * 5
        else:
            values += [comparison.difference, comparison.ci_low, comparison.ci_high]
            values += [comparison.p_value, comparison.n_items]
    return ["" if v is None else _csv_value(v) for v in values]


def _latex_label(row: Row) -> str:
    text = tex_escape(row.label)
    text += " (baseline)" if row.is_baseline else ""
    return text + ("$^{\\star}$" if row.is_best else "")


def _latex_cell(row: Row, cell: Cell | None) -> str:
    if cell is None:
        return "--"
    summary = cell.summary
    if summary.half_width is None:
        text = f"${summary.mean:.3f}$ (n=1)"
    else:
        text = f"${summary.mean:.3f} \\pm {summary.half_width:.3f}$"
        text += f" (n={summary.n})" if summary.n != len(row.seeds) else ""
    return text + ("$^{\\dagger}$" if is_significant(cell) else "")


def _latex_caption(table: Table) -> str:
    text = "Mean $\\pm$ 95\\% Student-t half-width over seeds."
    if table.baseline is not None:
        text += (
            f" $^{{\\dagger}}$ $p<{SIGNIFICANCE}$ against {tex_escape(table.baseline)}: "
            f"{tex_escape(TEST_NOTE)}."
        )
    if any(row.is_best for row in table.rows):
        objective = tex_escape(table.ranking.description())
        text += f" $^{{\\star}}$ best configuration of its loss by {objective}."
    return text


def _latex_published(published: list[PublishedNumber]) -> list[str]:
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        "\\begin{tabular}{lllrl}",
        "\\toprule",
        "Loss & Paper's method & Benchmark (metric) & Published & Source \\\\",
        "\\midrule",
    ]
    for n in published:
        mark = "" if n.verified else "$^{*}$"
        cells = [n.loss, n.method, f"{n.benchmark} ({n.metric})", format_published(n.value)]
        cells.append(n.source)
        lines.append(" & ".join(tex_escape(c) for c in cells) + mark + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    caption = f"{PUBLISHED_TITLE}. $^{{*}}$ not yet checked against the paper's own tables."
    lines += [f"\\caption{{{caption}}}", "\\end{table}"]
    return lines


def _latex_label_key(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-:" else "-" for ch in name)
