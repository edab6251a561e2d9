"""Named demonstration sources: names in ``data.source`` that build demonstrations in-process.

A source is a function ``(data_config) -> list[Demonstration]``. ``mini`` (the align split of
the embedded mini suite) is the built-in one; any other value of ``data.source`` is a file,
folder or Hub dataset read by :func:`gsil_bench.data.loaders.load_demonstrations`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gsil_bench.registry import Registry

if TYPE_CHECKING:
    from gsil_bench.config import DataConfig
    from gsil_bench.data.records import Demonstration

DataSource = Callable[["DataConfig"], list["Demonstration"]]

DATA_SOURCES: Registry[DataSource] = Registry(
    "data source",
    group="gsil_bench.data_sources",
    builtins={"mini": "gsil_bench.minisuite.data:mini_demonstrations"},
)
