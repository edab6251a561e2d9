"""Run config: YAML, --set overrides, and one clear error per typo."""

from __future__ import annotations

import hashlib
import json

import pytest

from gsil_bench.config import RunConfig, load_config
from gsil_bench.errors import UserError


def test_embedded_default_is_valid():
    config = load_config()
    assert config == RunConfig()
    assert config.model.name == "tiny" and config.data.source == "mini"
    assert config.loss.name == "gsil-logistic"


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("loss: {name: spin, params: {beta: 2.0}}\noptim: {lr: 0.001}\n")
    config = load_config(path, ["optim.lr=3e-5", "eval.suites=[mini, gsm8k]", "seed=7"])
    assert config.loss.name == "spin" and config.loss.params == {"beta": 2.0}
    assert config.optim.lr == pytest.approx(3e-5)
    assert config.eval.suites == ["mini", "gsm8k"] and config.seed == 7


def test_typo_names_the_key_and_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("optim: {lrr: 0.001}\n")
    with pytest.raises(
        UserError, match=r"run\.yaml: unknown key 'optim\.lrr' \(did you mean 'optim\.lr'\?\)"
    ):
        load_config(path)


@pytest.mark.parametrize(
    ("override", "meant"),
    [
        # Names from other trainers, at the top level or in the right section.
        ("learning_rate=1e-4", "optim.lr"),
        ("optim.learning_rate=1e-4", "optim.lr"),
        ("optim.per_device_train_batch_size=8", "optim.batch_size"),
        ("num_train_epochs=3", "optim.epochs"),
        ("gradient_accumulation_steps=4", "optim.grad_accum"),
        ("max_seq_length=1024", "data.max_length"),
        ("model_name_or_path=gpt2", "model.name"),
        ("beta=0.1", "loss.params.beta"),
        # A key of this config in the wrong section.
        ("warmup_ratio=0.1", "optim.warmup_ratio"),
        ("lr=1e-4", "optim.lr"),
        ("loss.beta=0.1", "loss.params.beta"),
        # Typos, in a nested section too.
        ("data.max_lenght=64", "data.max_length"),
        ("eval.suite=[mini]", "eval.suites"),
        ("model.tiny.hiden_size=8", "model.tiny.hidden_size"),
    ],
)
def test_unknown_keys_suggest_the_key_meant(override, meant):
    key = override.partition("=")[0]
    with pytest.raises(UserError, match=rf"unknown key '{key}' \(did you mean '{meant}'\?\)$"):
        load_config(None, [override])


def test_a_key_like_nothing_gets_no_suggestion():
    with pytest.raises(UserError, match=r"unknown key 'optim\.zzzz'$"):
        load_config(None, ["optim.zzzz=1"])


def test_max_prompt_tokens_must_leave_room_for_the_response():
    message = r"data\.max_prompt_tokens \(256\) must be less than data\.max_length \(256\)"
    with pytest.raises(UserError, match=message):
        load_config(None, ["data.max_length=256"])  # the default max_prompt_tokens is 256
    with pytest.raises(UserError, match=r"max_prompt_tokens \(300\).*max_length \(256\)"):
        load_config(None, ["data.max_prompt_tokens=300", "data.max_length=256"])
    config = load_config(None, ["data.max_prompt_tokens=255", "data.max_length=256"])
    assert (config.data.max_prompt_tokens, config.data.max_length) == (255, 256)


def test_wrong_type_names_the_key():
    with pytest.raises(UserError, match=r"key 'optim\.batch_size'"):
        load_config(None, ["optim.batch_size=many"])


def test_unknown_loss_and_hyperparameter():
    with pytest.raises(
        UserError, match=r"(?i)unknown loss 'gsil-logistc'.*did you mean 'gsil-logistic'"
    ):
        load_config(None, ["loss.name=gsil-logistc"])
    with pytest.raises(
        UserError, match=r"loss 'spin' has no hyperparameter 'shift'.*accepts: beta"
    ):
        load_config(None, ["loss.name=spin", "loss.params.shift=1"])


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  lr: [1\n")
    with pytest.raises(UserError, match=r"bad\.yaml:\d+: invalid YAML"):
        load_config(path)


def test_missing_file_and_bad_override(tmp_path):
    with pytest.raises(UserError, match=r"^nope\.yaml: no such file$"):
        load_config("nope.yaml")
    with pytest.raises(UserError, match=rf"^{tmp_path}: is a directory, expected a YAML file$"):
        load_config(tmp_path)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"seed: 1\n# caf\xe9\n")  # Latin-1 e-acute on line 2, after "# caf"
    with pytest.raises(UserError, match=r"latin\.yaml:2: not UTF-8 text \(.*column 6\)"):
        load_config(latin)
    with pytest.raises(UserError, match="expected key=value"):
        load_config(None, ["optim.lr"])


def test_fingerprint_ignores_output_location():
    a = load_config(None, ["output_dir=runs/a"])
    b = load_config(None, ["output_dir=runs/b", "cache_dir=/tmp/c"])
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != load_config(None, ["seed=1"]).fingerprint()


def test_fingerprint_keys_the_base_models_effective_seed():
    def fingerprint(*overrides: str) -> str:
        return load_config(None, list(overrides)).fingerprint()

    # Unset model.tiny.seed follows the run seed: the same runs as pinning it to the run seed.
    assert fingerprint("seed=1") == fingerprint("seed=1", "model.tiny.seed=1")
    assert fingerprint("seed=1") != fingerprint("seed=1", "model.tiny.seed=0")
    assert fingerprint() == fingerprint("model.tiny.seed=0")
    # Base seed 0 (every config before the knob) hashes as before it existed: the payload
    # without model.tiny.seed, derived here by hand.
    payload = RunConfig().model_dump(mode="json", exclude={"output_dir", "cache_dir"})
    del payload["model"]["tiny"]["seed"]
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    assert fingerprint() == digest


def test_iterations_zero_is_a_base_only_run_and_negative_is_refused():
    assert load_config(None, ["iterations=0"]).iterations == 0
    with pytest.raises(UserError, match=r"key 'iterations'"):
        load_config(None, ["iterations=-1"])
    assert RunConfig().model.tiny.seed is None
    assert load_config(None, ["model.tiny.seed=3"]).model.tiny.effective_seed(run_seed=5) == 3
    assert RunConfig().model.tiny.effective_seed(run_seed=5) == 5
