"""The demonstration source ``mini`` (``data.source: mini``): the suite's align split.

Registered lazily in :data:`gsil_bench.data.sources.DATA_SOURCES`; the experiment asks the
registry and never names the suite itself.
"""

from __future__ import annotations

from gsil_bench.config import DataConfig
from gsil_bench.data.records import Demonstration
from gsil_bench.minisuite.suite import shared_suite


def mini_demonstrations(data_cfg: DataConfig) -> list[Demonstration]:
    """The align split of the suite ``data_cfg.mini`` describes, the first ``data_cfg.limit``
    of it if set. A new list: the suite itself is shared and stays as it is."""
    demos = list(shared_suite(data_cfg.mini).align)
    return demos[: data_cfg.limit] if data_cfg.limit else demos
