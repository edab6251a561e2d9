"""``swap_rejected``: demonstration and rejected response trade places where there is one."""

from __future__ import annotations

from gsil_bench.data.transforms import DataQualityConfig, apply_transforms
from gsil_bench.minisuite.config import MiniSuiteConfig
from gsil_bench.minisuite.suite import build_suite


def test_swap_rejected_where_available(run, make_demos, changed):
    demos = make_demos(rejected_every=2)  # 10 of 20 carry a rejected response
    out, report = run(DataQualityConfig(swap_rejected=0.5), demos)
    swapped = changed(demos, out)
    assert report["swapped_rejected"] == len(swapped) == 5
    assert report["swap_rejected_unavailable"] == 10
    for before, after in zip(demos, out, strict=True):
        if after.id in swapped:
            assert (after.response, after.rejected) == (before.rejected, before.response)
            assert after.meta["transforms"] == ["swap_rejected"]
    everything, report = run(DataQualityConfig(swap_rejected=1.0), demos)
    assert len(changed(demos, everything)) == report["swapped_rejected"] == 10


def test_swap_rejected_works_on_the_mini_suite():
    suite = build_suite(MiniSuiteConfig(n_base=8, n_align=40, n_test=0))
    out, report = apply_transforms(suite.align, DataQualityConfig(swap_rejected=1.0), seed=0)
    assert report["swapped_rejected"] == 40 and report["swap_rejected_unavailable"] == 0
    assert [d.response for d in out] == [d.rejected for d in suite.align]
