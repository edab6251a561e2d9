"""The report as LaTeX (booktabs): the main table with the run-level † and p-values, the
instrument per benchmark, and the published numbers if any."""

from __future__ import annotations

import math

from gsil_bench.report.paper import PublishedNumber
from gsil_bench.report.render import (
    INSTRUMENT_HEADERS,
    INSTRUMENT_NOTE,
    PUBLISHED_TITLE,
    RUN_TEST_NOTE,
    SIGNIFICANCE,
    does_not_separate,
    format_p,
    format_published,
    instrument_cells,
    is_significant,
    row_marks,
)
from gsil_bench.report.rows import Cell, Row
from gsil_bench.report.study import Study
from gsil_bench.report.table import Table


def render_latex(study: Study, table: Table, published: list[PublishedNumber]) -> str:
    """A booktabs table (``\\usepackage{booktabs}``), the instrument, the published numbers."""
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
        loss = tex_escape(row.loss) if row.loss else "--"
        lines.append(" & ".join([_latex_label(row), loss, str(len(row.seeds))]))
        lines[-1] += "".join(f" & {cell}" for cell in cells) + " \\\\"
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{_latex_caption(table)}}}"]
    lines += [f"\\label{{tab:{_latex_label_key(study.name)}}}", "\\end{table}"]
    if table.columns:
        lines += [""] + _latex_instrument(study, table)
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
        "—": "--",
        "∞": "$\\infty$",
    }
    return "".join(replacements.get(ch, ch) for ch in text)


def _latex_label(row: Row) -> str:
    text = tex_escape(row.label + row_marks(row))
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
    text += "$^{\\dagger}$" if is_significant(cell) else ""
    p_value = cell.comparison.p_value if cell.comparison is not None else math.nan
    if not math.isnan(p_value):
        text += f" {{\\scriptsize $p={format_p(p_value)}$}}"
    return text


def _latex_caption(table: Table) -> str:
    text = "Mean $\\pm$ 95\\% Student-t half-width over seeds (the run is the unit)."
    if table.baseline is not None:
        text += (
            f" $^{{\\dagger}}$ $p<{SIGNIFICANCE}$ against {tex_escape(table.baseline)}, "
            f"{tex_escape(RUN_TEST_NOTE)}; $p$: its p-value."
        )
    if any(row.is_best for row in table.rows):
        objective = tex_escape(table.ranking.description())
        text += (
            f" $^{{\\star}}$ best configuration of its loss by {objective}, among the rows "
            "that ran every seed."
        )
    return text


def _latex_instrument(study: Study, table: Table) -> list[str]:
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        "\\begin{tabular}{l" + "r" * len(INSTRUMENT_HEADERS) + "l}",
        "\\toprule",
        " & ".join(["Benchmark metric", *INSTRUMENT_HEADERS, "test"]) + " \\\\",
        "\\midrule",
    ]
    for column in table.columns:
        instrument = table.instruments[column]
        cells = [column.header, *instrument_cells(instrument, empty="--"), instrument.test]
        lines.append(" & ".join(tex_escape(cell) for cell in cells) + " \\\\")
    caption = f"The instrument of study {study.name}: {INSTRUMENT_NOTE}."
    flat = does_not_separate(table)
    if flat:
        caption += f" Does not separate: {', '.join(flat)}."
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{tex_escape(caption)}}}"]
    lines += [f"\\label{{tab:{_latex_label_key(study.name)}-instrument}}", "\\end{table}"]
    return lines


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
