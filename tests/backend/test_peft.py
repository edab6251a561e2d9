"""LoRA (model.peft): the reference is the model with adapters disabled, only the adapters
train, adapters save and load back, and a resumed LoRA run equals an uninterrupted one."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("peft")

from gsil_bench.backend import lora  # noqa: E402
from gsil_bench.backend.batches import (  # noqa: E402
    TrainExample,
    collate,
    sequence_logps,
    split_head,
)
from gsil_bench.backend.cache import DiskCache  # noqa: E402
from gsil_bench.backend.model import load_pretrained  # noqa: E402
from gsil_bench.config import PeftConfig, RunConfig, load_config  # noqa: E402
from gsil_bench.errors import UserError  # noqa: E402
from gsil_bench.experiment import rounds  # noqa: E402
from gsil_bench.experiment.inputs import resolve_base_model  # noqa: E402
from gsil_bench.experiment.recipe import run_experiment  # noqa: E402
from gsil_bench.stop import StopRequested, request_stop, sigterm_stops  # noqa: E402

TINY = str(Path(__file__).parents[1] / "fixtures" / "tiny_run.yaml")


def _batch(tokenizer) -> dict[str, torch.Tensor]:
    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    examples = [
        TrainExample(ids("Tom has 3 apples and buys"), ids(" 4 more."), ids(" 7")),
        TrainExample(ids("def add_two(x):"), ids("\n    return x + 2"), ids(" pass")),
    ]
    return collate(examples, with_generated=True, pad_id=tokenizer.pad_token_id)


def _by_hand(model, batch) -> torch.Tensor:
    """Per row: the sum over response tokens t of log softmax(logits[t-1])[token t]."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logp = torch.log_softmax(logits.float(), dim=-1)
    sums = []
    for row in range(batch["input_ids"].shape[0]):
        positions = batch["response_mask"][row].nonzero().squeeze(-1).tolist()
        tokens = batch["input_ids"][row]
        sums.append(sum(logp[row, t - 1, tokens[t]] for t in positions))
    return torch.stack(sums)


def _moved_adapters(model) -> None:
    """Non-zero LoRA B matrices (fresh ones are zero, which would make every check vacuous)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn_like(p) * 0.5)


def test_peft_model_splits_and_its_logps_equal_the_whole_logits_path(tiny_model, tiny_tokenizer):
    wrapped = lora.add_adapters(tiny_model, PeftConfig(r=4), weights_from="tiny")
    _moved_adapters(wrapped)
    split = split_head(wrapped)
    assert split is not None
    backbone, _ = split
    assert any("lora_A" in n for n, _ in backbone.named_parameters())  # adapters inside
    batch = _batch(tiny_tokenizer)
    expected = _by_hand(wrapped, batch)
    got, _ = sequence_logps(wrapped, batch)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_reference_with_adapters_disabled_is_the_base_model(tiny_model, tiny_tokenizer):
    base = copy.deepcopy(tiny_model)  # an independent copy, never wrapped
    wrapped = lora.add_adapters(tiny_model, PeftConfig(r=4), weights_from="tiny")
    _moved_adapters(wrapped)
    batch = _batch(tiny_tokenizer)
    with torch.no_grad():
        want = _by_hand(base, batch)
        with_adapters, _ = sequence_logps(wrapped, batch)
        with lora.adapters_disabled(wrapped):
            reference, _ = sequence_logps(wrapped, batch)
    torch.testing.assert_close(reference, want, atol=1e-5, rtol=1e-5)
    assert (with_adapters - want).abs().max() > 1e-3  # the adapters do change the model


def test_lora_config_is_checked():
    with pytest.raises(ValueError, match="target_modules"):
        RunConfig.model_validate({"model": {"peft": {"target_modules": []}}})
    with pytest.raises(ValueError, match="r"):
        RunConfig.model_validate({"model": {"peft": {"r": 0}}})


def test_unknown_target_modules_are_one_clear_error(tiny_model):
    with pytest.raises(UserError, match="model.peft"):
        lora.add_adapters(tiny_model, PeftConfig(target_modules=["no_such_proj"]), weights_from="x")


def test_without_peft_the_config_fingerprint_is_unchanged():
    # The key is left out when unset, so configs written before the knob keep their hash.
    plain = RunConfig()
    assert "peft" not in plain.model_dump()["model"]
    assert RunConfig.model_validate({"model": {"peft": None}}).fingerprint() == plain.fingerprint()
    assert RunConfig.model_validate({"model": {"peft": {}}}).fingerprint() != plain.fingerprint()


def _config(tmp_path, name, *overrides):
    return load_config(
        TINY,
        [
            f"output_dir={tmp_path}/{name}",
            f"cache_dir={tmp_path}/cache",
            "eval.suites=[]",
            "model.dtype=float32",
            "model.peft.r=4",
            *overrides,
        ],
    )


def _state(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "adapter_model.safetensors")


def test_lora_run_trains_the_adapters_only_and_saves_them(tmp_path):
    config = _config(tmp_path, "lora", "iterations=2")
    record = run_experiment(config)
    base_path, _ = resolve_base_model(
        config.model, config.data, DiskCache(config.cache_dir), seed=0
    )
    base, _ = load_pretrained(base_path, dtype="float32")
    one, two = (Path(record.output_dir) / f"round-{i}" / "model" for i in (1, 2))
    for folder in (one, two):
        assert (folder / "adapter_model.safetensors").exists()
        assert not (folder / "model.safetensors").exists()
        assert any(
            "lora_B" in k and v.abs().max() > 0 for k, v in _state(folder).items()
        )  # B starts at zero: a non-zero B is an adapter that trained
    # Round 1's adapters apply to the base, round 2's to round 1's model.
    assert json.loads((one / "adapter_config.json").read_text())["base_model_name_or_path"] == (
        str(Path(base_path).resolve())
    )
    assert json.loads((two / "adapter_config.json").read_text())["base_model_name_or_path"] == (
        str(one.resolve())
    )
    # The base weights did not move: each round's model is the weights it started from plus
    # B @ A * alpha / r of its adapters; the chain loads back from the last folder alone.
    want_one = _merged_by_formula(base.state_dict(), _state(one))
    want_two = _merged_by_formula(want_one, _state(two))
    for folder, want in ((one, want_one), (two, want_two)):
        got, _ = load_pretrained(str(folder), dtype="float32")
        for name, weight in got.state_dict().items():
            torch.testing.assert_close(weight, want[name], atol=1e-6, rtol=1e-5)


def _merged_by_formula(weights: dict, adapters: dict, scale: float = 16.0 / 4) -> dict:
    """W + B @ A * scale for every weight with an adapter (and at least one has one)."""
    out, merged = {}, 0
    for name, weight in weights.items():
        stem = name.removesuffix(".weight")
        a_key = next((k for k in adapters if k.endswith(f".{stem}.lora_A.weight")), None)
        out[name] = weight
        if a_key is not None:
            out[name] = (
                weight + adapters[a_key.replace("lora_A", "lora_B")] @ adapters[a_key] * scale
            )
            merged += 1
    assert merged > 0
    return out


def test_merge_on_save_writes_full_weights(tmp_path):
    record = run_experiment(_config(tmp_path, "merged", "model.peft.merge_on_save=true"))
    folder = Path(record.output_dir) / "round-1" / "model"
    assert (folder / "model.safetensors").exists() and not lora.has_adapters(folder)
    assert record.fingerprints.final_model != record.fingerprints.base_model


@pytest.mark.parametrize("stop_round", [2, 3])
def test_a_resumed_lora_run_equals_an_uninterrupted_one(tmp_path, monkeypatch, stop_round):
    # Stopped in round 3, the resumed run loads rounds 1-2's adapters and restores round 2's
    # negatives (mixed into round 3) from the generation cache.
    overrides = ["iterations=3", "generation.mix_previous_rounds=true"]
    whole = run_experiment(_config(tmp_path, "whole", *overrides))
    train = rounds.train

    def stop_in_round_2(*args, **kwargs):
        if kwargs["run_dir"].name == f"round-{stop_round}":
            request_stop()
        return train(*args, **kwargs)

    monkeypatch.setattr(rounds, "train", stop_in_round_2)
    with sigterm_stops(), pytest.raises(StopRequested, match="checkpoint saved at step 1"):
        run_experiment(_config(tmp_path, "resumed", *overrides))
    monkeypatch.setattr(rounds, "train", train)

    resumed = run_experiment(_config(tmp_path, "resumed", *overrides))
    assert all(r["loaded"] for r in resumed.rounds[: stop_round - 1])
    assert resumed.rounds[stop_round - 1]["resumed_from"] == 1
    generated = sorted((tmp_path / "cache" / "generated").iterdir())
    assert len([p for p in generated if not p.name.startswith(".")]) == 3  # no regeneration

    def logs(record):
        out = []
        for r in record.rounds:
            rows = [json.loads(x) for x in Path(r["log"]).read_text().splitlines()]
            out.append([{k: v for k, v in row.items() if k != "tokens_per_s"} for row in rows])
        return out

    assert logs(resumed) == logs(whole)
    assert resumed.fingerprints.final_model == whole.fingerprints.final_model
    for i in (1, 2, 3):
        a = _state(Path(whole.output_dir) / f"round-{i}" / "model")
        b = _state(Path(resumed.output_dir) / f"round-{i}" / "model")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("do_sample", [False, True])
def test_generation_runs_with_the_adapters(tiny_model, tiny_tokenizer, do_sample):
    from gsil_bench.backend.generation import generate

    tiny_tokenizer.padding_side = "left"
    base = copy.deepcopy(tiny_model)
    wrapped = lora.add_adapters(tiny_model, PeftConfig(r=4), weights_from="tiny")
    _moved_adapters(wrapped)
    # The adapted model written out as plain weights, independently: W + B @ A * alpha / r.
    adapted = copy.deepcopy(base)
    weights = dict(wrapped.named_parameters())
    with torch.no_grad():
        for name, p in adapted.named_parameters():
            prefix = "base_model.model." + name.removesuffix(".weight")
            if f"{prefix}.lora_A.default.weight" in weights:
                a = weights[f"{prefix}.lora_A.default.weight"]
                b = weights[f"{prefix}.lora_B.default.weight"]
                p.add_(b @ a * (16.0 / 4))
    prompts = ["Tom has 3 apples", "def add_two(x):", "Red"]
    kwargs = {"max_new_tokens": 8, "do_sample": do_sample, "seed": 1, "progress": False}
    got = generate(wrapped, tiny_tokenizer, prompts, **kwargs)
    assert got == generate(adapted, tiny_tokenizer, prompts, **kwargs)
    assert got != generate(base, tiny_tokenizer, prompts, **kwargs)  # adapters matter here
    with lora.adapters_disabled(wrapped):
        assert generate(wrapped, tiny_tokenizer, prompts, **kwargs) == generate(
            base, tiny_tokenizer, prompts, **kwargs
        )


def test_bf16_lora_run_keeps_fp32_adapters_and_bf16_weights(tmp_path):
    # model.dtype appears twice in the overrides: the last one (bfloat16) wins.
    record = run_experiment(_config(tmp_path, "bf16", "model.dtype=bfloat16"))
    folder = Path(record.output_dir) / "round-1" / "model"
    adapters = _state(folder)
    assert {v.dtype for v in adapters.values()} == {torch.float32}
    assert any("lora_B" in k and v.abs().max() > 0 for k, v in adapters.items())
    model, _ = load_pretrained(str(folder), dtype="bfloat16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
