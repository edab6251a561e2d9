"""The report as one self-contained HTML page, ``index.html``: the tables of ``table.md`` (main
table with intervals and marks, paired comparison, instrument, controls, published numbers),
the plots inline as base64 PNG, the manifest, and links to the records and the other files.

Inline CSS, images as ``data:`` URIs, links relative to the study folder: the page needs no
network and still works when the folder is copied or zipped. Every piece of text goes through
:func:`html.escape`. The cells' text comes from the Markdown renderer's functions, so the page
and ``table.md`` say the same thing; nothing is recomputed here.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path
from typing import Any

from gsil_bench.report.iterations import (
    ITERATIONS_NOTE,
    ITERATIONS_TITLE,
    IterationTable,
    interval_text,
    iteration_tables,
)
from gsil_bench.report.markdown import (
    COMPARISON_NOTE,
    CONTROLS_NOTE,
    CONTROLS_TITLE,
    INSTRUMENT_TITLE,
    PUBLISHED_INTRO,
    cell_text,
    comparison_text,
    failure_text,
    footnotes,
    published_rows,
    sentence,
    summary_line,
)
from gsil_bench.report.paper import PublishedNumber
from gsil_bench.report.render import (
    INSTRUMENT_HEADERS,
    INSTRUMENT_NOTE,
    ITEM_TEST_NOTE,
    PUBLISHED_TITLE,
    RUN_TEST_NOTE,
    STAR,
    format_number,
    instrument_cells,
    is_significant,
    row_marks,
)
from gsil_bench.report.rows import Row
from gsil_bench.report.study import Study, stage_seconds
from gsil_bench.report.table import Table

OTHER_FILES = ("table.md", "table.csv", "table.tex", "manifest.json")
STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
  margin: 0 auto; padding: 1em 1em 3em; max-width: 1400px; background: #fbfbfd; }
h1 { font-size: 1.6em; margin: 0 0 0.3em; border-bottom: 3px solid #3b5ba5; }
h2 { font-size: 1.2em; margin: 1.8em 0 0.5em; color: #2b3f73; }
nav a { margin-right: 1em; color: #3b5ba5; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.4em 0; background: #fff; font-size: 0.82em; }
th, td { border: 1px solid #d5d9e3; padding: 0.25em 0.4em; vertical-align: top; }
td:first-child, td.loss { white-space: nowrap; }
th { background: #e8ecf5; text-align: left; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.long { font-size: 0.85em; min-width: 16em; }
tr:nth-child(even) td { background: #f6f7fb; }
tr.control td { color: #5b6270; font-style: italic; }
tr.baseline td { background: #eef4ff; }
tr.best td:first-child { font-weight: 600; }
td.sig { background: #fff1c9 !important; font-weight: 600; }
th.flat { color: #9a3b3b; }
ul.notes { font-size: 0.9em; color: #3c4352; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #d5d9e3; background: #fff; }
pre { background: #f1f3f8; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
code { background: #eef0f5; padding: 0 0.2em; }
"""


def render_html(
    study: Study,
    table: Table,
    published: list[PublishedNumber],
    manifest: dict[str, Any],
    plots: list[Path],
) -> str:
    """The whole page; ``plots`` are PNG files inside the study folder, embedded in order."""
    sections = [("main", "Results", _main_section(study, table))]
    per_iteration = iteration_tables(table)
    if per_iteration:
        sections.append(("iterations", ITERATIONS_TITLE, _iterations_section(per_iteration)))
    if table.baseline is not None:
        title = f"Paired comparison with the baseline ({table.baseline})"
        sections.append(("comparison", title, _comparison_section(table)))
    if table.columns:
        sections.append(("instrument", INSTRUMENT_TITLE, _instrument_section(table)))
    if table.diagnostic_keys:
        sections.append(("controls", CONTROLS_TITLE, _controls_section(table)))
    if plots:
        sections.append(("plots", "Plots", _plots_section(study.path, plots)))
    if published:
        sections.append(("published", PUBLISHED_TITLE, _published_section(table, published)))
    sections.append(("runs", "Time, failures and notes", _runs_section(study, table)))
    sections.append(("manifest", "Manifest", _manifest_section(manifest)))
    sections.append(("records", "Records and files", _records_section(study)))
    nav = " ".join(f'<a href="#{key}">{_e(title)}</a>' for key, title, _ in sections)
    body = [f"<h1>gsil-bench report: {_e(study.name)}</h1>", f"<nav>{nav}</nav>"]
    for key, title, content in sections:
        body += [f'<section id="{key}">', f"<h2>{_e(title)}</h2>", content, "</section>"]
    head = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>gsil-bench report: {_e(study.name)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
    ]
    return "\n".join([*head, *body, "</body>", "</html>"]) + "\n"


def _main_section(study: Study, table: Table) -> str:
    header = ["method", "loss", "seeds", *[c.header for c in table.columns]]
    flat = {c.header for c in table.columns if table.instruments[c].separates is False}
    rows = []
    for row in table.rows:
        label = row.label + row_marks(row) + (f" {STAR}" if row.is_best else "")
        cells = [_td(label), _td(row.loss or "—", "loss"), _td(str(len(row.seeds)), "num")]
        for column in table.columns:
            cell = row.cells.get(column)
            css = "num sig" if is_significant(cell) else "num"
            cells.append(_td(cell_text(row, cell), css))
        rows.append(_tr(cells, _row_classes(row)))
    head = "".join(_th(h, "flat" if h in flat else "") for h in header)
    legend = ["Shaded cells: those with a †."] if table.baseline is not None else []
    legend += ["Red headers: the benchmarks that do not separate the methods."] if flat else []
    notes = _notes([*footnotes(table), *legend])
    return f"<p>{_inline(summary_line(study, table))}</p>\n{_table(head, rows)}\n{notes}"


def _iterations_section(tables: list[IterationTable]) -> str:
    parts = []
    for per_iteration in tables:
        head = "".join(_th(h) for h in ["method", "seeds", *per_iteration.headers])
        rows = []
        for row in per_iteration.rows:
            cells = [_td(row.label), _td(str(row.seeds), "num")]
            for t in range(per_iteration.iterations + 1):
                cells.append(
                    _td(interval_text(row.cells[t] if t < len(row.cells) else None), "num")
                )
            rows.append(_tr(cells))
        parts += [f"<h3>{_e(per_iteration.column.header)}</h3>", _table(head, rows)]
    return "\n".join([*parts, _notes([ITERATIONS_NOTE])])


def _comparison_section(table: Table) -> str:
    header = "".join(_th(h) for h in ["method", *[c.header for c in table.columns]])
    rows = []
    for row in table.rows:
        if row.is_baseline or not any(
            c.comparison or c.item_comparison for c in row.cells.values()
        ):
            continue
        cells = [_td(row.label + row_marks(row))]
        for column in table.columns:
            cell = row.cells.get(column)
            css = "long sig" if is_significant(cell) else "long"
            cells.append(_td(comparison_text(cell), css))
        rows.append(_tr(cells, _row_classes(row)))
    mdes = [_td(format_number(table.instruments[c].mde), "num") for c in table.columns]
    rows.append(_tr([_td("MDE (80% power)"), *mdes]))
    notes = [COMPARISON_NOTE, sentence(RUN_TEST_NOTE), sentence(ITEM_TEST_NOTE)]
    return _table(header, rows) + "\n" + _notes(notes)


def _instrument_section(table: Table) -> str:
    names = ["benchmark metric", *INSTRUMENT_HEADERS, "test", ""]
    rows = []
    for column in table.columns:
        instrument = table.instruments[column]
        numbers = instrument_cells(instrument)
        verdict = "does not separate" if instrument.separates is False else ""
        cells = [_td(column.header), *[_td(n, "num") for n in numbers]]
        rows.append(_tr([*cells, _td(instrument.test), _td(verdict)]))
    header = "".join(_th(name) for name in names)
    return _table(header, rows) + "\n" + _notes([sentence(INSTRUMENT_NOTE)])


def _controls_section(table: Table) -> str:
    keys = table.diagnostic_keys
    header = "".join(_th(h) for h in ["method", "seeds", *keys])
    rows = []
    for row in table.rows:
        numbers = [str(len(row.seeds))]
        numbers += [format_number(row.diagnostics.get(key)) for key in keys]
        cells = [_td(row.label + row_marks(row)), *[_td(n, "num") for n in numbers]]
        rows.append(_tr(cells, _row_classes(row)))
    return _table(header, rows) + "\n" + _notes([CONTROLS_NOTE])


def _published_section(table: Table, published: list[PublishedNumber]) -> str:
    header, rows, notes = published_rows(table, published)
    numeric = {"published", "ours"}
    html_rows = []
    for row in rows:
        pairs = zip(header, row, strict=True)
        html_rows.append(_tr([_td(cell, "num" if name in numeric else "") for name, cell in pairs]))
    head = "".join(_th(h) for h in header)
    marks = _notes([f"{mark} {note}." for note, mark in notes.items()]) if notes else ""
    return f"<p>{_e(PUBLISHED_INTRO)}</p>\n{_table(head, html_rows)}\n{marks}"


def _plots_section(study_dir: Path, plots: list[Path]) -> str:
    figures = []
    for plot in plots:
        name = plot.relative_to(study_dir).as_posix()
        data = base64.b64encode(plot.read_bytes()).decode("ascii")
        caption = f'{_e(_plot_caption(plot.name))} (<a href="{_e(name)}">{_e(name)}</a>)'
        figures.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{_e(name)}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    return "\n".join(figures)


def _plot_caption(file_name: str) -> str:
    if file_name == "rewards.png":
        return (
            "Rewards (beta · log-ratio) of the demonstrations (real) and of the generated "
            "responses per training step, mean over seeds; one panel per loss, its best "
            "configuration"
        )
    if file_name.startswith("knob-"):
        knob = file_name.removeprefix("knob-").removesuffix(".png")
        return f"Each benchmark metric against {knob}: mean over seeds with 95% intervals"
    return file_name


def _runs_section(study: Study, table: Table) -> str:
    parts = []
    stages = stage_seconds(study.records)
    if stages:
        text = " · ".join(f"{stage} {seconds:.1f}" for stage, seconds in stages.items())
        parts.append(f"<p>Time by stage (seconds, summed over runs): {_e(text)}</p>")
    failures = [failure_text(f) for f in study.failures]
    parts.append("<p>Failures:</p>" + (_notes(failures) if failures else "<p>None.</p>"))
    if table.notes:
        parts.append("<p>Notes:</p>" + _notes(table.notes))
    return "\n".join(parts)


def _manifest_section(manifest: dict[str, Any]) -> str:
    rows = [_tr([_td(key), _td(_manifest_value(manifest[key]))]) for key in sorted(manifest)]
    full = json.dumps(manifest, indent=2, sort_keys=True, default=str)
    raw = f"<details><summary>manifest.json</summary><pre>{_e(full)}</pre></details>"
    return _table(_th("key") + _th("value"), rows) + "\n" + raw


def _manifest_value(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_manifest_value(v)}" for k, v in sorted(value.items()))
    if isinstance(value, list):
        return ", ".join(_manifest_value(v) for v in value) or "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return "—" if value is None else str(value)


def _records_section(study: Study) -> str:
    links = " · ".join(_link(name) for name in OTHER_FILES)  # write_report writes them all
    rows = []
    for path, record in study.record_files:
        name = path.relative_to(study.path).as_posix()
        rows.append(_tr([_td_html(_link(name)), _td(record.method), _td(str(record.seed), "num")]))
    for failure in study.failures:
        if failure.get("record"):
            link = _link(f"records/{failure['record']}")
            seed = str(failure.get("seed", "—"))
            rows.append(_tr([_td_html(link), _td(failure_text(failure)), _td(seed, "num")]))
    head = _th("record") + _th("method") + _th("seed")
    return f"<p>{links}</p>\n" + _table(head, rows)


def _row_classes(row: Row) -> str:
    flags = {"control": row.is_control, "baseline": row.is_baseline, "best": row.is_best}
    return " ".join(name for name, on in flags.items() if on)


def _table(header: str, rows: list[str]) -> str:
    body = "\n".join(rows)
    return f'<div class="scroll"><table>\n<tr>{header}</tr>\n{body}\n</table></div>'


def _tr(cells: list[str], css: str = "") -> str:
    attribute = f' class="{css}"' if css else ""
    return f"<tr{attribute}>{''.join(cells)}</tr>"


def _th(text: str, css: str = "") -> str:
    attribute = f' class="{css}"' if css else ""
    # Long metric names (constraint_accuracy) may break after an underscore, not mid-word.
    return f"<th{attribute}>{_e(text).replace('_', '_<wbr>')}</th>"


def _td(text: str, css: str = "") -> str:
    return _td_html(_e(text), css)


def _td_html(content: str, css: str = "") -> str:
    attribute = f' class="{css}"' if css else ""
    return f"<td{attribute}>{content}</td>"


def _link(relative: str) -> str:
    return f'<a href="{_e(relative)}">{_e(relative)}</a>'


def _notes(lines: list[str]) -> str:
    return '<ul class="notes">' + "".join(f"<li>{_inline(line)}</li>" for line in lines) + "</ul>"


def _inline(text: str) -> str:
    """Escaped text with Markdown's `code` spans (the footnotes use them) as <code>."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", _e(text))


def _e(text: str) -> str:
    return html.escape(text, quote=True)
