"""Published numbers from ``results/paper/*.yaml``, each with its source (schema: its README).

They are shown in a table of their own: the papers evaluated 7B models on the real benchmarks,
the mini suite evaluates a tiny model on embedded tasks, and one column holding both would
invite a comparison that means nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from gsil_bench.errors import UserError

REQUIRED_SOURCE_KEYS = ("paper", "citation", "arxiv", "results")
# The loss of a number measured on the untrained base model (a study's ``base`` control row).
BASE_LOSS = "base"
REQUIRED_RESULT_KEYS = ("loss", "method", "benchmark", "metric", "value")
# Keys a result may set for itself or inherit from the file's top level.
INHERITED_KEYS = ("table", "verified", "note", "unit")


@dataclass(frozen=True)
class PublishedNumber:
    """One published value. ``loss`` is a loss name, or a family prefix (``gsil``) when the
    paper does not say which member produced the number, or ``base`` for the untrained base
    model (e.g. SPIN's zephyr-7b-sft-full rows); ``unit`` is ``percent`` when the paper
    reports percentages of what our metrics hold as fractions. ``not_in_paper``: members of
    the family the paper does not have (gsil-bench's extensions), which a family number does
    not stand for."""

    file: str
    citation: str
    arxiv: str
    table: str
    loss: str
    method: str
    benchmark: str
    metric: str
    value: float
    unit: str
    verified: bool
    note: str
    not_in_paper: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        where = f", {self.table}" if self.table else ""
        return f"{self.citation}, arXiv:{self.arxiv}{where}"

    def matches_loss(self, loss: str) -> bool:
        if loss in self.not_in_paper:
            return False
        return loss == self.loss or loss.startswith(self.loss + "-")


def default_paper_dir(study_dir: Path) -> Path | None:
    """``results/paper`` beside the study, else the one in this source checkout, else None."""
    for candidate in (
        study_dir.parent / "paper",
        Path(__file__).resolve().parents[2] / "results" / "paper",
    ):
        if candidate.is_dir():
            return candidate
    return None


def load_published(paper_dir: Path | None) -> list[PublishedNumber]:
    """Every published number under ``paper_dir`` (sorted by file, then as listed)."""
    if paper_dir is None or not paper_dir.is_dir():
        return []
    numbers: list[PublishedNumber] = []
    for path in sorted(paper_dir.glob("*.yaml")):
        numbers.extend(_load_file(path))
    return numbers


def select_published(numbers: list[PublishedNumber], losses: set[str]) -> list[PublishedNumber]:
    """The numbers that stand for a loss this study ran; a paper's ``base`` numbers (its
    starting model) come with the paper's other numbers, or with the study's base control
    (its report rows have loss ``""``)."""
    chosen = [n for n in numbers if any(n.matches_loss(loss) for loss in losses)]
    files = {n.file for n in chosen}
    control = bool({"", BASE_LOSS} & losses)
    return [
        n for n in numbers if n in chosen or (n.loss == BASE_LOSS and (control or n.file in files))
    ]


def _load_file(path: Path) -> list[PublishedNumber]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping with keys {', '.join(REQUIRED_SOURCE_KEYS)}")
    for key in REQUIRED_SOURCE_KEYS:
        if key not in data:
            raise UserError(f"{path}: missing key '{key}'")
    if not isinstance(data["results"], list):
        raise UserError(f"{path}: 'results' must be a list of published numbers")
    excluded = data.get("not_in_paper", [])
    if not isinstance(excluded, list) or not all(isinstance(x, str) for x in excluded):
        raise UserError(f"{path}: not_in_paper: expected a list of loss names")
    numbers = [_parse_result(path, data, i, entry) for i, entry in enumerate(data["results"])]
    return [replace(n, not_in_paper=tuple(excluded)) for n in numbers]


def _parse_result(path: Path, source: dict[str, Any], index: int, entry: Any) -> PublishedNumber:
    where = f"{path}: results[{index}]"
    if not isinstance(entry, dict):
        raise UserError(f"{where}: expected a mapping")
    for key in REQUIRED_RESULT_KEYS:
        if key not in entry:
            raise UserError(f"{where}: missing key '{key}'")
    value = entry["value"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{where}.value: expected a number, got {value!r}")
    inherited = {key: entry.get(key, source.get(key)) for key in INHERITED_KEYS}
    verified = inherited["verified"]
    if not isinstance(verified, bool):
        raise UserError(f"{where}.verified: expected true or false, got {verified!r}")
    return PublishedNumber(
        file=path.name,
        citation=str(source["citation"]),
        arxiv=str(source["arxiv"]),
        table=str(inherited["table"] or ""),
        loss=str(entry["loss"]),
        method=str(entry["method"]),
        benchmark=str(entry["benchmark"]),
        metric=str(entry["metric"]),
        value=float(value),
        unit=str(inherited["unit"] or ""),
        verified=verified,
        note=str(inherited["note"] or ""),
    )
