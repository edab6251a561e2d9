"""Demonstration records and loaders, the built-in mini suite and data-quality transforms."""

from gsil_bench.data.loaders import load_demonstrations
from gsil_bench.data.minisuite import MiniSuite, MiniSuiteConfig, TestItem, all_text, build_suite
from gsil_bench.data.records import Demonstration, demonstrations_fingerprint
from gsil_bench.data.transforms import DataQualityConfig, apply_transforms

__all__ = [
    "DataQualityConfig",
    "Demonstration",
    "MiniSuite",
    "MiniSuiteConfig",
    "TestItem",
    "all_text",
    "apply_transforms",
    "build_suite",
    "demonstrations_fingerprint",
    "load_demonstrations",
]
