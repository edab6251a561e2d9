"""Model providers get the run seed as ``seed=``; one written before it existed still works."""

from __future__ import annotations

from pathlib import Path

from gsil_bench.backend.cache import DiskCache
from gsil_bench.backend.providers import call_provider
from gsil_bench.config import DataConfig, ModelConfig


def test_a_provider_with_a_seed_parameter_gets_the_run_seed(tmp_path):
    def provider(model_cfg, data_cfg, cache, *, seed):
        return Path(f"/models/seed{seed}"), {"seed": seed}

    path, facts = call_provider(provider, ModelConfig(), DataConfig(), DiskCache(tmp_path), seed=5)
    assert (path, facts) == (Path("/models/seed5"), {"seed": 5})


def test_a_provider_taking_keywords_gets_the_seed_among_them(tmp_path):
    def provider(model_cfg, data_cfg, cache, **options):
        return Path("/models/any"), dict(options)

    _, facts = call_provider(provider, ModelConfig(), DataConfig(), DiskCache(tmp_path), seed=2)
    assert facts == {"seed": 2}


def test_a_provider_without_a_seed_is_called_as_before(tmp_path):
    calls = []

    def provider(model_cfg, data_cfg, cache):
        calls.append((model_cfg.name, data_cfg.source))
        return Path("/models/fixed"), {}

    path, _ = call_provider(provider, ModelConfig(), DataConfig(), DiskCache(tmp_path), seed=9)
    assert path == Path("/models/fixed") and calls == [("tiny", "mini")]
