"""The experiment's inputs: the base model to start from and the demonstrations to align to.

Both stages take their own config section. Named base models (``model.name: tiny``) and named
demonstration sources (``data.source: mini``) come from registries, so this module knows no
particular model or suite.
"""

from __future__ import annotations

from typing import Any

from gsil_bench.backend.cache import DiskCache
from gsil_bench.backend.providers import MODEL_PROVIDERS, call_provider
from gsil_bench.config import DataConfig, ModelConfig
from gsil_bench.data.records import Demonstration
from gsil_bench.data.sources import DATA_SOURCES
from gsil_bench.errors import UserError


def prepare_demonstrations(
    data: DataConfig, *, seed: int
) -> tuple[list[Demonstration], dict[str, Any]]:
    """The demonstrations after the data-quality transforms, and facts for the record."""
    from gsil_bench.data.transforms import apply_transforms

    if data.source in DATA_SOURCES:
        if data.first_turn:
            raise UserError(
                f"data.first_turn cuts multi-turn records of files, folders and Hub datasets; "
                f"the registered source {data.source!r} makes its own demonstrations (unset it)"
            )
        demos = DATA_SOURCES.get(data.source)(data)
    else:
        from gsil_bench.data.loaders import load_demonstrations

        demos = load_demonstrations(
            data.source,
            split=data.split,
            config_name=data.config_name,
            limit=data.limit,
            first_turn=data.first_turn,
        )
    facts: dict[str, Any] = {}
    demos, facts["transforms"] = apply_transforms(demos, data.quality, seed=seed)
    if not demos:
        raise UserError(f"no demonstrations left from {data.source!r} after transforms")
    facts["demonstrations"] = len(demos)
    return demos, facts


def resolve_base_model(
    model: ModelConfig, data: DataConfig, cache: DiskCache, *, seed: int
) -> tuple[str, dict[str, Any]]:
    """(path or Hub name of the base model, facts): a registered provider builds it (cached;
    ``seed``, the run seed, may choose it), anything else is an HF folder or Hub name loaded
    as it is."""
    if model.name in MODEL_PROVIDERS:
        provider = MODEL_PROVIDERS.get(model.name)
        path, facts = call_provider(provider, model, data, cache, seed=seed)
        return str(path), facts
    return model.name, {}
