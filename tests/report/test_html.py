"""index.html: one self-contained page with the tables of table.csv, the plots inline, the
manifest and links to the records. Expected numbers come from table.csv (read back as CSV, not
from the renderer) and from the hand-computed values in conftest.py."""

from __future__ import annotations

import base64
import csv
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import pytest

from gsil_bench.report.write import write_report

VOID = {"meta", "img", "br", "hr", "link", "input", "wbr"}


class Page(HTMLParser):
    """The parts of a page the tests look at; raises on a close tag that does not match."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.urls: list[str] = []  # every href and src
        self.images: list[str] = []
        self.tables: dict[str, list[list[tuple[str, str]]]] = {}  # section id -> rows
        self.section = ""
        self.cell: list[str] | None = None
        self.cell_class = ""
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.tags.append(tag)
        if tag not in VOID:
            self.stack.append(tag)
        self.urls += [values[k] for k in ("href", "src") if k in values]
        if tag == "img":
            self.images.append(values["src"])
        if tag == "section":
            self.section = values["id"]
        if tag == "tr":
            self.tables.setdefault(self.section, []).append([])
        if tag in ("td", "th"):
            self.cell, self.cell_class = [], values.get("class", "")

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        opened = self.stack.pop() if self.stack else None
        if opened != tag:
            raise AssertionError(f"</{tag}> closes <{opened}>")
        if tag in ("td", "th") and self.cell is not None:
            row = self.tables[self.section][-1]
            row.append(("".join(self.cell).strip(), self.cell_class))
            self.cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.cell is not None:
            self.cell.append(data)

    def rows(self, section: str) -> list[list[str]]:
        return [[text for text, _ in row] for row in self.tables[section]]

    def row(self, section: str, label: str) -> list[tuple[str, str]]:
        return next(r for r in self.tables[section] if _method(r[0][0]) == label)


def _method(label: str) -> str:
    """A row label without its marks: (baseline), (partial: n=k), ★."""
    return label.split(" (")[0].removesuffix(" ★")


def read_page(written: dict[str, Path]) -> Page:
    page = Page(written["index.html"].read_text(encoding="utf-8"))
    assert page.stack == [], f"unclosed tags: {page.stack}"
    return page


def csv_rows(written: dict[str, Path]) -> list[dict[str, str]]:
    with written["table.csv"].open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def column_keys(rows: list[dict[str, str]]) -> list[str]:
    return [name.removesuffix(":mean") for name in rows[0] if name.endswith(":mean")]


def test_page_parses_and_has_every_method_row(study_dir: Path) -> None:
    written = write_report(study_dir)
    page = read_page(written)
    assert page.tags[:2] == ["html", "head"] and "body" in page.tags
    main = page.rows("main")
    labels = [row[0] for row in main[1:]]
    methods = [row["method"] for row in csv_rows(written)]
    assert len(labels) == len(methods) == 5
    for label, method in zip(labels, methods, strict=True):
        assert _method(label) == method
    # conftest.py: beta=1 is the best gsil-logistic, sft the baseline, two rows partial.
    assert "gsil-logistic beta=1 ★" in labels
    assert "sft (baseline)" in labels
    assert "spin beta=1 (partial: n=2)" in labels


def test_main_table_numbers_are_those_of_table_csv(study_dir: Path) -> None:
    written = write_report(study_dir)
    page = read_page(written)
    rows = csv_rows(written)
    header = page.rows("main")[0]
    for csv_row in rows:
        cells = page.row("main", csv_row["method"])
        for key in column_keys(rows):
            benchmark, metric = key.rsplit("/", 1)
            text, css = cells[header.index(f"{benchmark} {metric}")]
            mean, half = csv_row[f"{key}:mean"], csv_row[f"{key}:ci95_half_width"]
            if not mean:
                assert text == "—"
                continue
            spread = f" ± {float(half):.3f}" if half else " (n=1, no CI)"
            assert text.startswith(f"{float(mean):.3f}{spread}"), (csv_row["method"], key)
            significant = (
                csv_row.get(f"{key}:p_value") not in ("", None)
                and float(csv_row[f"{key}:p_value"]) < 0.05
            )
            assert text.endswith("†") == significant == ("sig" in css)
    # By hand (conftest.py): sft math 0.550 ± 0.124; beta=1 math 0.850 ± 0.124, p = 0.005 (†).
    math = header.index("mini/math accuracy")
    assert page.row("main", "sft")[math][0] == "0.550 ± 0.124"
    assert page.row("main", "gsil-logistic beta=1")[math] == ("0.850 ± 0.124 †", "num sig")
    assert page.row("main", "gsil-hinge beta=1")[math][0] == "0.500 (n=1, no CI)"


def test_comparison_and_instrument_numbers_are_those_of_table_csv(study_dir: Path) -> None:
    written = write_report(study_dir)
    page = read_page(written)
    rows = csv_rows(written)
    header = page.rows("comparison")[0]
    for csv_row in rows:
        key = "mini/math/accuracy"
        if not csv_row[f"{key}:diff_vs_baseline"]:
            continue
        text = page.row("comparison", csv_row["method"])[header.index("mini/math accuracy")][0]
        diff, low, high = (
            float(csv_row[f"{key}:{s}"])
            for s in ("diff_vs_baseline", "diff_ci95_low", "diff_ci95_high")
        )
        assert text.startswith(f"{diff:+.3f} [{low:+.3f}, {high:+.3f}]")
    # By hand: beta=1 on math +0.300, run-level p = 0.005, item-level p = 2/2^8 = 0.008.
    strong = page.row("comparison", "gsil-logistic beta=1")[header.index("mini/math accuracy")]
    assert "+0.300" in strong[0] and "p=0.005" in strong[0] and "p=0.008" in strong[0]
    instrument = {row[0]: row for row in page.rows("instrument")[1:]}
    names = page.rows("instrument")[0]
    for key in column_keys(rows):
        benchmark, metric = key.rsplit("/", 1)
        mde = float(rows[0][f"{key}:mde"])
        assert instrument[f"{benchmark} {metric}"][names.index("MDE")] == f"{mde:.3f}"


def test_controls_table(tmp_path: Path, kit: SimpleNamespace) -> None:
    records = kit.main_records()[:6]  # sft and beta=1, three seeds each
    for index, record in enumerate(records):
        record["diagnostics"] = {"identical_pairs": 0.1 * (index % 3), "moved": 0.5}
    folder = kit.write(tmp_path / "c", records, {"baseline": "sft"})
    page = read_page(write_report(folder, paper_dir=tmp_path))
    assert page.rows("controls")[0] == ["method", "seeds", "identical_pairs", "moved"]
    # Mean over seeds of 0.0, 0.1, 0.2.
    assert page.rows("controls")[1:] == [
        ["gsil-logistic beta=1", "3", "0.100", "0.500"],
        ["sft (baseline)", "3", "0.100", "0.500"],
    ]


@pytest.mark.parametrize("fixture", ["study_dir", "knob_dir"])
def test_plots_are_embedded(fixture: str, request: pytest.FixtureRequest) -> None:
    folder = request.getfixturevalue(fixture)
    written = write_report(folder)
    page = read_page(written)
    plots = sorted(written[name].read_bytes() for name in written if name.startswith("plots/"))
    assert plots, "the fixture should have plots"
    prefix = "data:image/png;base64,"
    assert all(src.startswith(prefix) for src in page.images)
    embedded = sorted(base64.b64decode(src.removeprefix(prefix)) for src in page.images)
    assert embedded == plots


def test_no_external_urls_and_links_resolve(study_dir: Path) -> None:
    written = write_report(study_dir)
    text = written["index.html"].read_text(encoding="utf-8")
    page = read_page(written)
    assert not re.search(r"(?i)(https?|ftp):|url\(|@import|<script|<link", text)
    for url in page.urls:
        if url.startswith(("#", "data:image/png;base64,")):
            continue
        parsed = urlparse(url)
        assert not parsed.scheme and not parsed.netloc, url
        assert (study_dir / parsed.path).is_file(), url
    # Every record of the folder is linked, the failed one too.
    linked = {url for url in page.urls if url.startswith("records/")}
    assert linked == {f"records/{p.name}" for p in (study_dir / "records").glob("*.json")}
    anchors = {url[1:] for url in page.urls if url.startswith("#")}
    assert anchors == set(page.tables) | {"plots", "runs"}


def test_manifest_is_shown_and_lists_the_page(study_dir: Path) -> None:
    written = write_report(study_dir)
    manifest = json.loads(written["manifest.json"].read_text(encoding="utf-8"))
    assert "index.html" in manifest["files"]
    shown = {row[0]: row[1] for row in read_page(written).rows("manifest")[1:]}
    assert shown["git_commit"] == "abc123" and shown["baseline"] == "sft"
    assert shown["files"] == ", ".join(manifest["files"])
    assert shown["run_seconds_by_stage"] == "evaluation_s: 3; generation_s: 18; training_s: 24"


def test_text_is_escaped(tmp_path: Path, kit: SimpleNamespace) -> None:
    hostile = 'sft <b onclick="x">&amp;'
    records = [kit.record(hostile, "sft", s, set(range(5 + s))) for s in range(2)]
    info = {"study": "<i>s</i>", "failures": [{"method": "m", "reason": "<script>x</script>"}]}
    page = read_page(write_report(kit.write(tmp_path / "s", records, info), paper_dir=tmp_path))
    assert not {"b", "i", "script"} & set(page.tags)
    assert page.rows("main")[1][0] == hostile
    assert "gsil-bench report: <i>s</i>" in "".join(page.text)
    assert "m: <script>x</script>" in "".join(page.text)


def test_page_is_deterministic(study_dir: Path, tmp_path: Path) -> None:
    first = write_report(study_dir)["index.html"].read_bytes()
    assert write_report(study_dir)["index.html"].read_bytes() == first
    copy = shutil.copytree(study_dir, tmp_path / "elsewhere" / "quick")
    assert write_report(copy)["index.html"].read_bytes() == first


CHROMIUM = next(
    (shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None
)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")
def test_page_renders_in_headless_chromium(study_dir: Path, tmp_path: Path) -> None:
    image = pytest.importorskip("PIL.Image")
    page = write_report(study_dir)["index.html"].resolve()
    shot = tmp_path / "shot.png"
    # --no-sandbox: Chromium's sandbox refuses to start as root (containers, CI).
    base = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    url = page.as_uri()
    subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1200,1600", url],
        check=True,
        capture_output=True,
        timeout=120,
    )
    dom = subprocess.run(
        [*base, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    rendered = Page(dom)
    assert [row[0] for row in rendered.rows("main")[1:]] == [
        row[0] for row in read_page({"index.html": page}).rows("main")[1:]
    ]
    with image.open(shot) as picture:
        assert picture.size == (1200, 1600)
        colours = picture.convert("RGB").getcolors(maxcolors=1200 * 1600)
    # A blank or failed render is one colour; the page has text, shaded cells and a plot.
    assert len(colours) > 50
    assert max(count for count, _ in colours) < 0.95 * 1200 * 1600
