"""Generation and reference caches are keyed by everything their outputs depend on."""

from __future__ import annotations

import pytest
import torch

import gsil_bench
from gsil_bench.backend import cache as cache_module
from gsil_bench.backend.batches import TrainExample
from gsil_bench.backend.cache import DiskCache
from gsil_bench.config import GenerationConfig
from gsil_bench.data.records import Demonstration
from gsil_bench.experiment.negatives import generated_negatives, generation_key
from gsil_bench.experiment.reference import reference_key

PROMPTS = ["<|user|>What is 1 + 1?", "<|user|>Name a colour."]
EXAMPLES = [TrainExample([1, 2], [3, 4], [5]), TrainExample([1], [6], [7, 8])]


def _gen_key(gen=None, **changes):
    args = {"seed": 0, "model_fp": "abc", "dtype": torch.float32, "mixed_precision": "no"}
    return generation_key(gen or GenerationConfig(), PROMPTS, **{**args, **changes})


def _ref_key(**changes):
    args = {
        "with_generated": True,
        "model_fp": "abc",
        "dtype": torch.float32,
        "mixed_precision": "no",
        "batch_size": 8,
    }
    return reference_key(EXAMPLES, **{**args, **changes})


@pytest.fixture
def versions(monkeypatch):
    """Pretend package versions: {name: version}; change an entry to change one."""
    table = {"torch": "2.5.0", "transformers": "4.46.0", "vllm": "0.6.0"}
    monkeypatch.setattr(cache_module, "version", lambda name: table[name])
    return table


@pytest.mark.parametrize(
    ("package", "new"),
    [("torch", "2.6.0"), ("transformers", "4.47.0"), ("gsil-bench", "9.9.9")],
)
def test_library_and_code_versions_change_both_keys(versions, monkeypatch, package, new):
    gen_before, ref_before = _gen_key(), _ref_key()
    if package == "gsil-bench":
        monkeypatch.setattr(gsil_bench, "__version__", new)
    else:
        versions[package] = new
    assert _gen_key() != gen_before
    assert _ref_key() != ref_before


def test_generation_key_changes_with_what_changes_the_responses(versions):
    base = _gen_key()
    changed = [
        _gen_key(model_fp="abd"),
        _gen_key(dtype=torch.bfloat16),
        _gen_key(mixed_precision="bf16"),
        _gen_key(GenerationConfig(max_new_tokens=256)),
        _gen_key(GenerationConfig(backend="vllm")),
    ]
    assert len({base, *changed}) == 1 + len(changed)
    # Greedy in fp32: the batch size and the seed change nothing, so they share the entry.
    assert _gen_key(GenerationConfig(batch_size=8), seed=1) == base
    # Sampling: the seed and the batch size (the random stream is drawn batch by batch).
    sampling = GenerationConfig(do_sample=True)
    sampled = _gen_key(sampling)
    assert _gen_key(GenerationConfig(do_sample=True, batch_size=8)) != sampled
    assert _gen_key(sampling, seed=1) != sampled
    # Greedy in bf16: padding changes low-precision sums, so the batch size counts.
    bf16 = _gen_key(dtype=torch.bfloat16)
    assert _gen_key(GenerationConfig(batch_size=8), dtype=torch.bfloat16) != bf16
    # vLLM: its own version counts.
    vllm = GenerationConfig(backend="vllm")
    before = _gen_key(vllm)
    versions["vllm"] = "0.7.0"
    assert _gen_key(vllm) != before
    assert _gen_key() == base  # the HF backend does not depend on vllm


def test_reference_key_changes_with_what_changes_the_log_probs(versions):
    base = _ref_key()
    changed = [
        _ref_key(model_fp="abd"),
        _ref_key(dtype=torch.bfloat16),
        _ref_key(mixed_precision="bf16"),
        _ref_key(with_generated=False),
        _ref_key(prefix_sharing=True),
    ]
    assert len({base, *changed}) == 1 + len(changed)
    # Without generated responses there is no pair to share a prompt: the same pass.
    assert _ref_key(with_generated=False, prefix_sharing=True) == _ref_key(with_generated=False)
    assert _ref_key(batch_size=16) == base  # fp32: batching changes nothing that is kept
    bf16 = _ref_key(dtype=torch.bfloat16)
    assert _ref_key(dtype=torch.bfloat16, batch_size=16) != bf16


def test_a_changed_key_is_a_cache_miss(tiny_model, tiny_tokenizer, tmp_path):
    demos = [
        Demonstration(id=str(i), prompt=[{"role": "user", "content": f"{i} + 1?"}], response="x")
        for i in range(2)
    ]
    cache = DiskCache(tmp_path)
    gen = GenerationConfig(max_new_tokens=4)

    def negatives(mixed_precision):
        return generated_negatives(
            gen,
            tiny_model,
            tiny_tokenizer,
            demos,
            seed=0,
            cache=cache,
            model_fp="abc",
            round_index=1,
            mixed_precision=mixed_precision,
        )

    first = negatives("no")
    assert negatives("no") == first
    assert len(list((tmp_path / "generated").iterdir())) == 1
    negatives("bf16")
    assert len(list((tmp_path / "generated").iterdir())) == 2


def test_negatives_another_process_is_generating_are_waited_for(
    tiny_model, tiny_tokenizer, tmp_path, monkeypatch
):
    import json
    import threading
    import time

    from gsil_bench.experiment import negatives as negatives_module

    demos = [Demonstration(id="0", prompt=[{"role": "user", "content": "1 + 1?"}], response="x")]
    cache = DiskCache(tmp_path)
    gen = GenerationConfig(max_new_tokens=4)
    ran: list[int] = []
    monkeypatch.setattr(negatives_module, "generate", lambda *a, **k: ran.append(1) or ["mine"])
    args = (gen, tiny_model, tiny_tokenizer, demos)
    kwargs = {"seed": 0, "cache": cache, "model_fp": "abc", "round_index": 1}
    prompts = [negatives_module.render_prompt(tiny_tokenizer, d.prompt) for d in demos]
    key = generation_key(gen, prompts, seed=0, model_fp="abc", dtype=torch.float32,
                         mixed_precision="no")  # fmt: skip
    got: list[list[str]] = []
    with cache.lock("generated", key):  # another process is generating them
        waiter = threading.Thread(target=lambda: got.append(generated_negatives(*args, **kwargs)))
        waiter.start()
        time.sleep(0.3)
        assert waiter.is_alive()
        cache.put(
            "generated",
            key,
            lambda tmp: (tmp / "responses.json").write_text(json.dumps(["theirs"])),
            {},
        )
    waiter.join(timeout=10)
    assert got == [["theirs"]] and ran == []


def test_release_prompt_format_generates_from_the_releases_template(
    tiny_model, tiny_tokenizer, tmp_path, monkeypatch
):
    from gsil_bench.experiment import negatives as negatives_module

    demos = [
        Demonstration(
            id="0",
            prompt=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is 2 + 2?"},
            ],
            response="4",
        )
    ]
    seen: list[list[str]] = []
    monkeypatch.setattr(
        negatives_module, "generate", lambda model, tok, prompts, **k: seen.append(prompts) or ["x"]
    )
    for fmt in ("release", "chat"):
        generated_negatives(
            GenerationConfig(prompt_format=fmt),
            tiny_model,
            tiny_tokenizer,
            demos,
            seed=0,
            cache=DiskCache(tmp_path),
            model_fp="abc",
            round_index=1,
        )
    # GSIL gsil/generate.py and SPIN spin/generate.py: the instruction, no chat template.
    assert seen[0] == ["### Instruction: What is 2 + 2?\n\n### Response: "]
    assert seen[1][0] != seen[0][0] and "What is 2 + 2?" in seen[1][0]  # the chat template
    # No key at the default: configs from before the setting keep their fingerprints.
    assert "prompt_format" not in GenerationConfig().model_dump()
    assert GenerationConfig(prompt_format="release").model_dump()["prompt_format"] == "release"
