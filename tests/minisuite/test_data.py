"""The demonstration source ``mini``: the align split of the run's suite."""

from __future__ import annotations

from gsil_bench.config import DataConfig
from gsil_bench.data.sources import DATA_SOURCES
from gsil_bench.minisuite.config import MiniSuiteConfig
from gsil_bench.minisuite.data import mini_demonstrations
from gsil_bench.minisuite.suite import build_suite, shared_suite

MINI = {"n_base": 4, "n_align": 12, "n_test": 4, "seed": 5}


def test_registered_as_mini():
    assert DATA_SOURCES.get("mini") is mini_demonstrations


def test_the_align_split_whole_or_its_first_records():
    expected = build_suite(MiniSuiteConfig(**MINI)).align
    assert mini_demonstrations(DataConfig(mini=MINI)) == expected
    assert mini_demonstrations(DataConfig(mini=MINI, limit=5)) == expected[:5]


def test_the_shared_suite_is_left_as_it_was():
    demos = mini_demonstrations(DataConfig(mini=MINI, limit=5))
    demos.clear()
    assert len(shared_suite(MiniSuiteConfig(**MINI)).align) == 12
