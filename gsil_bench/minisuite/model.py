"""The model provider ``tiny`` (``model.name: tiny``): the mini suite's SFT-trained base model.

Registered lazily in :data:`gsil_bench.backend.providers.MODEL_PROVIDERS`; the experiment asks
the registry and never names the model itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gsil_bench.backend.cache import DiskCache
from gsil_bench.config import DataConfig, ModelConfig
from gsil_bench.minisuite.base import tiny_base
from gsil_bench.minisuite.suite import shared_suite


def tiny_base_model(
    model_cfg: ModelConfig, data_cfg: DataConfig, cache: DiskCache, *, seed: int = 0
) -> tuple[Path, dict[str, Any]]:
    """Folder of the base model trained on the suite ``data_cfg.mini`` describes (built once
    per seed, then cached by content), and facts for the run record: the build facts, the
    base seed and the suite's fingerprint.

    ``seed`` is the run seed; ``model.tiny.seed``, when set, pins the base seed instead.
    """
    suite = shared_suite(data_cfg.mini)
    base_seed = model_cfg.tiny.effective_seed(seed)
    path, facts = tiny_base(model_cfg.tiny, suite, cache, seed=base_seed)
    return path, {**facts, "seed": base_seed, "suite_fingerprint": suite.fingerprint()}
