"""Log-probs from the LM head on response positions only equal the whole-logits path."""

from __future__ import annotations

import pytest
import torch

from gsil_bench.backend import batches
from gsil_bench.backend.batches import TrainExample, collate, sequence_logps, split_head


def _batch(tokenizer) -> dict[str, torch.Tensor]:
    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    examples = [
        TrainExample(ids("Tom has 3 apples and buys"), ids(" 4 more."), ids(" 7")),
        TrainExample(ids("def add_two(x):"), ids("\n    return x + 2"), ids(" pass")),
        TrainExample(ids("Red"), ids("\nGreen\nBlue"), ids("\nRed\nRed\nRed\nRed")),
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


@pytest.mark.parametrize("chunk_elements", [batches.HEAD_CHUNK_ELEMENTS, 4 * 300])
def test_values_and_gradients_equal_the_whole_logits_path(
    tiny_model, tiny_tokenizer, monkeypatch, chunk_elements
):
    # 4 rows per chunk at the fixture's 300-token vocabulary: several checkpointed chunks.
    monkeypatch.setattr(batches, "HEAD_CHUNK_ELEMENTS", chunk_elements)
    assert split_head(tiny_model) is not None
    batch = _batch(tiny_tokenizer)

    expected = _by_hand(tiny_model, batch)
    expected.sum().backward()
    want = {n: p.grad.clone() for n, p in tiny_model.named_parameters()}
    tiny_model.zero_grad()

    got, counts = sequence_logps(tiny_model, batch)
    got.sum().backward()
    assert counts.tolist() == batch["response_mask"].sum(-1).tolist()
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    for name, parameter in tiny_model.named_parameters():
        torch.testing.assert_close(parameter.grad, want[name], atol=1e-5, rtol=1e-4)


def test_under_bf16_autocast_the_values_match_the_whole_logits_path(
    tiny_model, tiny_tokenizer, monkeypatch
):
    batch = _batch(tiny_tokenizer)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        split, _ = sequence_logps(tiny_model, batch)
        monkeypatch.setattr(batches, "split_head", lambda model: None)
        whole, _ = sequence_logps(tiny_model, batch)
    assert split.dtype == whole.dtype == torch.float32
    torch.testing.assert_close(split, whole, atol=1e-5, rtol=1e-5)


def test_a_wrapped_or_unknown_model_runs_whole(tiny_model):
    wrapper = torch.nn.Module()
    wrapper.module = tiny_model  # e.g. DistributedDataParallel: no config of its own
    assert split_head(wrapper) is None
    tiny_model.config.model_type = "gemma2"  # soft-caps its logits after the head
    assert split_head(tiny_model) is None
