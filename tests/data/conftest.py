"""Demonstrations for the data-quality transform tests, and the helpers that run them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gsil_bench.data.records import Demonstration
from gsil_bench.data.transforms import DataQualityConfig, Report, apply_transforms

N = 20  # records make_demos makes by default


def _make_demos(n: int = N, *, rejected_every: int = 1) -> list[Demonstration]:
    return [
        Demonstration(
            prompt=[{"role": "user", "content": f"question {i}"}],
            response=f"answer number {i} has five words" if i % 3 else f"line one {i}\nline two",
            rejected=f"bad answer {i}" if i % rejected_every == 0 else None,
            id=f"d{i}",
            meta={"domain": "test"},
        )
        for i in range(n)
    ]


def _run(
    config: DataQualityConfig, demos: list[Demonstration] | None = None, seed: int = 0
) -> tuple[list[Demonstration], Report]:
    demos = _make_demos() if demos is None else demos
    return apply_transforms(demos, config, seed=seed)


def _changed(before: list[Demonstration], after: list[Demonstration]) -> list[str]:
    return [a.id for a, b in zip(before, after, strict=True) if a.response != b.response]


@pytest.fixture
def make_demos() -> Callable[..., list[Demonstration]]:
    """``make_demos(n=20, rejected_every=1)``: records with 5-word or two-line responses."""
    return _make_demos


@pytest.fixture
def run() -> Callable[..., tuple[list[Demonstration], Report]]:
    """``run(config, demos=make_demos(), seed=0)``: apply_transforms."""
    return _run


@pytest.fixture
def changed() -> Callable[[list[Demonstration], list[Demonstration]], list[str]]:
    """``changed(before, after)``: ids whose response differs."""
    return _changed
