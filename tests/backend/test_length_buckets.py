"""Length buckets: a micro-batch's rows run as one forward per group of similar lengths, each
padded to its own width, and the loss sees the same per-row log-probs as from one forward."""

from __future__ import annotations

import itertools

import pytest
import torch

from gsil_bench.backend import trainer as trainer_module
from gsil_bench.backend.batches import TrainExample, length_buckets
from gsil_bench.config import OptimConfig
from gsil_bench.registry import get_loss


def test_two_clusters_split_and_equal_lengths_stay_whole():
    # one forward: 4 rows x 100 + 128 = 528 slots; two: 2 x 100 + 128 + 2 x 10 + 128 = 476
    assert length_buckets([10, 10, 100, 100], overhead=128) == [[2, 3], [0, 1]]
    # the padding saved (2 x 60 = 120) does not pay for a second forward (128)
    assert length_buckets([40, 40, 100, 100], overhead=128) == [[2, 3, 0, 1]]
    assert length_buckets([7] * 5, overhead=0) == [[0, 1, 2, 3, 4]]
    assert length_buckets([], overhead=128) == []


def _set_partitions(items: list[int]):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in _set_partitions(rest):
        yield [[first], *partition]
        for k in range(len(partition)):
            yield [*partition[:k], [first, *partition[k]], *partition[k + 1 :]]


@pytest.mark.parametrize("seed", range(20))
def test_the_cut_is_optimal_over_every_partition_of_the_rows(seed):
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 7, (1,), generator=g))
    lengths = torch.randint(1, 120, (n,), generator=g).tolist()
    overhead = int(torch.randint(0, 100, (1,), generator=g))

    def cost(groups):
        return sum(len(grp) * max(lengths[i] for i in grp) + overhead for grp in groups)

    groups = length_buckets(lengths, overhead=overhead)
    assert sorted(itertools.chain(*groups)) == list(range(n))
    assert cost(groups) == min(cost(p) for p in _set_partitions(list(range(n))))


def _examples(vocab: int) -> list[TrainExample]:
    """Pairs of two length clusters (so that buckets split a micro-batch of 8)."""
    g = torch.Generator().manual_seed(3)

    def ids(length: int) -> list[int]:
        return torch.randint(3, vocab, (length,), generator=g).tolist()

    out = []
    for k in range(16):
        long = k % 3 == 0
        out.append(
            TrainExample(ids(60 if long else 3), ids(40 if long else 2), ids(30 if long else 4))
        )
    return out


@pytest.mark.parametrize(("loss", "sharing"), [("spin", False), ("spin", True), ("sft", False)])
def test_training_in_buckets_matches_one_forward(
    tiny_tokenizer, same_training, monkeypatch, loss, sharing
):
    examples = _examples(len(tiny_tokenizer))
    with_gen = get_loss(loss).needs_generated
    widths = [trainer_module._row_width(e, with_gen, sharing) for e in examples[:8]]
    assert len(length_buckets(widths)) > 1  # the data does exercise several forwards
    steps, calls, cuts = 4, [0], []
    real_buckets = trainer_module.length_buckets

    def whole_then_buckets(lengths):
        calls[0] += 1
        if calls[0] <= steps:  # the first run, one micro-batch per step: one padded forward
            return [list(range(len(lengths)))]
        groups = real_buckets(lengths)
        cuts.append(len(groups))
        return groups

    monkeypatch.setattr(trainer_module, "length_buckets", whole_then_buckets)
    optim = OptimConfig(lr=1e-3, batch_size=8, epochs=2, prefix_sharing=sharing)
    same_training(loss, examples, (optim, optim), steps=steps, max_positions=256)
    assert len(cuts) == steps and max(cuts) > 1
