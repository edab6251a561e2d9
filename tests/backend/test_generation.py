"""Greedy decoding with finished rows dropped gives exactly HF ``generate``'s tokens."""

from __future__ import annotations

from collections import Counter

import torch

from gsil_bench.backend.generation import generate, greedy_tokens, plain_greedy

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
