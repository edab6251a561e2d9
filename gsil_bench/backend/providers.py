"""Model providers: names in ``model.name`` that build a base model instead of loading one.

A provider is a function ``(model_config, data_config, cache) -> (path, facts)`` that returns
the folder of a ready base model and facts for the run record. ``tiny`` (the mini suite's
in-process Llama) is the built-in one; anything not registered is an HF folder or Hub name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gsil_bench.registry import Registry

if TYPE_CHECKING:
    from gsil_bench.backend.cache import DiskCache
    from gsil_bench.config import DataConfig, ModelConfig

ModelProvider = Callable[["ModelConfig", "DataConfig", "DiskCache"], tuple[Path, dict[str, Any]]]

MODEL_PROVIDERS: Registry[ModelProvider] = Registry(
    "model provider",
    group="gsil_bench.models",
    builtins={"tiny": "gsil_bench.minisuite.model:tiny_base_model"},
)
