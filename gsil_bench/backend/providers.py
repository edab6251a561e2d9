"""Model providers: names in ``model.name`` that build a base model instead of loading one.

A provider is a function ``(model_config, data_config, cache, *, seed) -> (path, facts)`` that
returns the folder of a ready base model and facts for the run record; ``seed`` is the run seed,
for providers whose base model depends on it (``tiny`` builds one base model per seed unless
``model.tiny.seed`` pins it). A provider without a ``seed`` parameter is called without it.
``tiny`` (the mini suite's in-process Llama) is the built-in one; anything not registered is an
HF folder or Hub name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gsil_bench.registry import Registry

if TYPE_CHECKING:
    from gsil_bench.backend.cache import DiskCache
    from gsil_bench.config import DataConfig, ModelConfig


class ModelProvider(Protocol):
    """Builds (or finds in ``cache``) a base model: (its folder, facts for the run record)."""

    def __call__(
        self, model_cfg: ModelConfig, data_cfg: DataConfig, cache: DiskCache, *, seed: int
    ) -> tuple[Path, dict[str, Any]]: ...


def call_provider(
    provider: Callable[..., tuple[Path, dict[str, Any]]],
    model_cfg: ModelConfig,
    data_cfg: DataConfig,
    cache: DiskCache,
    *,
    seed: int,
) -> tuple[Path, dict[str, Any]]:
    """``provider(..., seed=seed)``; a provider written before the seed existed (no ``seed``
    parameter, no ``**kwargs``) is called as before, without it."""
    parameters = inspect.signature(provider).parameters.values()
    if any(p.name == "seed" or p.kind is p.VAR_KEYWORD for p in parameters):
        return provider(model_cfg, data_cfg, cache, seed=seed)
    return provider(model_cfg, data_cfg, cache)


MODEL_PROVIDERS: Registry[ModelProvider] = Registry(
    "model provider",
    group="gsil_bench.models",
    builtins={"tiny": "gsil_bench.minisuite.model:tiny_base_model"},
)
