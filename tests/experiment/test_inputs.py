"""The input stages without a model: demonstrations from a file, their fingerprint, base model
names that no provider claims."""

from __future__ import annotations

import json

import pytest

from gsil_bench.backend.cache import DiskCache
from gsil_bench.config import DataConfig, ModelConfig
from gsil_bench.errors import UserError
from gsil_bench.experiment.inputs import prepare_demonstrations, resolve_base_model


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_demonstrations_from_a_file_with_a_transform(tmp_path):
    data = _write(
        tmp_path / "d.jsonl", [{"prompt": f"q{i}", "response": f"a{i}"} for i in range(10)]
    )
    config = DataConfig(source=str(data), quality={"subsample": 0.5})
    demos, facts = prepare_demonstrations(config, seed=0)
    assert len(demos) == 5 and facts["demonstrations"] == 5
    assert facts["transforms"]["input"] == 10


def test_no_demonstrations_left_is_a_user_error(tmp_path):
    data = _write(tmp_path / "d.jsonl", [])
    config = DataConfig(source=str(data))
    with pytest.raises(UserError, match="no demonstrations left"):
        prepare_demonstrations(config, seed=0)


def test_first_turn_on_the_mini_suite_is_refused_not_ignored():
    with pytest.raises(UserError, match=r"data\.first_turn .* 'mini'"):
        prepare_demonstrations(DataConfig(first_turn=True), seed=0)


def test_a_model_name_no_provider_claims_is_loaded_as_it_is(tmp_path):
    path, facts = resolve_base_model(
        ModelConfig(name="Qwen/Qwen2.5-0.5B"), DataConfig(), DiskCache(tmp_path), seed=3
    )
    assert (path, facts) == ("Qwen/Qwen2.5-0.5B", {})
