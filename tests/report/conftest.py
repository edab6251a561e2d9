"""Synthetic study folders whose numbers are known by hand, shared by the report tests.

The main study (baseline ``sft``, objective mini/math accuracy, seeds 0-2 by inference), per seed
on 20 math items and 8 code items ("correct range(k)" = items 0..k-1 solved):

- sft: math range(10), range(11), range(12) -> 0.50, 0.55, 0.60: mean 0.550,
  half-width t_{0.975,2} * 0.05 / sqrt(3) = 4.302653 * 0.028868 = 0.124; code range(4) -> 0.5.
- gsil-logistic beta=1: math range(16..18) -> 0.80, 0.85, 0.90: 0.850 ± 0.124.
  Run level: per-seed differences 0.30 x3, no run spread; seed-averaged item differences
  1/3, 2/3, 1 x4, 2/3, 1/3 and 12 zeros: sum of squares 46/9, item variance of the mean
  (46/9 - 20 * 0.3^2) / 19 / 20 = 0.0087135, all of the variance, so 19 df (Satterthwaite):
  t = 0.3 / 0.093346 = 3.214, p = 0.005 (†). Item level: sign-flip p = 2/2^8 = 0.0078.
  Code range(4..6) -> 0.5, 0.625, 0.75: 0.625 ± 0.311; per-seed differences 0, 1/8, 1/4 (run
  variance 1/64 / 3), item differences 2/3, 1/3, 0 x6 (item variance (5/9 - 8/64) / 7 / 8):
  p = 0.305 (no mark); item-level p = 2/4 = 0.5.
- gsil-logistic beta=3: math items 1..10, 1..11, 1..12 -> 0.550 ± 0.124; per-seed differences
  0 x3, item differences -1, +1/3 x3 sum to 0: p = 1 at both levels. Not the best
  gsil-logistic; beta=1 gets ★.
- gsil-hinge beta=1: one seed, math range(10) -> "0.500 (n=1, no CI)", partial (1 of 3 seeds),
  no run-level test.
- spin beta=1: two seeds, math range(8), range(6) -> 0.40, 0.30: 0.350 ± 12.7062 * 0.05
  = 0.635, partial (2 of 3 seeds). Run level over seeds 0, 1: differences -0.10, -0.25 (run
  variance 0.0225 / 2 / 2 = 0.005625, 1 df), item differences -1/2 x2, -1 x2, -2/3, -1/3
  (item variance (55/18 - 20 * 0.04) / 19 / 20 = 0.0059357, 19 df): t = 0.175 / 0.10752 =
  1.628 on 3.99 df, p = 0.179 (no †); item level p = 2/2^6 = 0.031. No code result.

Test modules get the helpers through the ``kit`` fixture (``kit.record(...)``,
``kit.write(...)``, ...): with ``--import-mode=importlib`` a conftest is not importable.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

MATH = [f"math-{i:03d}" for i in range(20)]
CODE = [f"code-{i}" for i in range(8)]
LOGISTIC, STRONG, WEAK = "gsil-logistic", "gsil-logistic beta=1", "gsil-logistic beta=3"
KNOBS = ["data.quality.subsample", "data.quality.noise"]


def bench(name: str, metric: str, ids: list[str], solved: set[int], reverse: bool = False) -> dict:
    items = [{"id": item, "score": float(i in solved)} for i, item in enumerate(ids)]
    if reverse:  # pairing must go by id, not by position
        items.reverse()
    accuracy = len(solved) / len(ids)
    return {"benchmark": name, "metrics": {metric: accuracy}, "items": items, "seconds": 0.1}


def make_record(
    method: str,
    loss: str,
    seed: int,
    math: set[int],
    code: set[int] | None = None,
    *,
    params: dict[str, Any] | None = None,
    rewards: tuple[list[float], list[float]] | None = None,
    series: str | None = None,
    knobs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A run record as the sweep writes it (``series`` and ``knobs`` only where it sets them)."""
    benchmarks = {"mini/math": bench("mini/math", "accuracy", MATH, math, reverse=seed == 1)}
    if code is not None:
        benchmarks["mini/code"] = bench("mini/code", "pass@1", CODE, code)
    trajectory = [{"step": s + 1, "loss": 0.7 - 0.1 * s} for s in range(4)]
    if rewards is not None:
        for point, real, generated in zip(trajectory, *rewards, strict=True):
            point.update({"reward/real": real, "reward/generated": generated})
    record = {
        "run_id": f"{method}-{seed}",
        "method": method,
        "loss": loss,
        "hparams": {},
        "seed": seed,
        "params": params or {},
        "benchmarks": benchmarks,
        "trajectory": trajectory,
        "timings": {"generation_s": 1.5, "training_s": 2.0, "evaluation_s": 0.25},
        "status": "ok",
    }
    if series is not None:
        record["series"] = series
    if knobs is not None:
        record["knobs"] = knobs
    return record


def write_study(folder: Path, records: list[dict[str, Any]], info: dict[str, Any]) -> Path:
    (folder / "records").mkdir(parents=True)
    for index, record in enumerate(records):
        path = folder / "records" / f"{index:03d}.json"
        path.write_text(json.dumps(record), encoding="utf-8")
    (folder / "study.json").write_text(json.dumps(info), encoding="utf-8")
    return folder


def main_records() -> list[dict[str, Any]]:
    falling = ([0.0, -0.1, -0.2, -0.3], [0.0, -0.2, -0.4, -0.6])
    rising = ([0.0, 0.2, 0.4, 0.5], [0.0, -0.3, -0.5, -0.8])
    rows = [make_record("sft", "sft", s, set(range(10 + s)), set(range(4))) for s in range(3)]
    for s in range(3):
        math_strong, code_strong = set(range(16 + s)), set(range(4 + s))
        rows.append(make_record(STRONG, LOGISTIC, s, math_strong, code_strong, rewards=rising))
    for s in range(3):
        math_same = set(range(1, 11 + s))
        rows.append(make_record(WEAK, LOGISTIC, s, math_same, set(range(4)), rewards=rising))
    rows.append(make_record("gsil-hinge beta=1", "gsil-hinge", 0, set(range(10)), set(range(4))))
    rows += [
        make_record("spin beta=1", "spin", s, set(range(8 - 2 * s)), rewards=falling)
        for s in range(2)
    ]
    # A run that failed before it knew anything else: method, seed and reason only.
    rows.append({"method": "spin beta=5", "seed": 1, "status": "failed", "reason": "out of memory"})
    return rows


MAIN_INFO = {
    "study": "quick",
    "sweep_file": "sweeps/quick.yaml",
    "baseline": "sft",
    "knobs": [],
    "objective": {"metrics": {"mini/math/accuracy": 1.0}, "direction": "maximize"},
    "failures": [{"trial": 7, "method": "spin beta=5", "reason": "non-finite loss"}],
    "manifest": {"git_commit": "abc123", "machine": "test"},
}


def knob_records() -> list[dict[str, Any]]:
    """Two methods, two seeds; subsample 0.5/1.0 at noise 0, and noise 0.2 at subsample 1.0."""
    settings = [(0.5, 0.0), (1.0, 0.0), (1.0, 0.2)]
    records = []
    for subsample, noise in settings:
        params = {"data.quality.subsample": subsample, "data.quality.noise": noise}
        base = int(10 * subsample) - int(10 * noise)
        suffix = f" subsample={subsample:g} noise={noise:g}"  # the sweep names grid points
        placed = {"params": params, "knobs": params}  # as the sweep places a grid point
        for seed in range(2):
            solved, strong_solved = set(range(base + seed)), set(range(base + 6 + seed))
            sft = make_record("sft" + suffix, "sft", seed, solved, series="sft", **placed)
            strong = make_record(
                STRONG + suffix, LOGISTIC, seed, strong_solved, series=STRONG, **placed
            )
            records += [sft, strong]
    return records


def main_table_lines(markdown: str) -> list[str]:
    section = markdown.split("\n## ")[0]
    return [line for line in section.splitlines() if line.startswith("| ")]


def row_of(lines: list[str], label: str) -> list[str]:
    line = next(line for line in lines if line.startswith(f"| {label}"))
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers above, for test modules."""
    return SimpleNamespace(
        MATH=MATH,
        CODE=CODE,
        LOGISTIC=LOGISTIC,
        STRONG=STRONG,
        WEAK=WEAK,
        KNOBS=KNOBS,
        MAIN_INFO=MAIN_INFO,
        bench=bench,
        record=make_record,
        write=write_study,
        main_records=main_records,
        knob_records=knob_records,
        table_lines=main_table_lines,
        row_of=row_of,
    )


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    return write_study(tmp_path / "results" / "quick", main_records(), MAIN_INFO)


@pytest.fixture
def knob_dir(tmp_path: Path) -> Path:
    info = {"study": "dq", "baseline": "sft", "knobs": KNOBS}
    return write_study(tmp_path / "results" / "dq", knob_records(), info)
