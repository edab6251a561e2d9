"""Padding-free packing: several sequences (or prompt-shared pairs) to a row under a block
mask, position ids restarting per sequence, give the log-probs and gradients of padded rows."""

from __future__ import annotations

import warnings

import pytest
import torch

from gsil_bench.backend import blocks
from gsil_bench.backend.batches import TrainExample, collate, sequence_logps
from gsil_bench.backend.blocks import block_logps, collate_packed, use_packing
from gsil_bench.config import OptimConfig


def _examples(n: int, seed: int, vocab: int = 300) -> list[TrainExample]:
    g = torch.Generator().manual_seed(seed)

    def ids(lo: int, hi: int) -> list[int]:
        length = int(torch.randint(lo, hi, (1,), generator=g))
        return torch.randint(3, vocab, (length,), generator=g).tolist()

    return [TrainExample(ids(1, 15), ids(1, 12), ids(1, 12)) for _ in range(n)]


def test_rows_masks_and_positions_by_hand():
    # blocks of 5, 2 and 2 tokens in rows of 5 (the longest): [A] and [B, C] with 1 pad
    a, b, c = TrainExample([5, 6], [7, 8, 9]), TrainExample([5], [7]), TrainExample([4], [3])
    batch = collate_packed([a, b, c], with_generated=False, shared=False, pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9], [5, 7, 4, 3, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4], [0, 1, 0, 1, 0]]
    mask = batch["block_mask"][1, 0]
    assert mask[1].tolist() == [True, True, False, False, False]  # B's reply: B only
    assert mask[2].tolist() == [False, False, True, False, False]  # C's prompt: not B
    assert mask[3].tolist() == [False, False, True, True, False]
    assert mask[4].tolist() == [False, False, False, False, True]  # padding: itself
    assert batch["block_mask"][0, 0].tolist() == torch.ones(5, 5).tril().bool().tolist()
    # A's 7, 8, 9 from flat 1, 2, 3; B's 7 from row 1 col 0 (flat 5); C's 3 from col 2 (7)
    assert batch["src"].tolist() == [1, 2, 3, 5, 7]
    assert batch["dst"].tolist() == [0, 0, 0, 1, 2]
    assert batch["target"].tolist() == [7, 8, 9, 7, 3]
    assert batch["tokens"].tolist() == [5, 2, 2]


@pytest.mark.parametrize(
    ("with_generated", "shared"), [(False, False), (True, False), (True, True)]
)
def test_packed_logps_and_gradients_equal_padded_rows(tiny_model, with_generated, shared):
    examples = _examples(9, seed=5) + [TrainExample([], [11, 12, 13], [14, 15])]
    outputs = (2 if with_generated else 1) * len(examples)
    packed = collate_packed(examples, with_generated=with_generated, shared=shared, pad_id=0)
    padded = collate(examples, with_generated=with_generated, pad_id=0)
    assert packed["input_ids"].shape[0] < padded["input_ids"].shape[0]  # rows were shared
    results = []
    for run in ("padded", "packed"):
        tiny_model.zero_grad(set_to_none=True)
        if run == "padded":
            logps, counts = sequence_logps(tiny_model, padded)
        else:
            logps, counts = block_logps(tiny_model, packed, outputs)
        (logps / counts.clamp(min=1)).sum().backward()
        grads = torch.cat([p.grad.reshape(-1) for p in tiny_model.parameters()])
        results.append((logps.detach(), counts, grads))
    (want, want_counts, want_grads), (got, got_counts, got_grads) = results
    assert got_counts.tolist() == want_counts.tolist()
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    torch.testing.assert_close(got_grads, want_grads, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("loss", "sharing"), [("sft", False), ("spin", True), ("spin", False)])
def test_training_packed_matches_padded(tiny_tokenizer, same_training, loss, sharing):
    examples = _examples(12, seed=6, vocab=len(tiny_tokenizer))
    optims = [
        OptimConfig(lr=1e-3, batch_size=4, epochs=1, prefix_sharing=sharing, packing=packing)
        for packing in (False, True)
    ]
    same_training(loss, examples, optims, steps=3)


def test_a_model_without_block_masks_runs_padded_and_says_so_once(tiny_model, monkeypatch):
    monkeypatch.setattr(blocks, "_WARNED", set())
    tiny_model.config._attn_implementation = "flash_attention_2"
    with pytest.warns(UserWarning, match=r"optim\.packing: .*'flash_attention_2'.*run padded"):
        assert use_packing(tiny_model, True) is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert use_packing(tiny_model, True) is False
        assert use_packing(tiny_model, False) is False
