"""The model provider ``tiny``: builds the base model once, keyed by content, then reuses it."""

from __future__ import annotations

import hashlib
import json

from gsil_bench.backend.cache import DiskCache
from gsil_bench.backend.providers import MODEL_PROVIDERS
from gsil_bench.config import DataConfig, ModelConfig
from gsil_bench.minisuite.model import tiny_base_model
from gsil_bench.minisuite.suite import build_suite

TINY = {"vocab_size": 300, "hidden_size": 32, "num_layers": 1, "num_heads": 2,
        "intermediate_size": 64, "max_positions": 128, "base_steps": 2, "base_decay_steps": 1,
        "base_batch_size": 8}  # fmt: skip
MINI = {"n_base": 16, "n_align": 4, "n_test": 4}


def test_registered_as_tiny():
    assert MODEL_PROVIDERS.get("tiny") is tiny_base_model


def test_builds_once_under_its_content_key(tmp_path):
    model, data = ModelConfig(tiny=TINY), DataConfig(mini=MINI)
    cache = DiskCache(tmp_path)
    path, facts = tiny_base_model(model, data, cache)
    suite_fp = build_suite(data.mini).fingerprint()
    # The cache key, derived by hand: sha256 of the stage, its version and the inputs.
    inputs = {"tiny": {**TINY, "base_lr": 2e-3}, "suite": suite_fp}  # base_lr: its default
    payload = {"stage": "base", "version": 1, "inputs": inputs}
    key = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    assert path == tmp_path / "base" / key[:20]
    assert (path / "config.json").is_file()
    assert facts["suite_fingerprint"] == suite_fp and facts["steps"] == 2
    assert set(facts) == {"parameters", "vocab_size", "steps", "final_loss", "tokens_per_s",
                          "seconds", "suite_fingerprint"}  # fmt: skip
    again, cached_facts = tiny_base_model(model, data, cache)
    assert again == path
    assert cached_facts == json.loads(json.dumps(facts))  # read back from the cache entry
    assert not (tmp_path / "base-work" / key[:20]).exists()  # the training folder is cleaned up
