"""Greedy decoding with finished rows dropped gives exactly HF ``generate``'s tokens."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from gsil_bench.backend.generation import (
    _GrowingBuffers,
    _preallocated_cache,
    generate,
    greedy_tokens,
    plain_greedy,
)

PROMPTS = [
    "Tom has 3 apples",
    "def add_two(x):",
    "I can't",
    "Red\nGreen",
    "Tom has 3 apples and buys 4 more. 3 + 4 =",
    "def",
    "Blue",
    "I can't help with that request. Red",
] * 3


def left_padded(tokenizer, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    width = max(len(ids) for ids in encoded)
    ids = torch.full((len(encoded), width), tokenizer.pad_token_id)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, e in enumerate(encoded):
        ids[row, width - len(e) :] = torch.tensor(e)
        mask[row, width - len(e) :] = 1
    return ids, mask


def hf_rows(model, ids, mask, new: int, stop: int, pad: int) -> list[list[int]]:
    out = model.generate(
        input_ids=ids,
        attention_mask=mask,
        max_new_tokens=new,
        do_sample=False,
        eos_token_id=stop,
        pad_token_id=pad,
    )[:, ids.shape[1] :].tolist()
    rows = []
    for row in out:  # HF pads after the stop token: keep up to and including it
        rows.append(row[: row.index(stop) + 1] if stop in row else row)
    return rows


def test_greedy_tokens_equal_hf_generate_while_rows_end_at_different_steps(
    tiny_model, tiny_tokenizer
):
    with torch.no_grad():  # larger weights: continuations that do not repeat one token
        for parameter in tiny_model.parameters():
            parameter.mul_(10)
    ids, mask = left_padded(tiny_tokenizer, PROMPTS)
    pad = tiny_tokenizer.pad_token_id
    # A random model rarely says EOS: stop instead on the token its free-running
    # continuations produce most, so that rows end at different steps.
    free = hf_rows(tiny_model, ids, mask, 16, stop=pad, pad=pad)
    stop = Counter(t for row in free for t in row[1:]).most_common(1)[0][0]
    expected = hf_rows(tiny_model, ids, mask, 16, stop=stop, pad=pad)
    lengths = sorted(len(row) for row in expected)
    assert lengths[len(lengths) // 4] < lengths[-1]  # a quarter of the rows end early

    assert greedy_tokens(tiny_model, ids, mask, 16, stop) == expected
    assert greedy_tokens(tiny_model, ids, mask, 16, None) == free  # no stop token: all 16


def test_generation_config_with_processors_falls_back_to_hf_generate(tiny_model, tiny_tokenizer):
    assert plain_greedy(tiny_model)
    tiny_model.generation_config.repetition_penalty = 1.5
    assert not plain_greedy(tiny_model)
    ids, mask = left_padded(tiny_tokenizer, PROMPTS[:4])
    pad = tiny_tokenizer.pad_token_id
    penalised = hf_rows(tiny_model, ids, mask, 12, stop=tiny_tokenizer.eos_token_id, pad=pad)
    texts = generate(tiny_model, tiny_tokenizer, PROMPTS[:4], max_new_tokens=12, progress=False)
    assert texts == [tiny_tokenizer.decode(row, skip_special_tokens=True) for row in penalised]


def test_preallocated_cache_gives_hf_generate_tokens_for_left_padded_rows_of_all_lengths(
    tiny_model, tiny_tokenizer
):
    with torch.no_grad():
        for parameter in tiny_model.parameters():
            parameter.mul_(10)
    assert _preallocated_cache(tiny_model, 8) is not None  # the buffers, not DynamicCache, run
    prompts = [
        "Tom has 3 apples and buys 4 more. 3 + 4 =",
        "def",
        "Red\nGreen\nBlue",
        "I can't help",
        "Blue",
        "def add_two(x):\n    return",
        "Tom",
        "Green",
    ] * 2
    ids, mask = left_padded(tiny_tokenizer, prompts)
    assert len(set(mask.sum(-1).tolist())) >= 5  # prompt lengths differ: real left padding
    pad = tiny_tokenizer.pad_token_id
    free = hf_rows(tiny_model, ids, mask, 12, stop=pad, pad=pad)
    # Stop on the token the free-running continuations produce most (after their first), so
    # rows end at several different steps and some are dropped while others go on.
    stop = Counter(t for row in free for t in row[1:]).most_common(1)[0][0]
    expected = hf_rows(tiny_model, ids, mask, 12, stop=stop, pad=pad)
    assert len({len(row) for row in expected}) >= 3
    # An eighth of the rows end before the last step: finished rows leave the buffers.
    assert sum(len(row) <= 10 for row in expected) * 8 >= len(expected)

    assert greedy_tokens(tiny_model, ids, mask, 12, stop) == expected
    assert greedy_tokens(tiny_model, ids, mask, 12, stop, preallocate=False) == expected
    assert greedy_tokens(tiny_model, ids, mask, 12, None) == free  # buffers filled to the end


def test_growing_buffers_hold_what_concatenation_and_row_selection_would():
    torch.manual_seed(0)
    prompt_k, prompt_v = torch.randn(3, 2, 4, 5), torch.randn(3, 2, 4, 6)
    steps = [(torch.randn(3, 2, 1, 5), torch.randn(3, 2, 1, 6)) for _ in range(2)]
    buffers = _GrowingBuffers(capacity=7)
    buffers.append(prompt_k, prompt_v)
    for key, value in steps:
        keys, values = buffers.append(key, value)
    assert torch.equal(keys, torch.cat([prompt_k, *(k for k, _ in steps)], dim=2))
    assert torch.equal(values, torch.cat([prompt_v, *(v for _, v in steps)], dim=2))

    keys, values = buffers.select_rows(torch.tensor([2, 0]))
    assert keys.shape == (2, 2, 6, 5)
    assert torch.equal(keys[0], torch.cat([prompt_k[2], steps[0][0][2], steps[1][0][2]], dim=1))
    assert torch.equal(values[1], torch.cat([prompt_v[0], steps[0][1][0], steps[1][1][0]], dim=1))
    buffers.append(torch.zeros(2, 2, 1, 5), torch.zeros(2, 2, 1, 6))  # position 7 of 7
    with pytest.raises(ValueError, match="KV buffers of 7 positions cannot hold 8"):
        buffers.append(torch.zeros(2, 2, 1, 5), torch.zeros(2, 2, 1, 6))


def test_models_with_sliding_window_layers_keep_hf_cache(tiny_tokenizer):
    from transformers import MistralConfig, MistralForCausalLM

    config = MistralConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        sliding_window=4,
        pad_token_id=tiny_tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = MistralForCausalLM(config).eval()
    assert _preallocated_cache(model, 8) is None
    ids, mask = left_padded(tiny_tokenizer, PROMPTS[:6])
    pad = tiny_tokenizer.pad_token_id
    assert greedy_tokens(model, ids, mask, 8, None) == hf_rows(model, ids, mask, 8, pad, pad)
