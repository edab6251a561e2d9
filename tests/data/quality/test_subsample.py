"""``subsample``: a fraction of the records, in order, never none of them."""

from __future__ import annotations

from gsil_bench.data.transforms import DataQualityConfig


def test_subsample_keeps_a_fraction_in_order(run, make_demos):
    out, report = run(DataQualityConfig(subsample=0.25))
    assert len(out) == 5 and report["subsample_dropped"] == 15
    indices = [int(d.id[1:]) for d in out]
    assert indices == sorted(indices)
    tiny, _ = run(DataQualityConfig(subsample=0.01), make_demos(3))
    assert len(tiny) == 1  # never empties a non-empty dataset
