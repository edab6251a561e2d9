"""The model provider ``tiny``: builds the base model once per seed, keyed by content, then
reuses it."""

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


def _key(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _weights(path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


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
    key = _key(payload)
    assert path == tmp_path / "base" / key[:20]
    assert (path / "config.json").is_file()
    assert facts["suite_fingerprint"] == suite_fp and facts["steps"] == 2
    assert set(facts) == {"parameters", "vocab_size", "steps", "final_loss", "tokens_per_s",
                          "seconds", "seed", "suite_fingerprint"}  # fmt: skip
    assert facts["seed"] == 0
    again, cached_facts = tiny_base_model(model, data, cache)
    assert again == path
    assert cached_facts == json.loads(json.dumps(facts))  # read back from the cache entry
    assert not (tmp_path / "base-work" / key[:20]).exists()  # the training folder is cleaned up


def test_the_run_seed_chooses_the_base_model_unless_tiny_seed_pins_it(tmp_path):
    data, cache = DataConfig(mini=MINI), DiskCache(tmp_path)
    follows = ModelConfig(tiny=TINY)  # model.tiny.seed left at None: follows the run seed
    seed0, _ = tiny_base_model(follows, data, cache, seed=0)
    seed1, facts1 = tiny_base_model(follows, data, cache, seed=1)
    again1, _ = tiny_base_model(follows, data, cache, seed=1)
    assert seed1 != seed0 and again1 == seed1 and facts1["seed"] == 1
    # Seed 1 is keyed with its seed (by hand, as above); seed 0 keeps the historical key.
    inputs = {"tiny": {**TINY, "base_lr": 2e-3}, "suite": build_suite(data.mini).fingerprint()}
    assert seed1.name == _key({"stage": "base", "version": 1, "inputs": {**inputs, "seed": 1}})[:20]
    assert seed0.name == _key({"stage": "base", "version": 1, "inputs": inputs})[:20]
    # Different seeds, different initial weights (and data order): different base models.
    w0, w1 = _weights(seed0), _weights(seed1)
    assert any(not (w0[name] == w1[name]).all() for name in w0)
    # model.tiny.seed: 0 pins the historical base model whatever the run seed.
    pinned = ModelConfig(tiny={**TINY, "seed": 0})
    assert tiny_base_model(pinned, data, cache, seed=7)[0] == seed0
