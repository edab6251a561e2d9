"""Suites shared by the mini-suite tests: building the default one takes a moment."""

from __future__ import annotations

import pytest

from gsil_bench.minisuite.config import MiniSuiteConfig
from gsil_bench.minisuite.suite import MiniSuite, build_suite
from gsil_bench.minisuite.task import TestItem


@pytest.fixture(scope="session")
def suite() -> MiniSuite:
    """The default suite (8000 base, 1000 align, 200 test)."""
    return build_suite(MiniSuiteConfig())


@pytest.fixture(scope="session")
def items() -> list[TestItem]:
    """48 test items, 12 per domain, for the scoring tests."""
    return build_suite(MiniSuiteConfig(n_base=0, n_align=0, n_test=48)).test
