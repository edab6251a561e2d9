"""``duplicate``: copies right after their originals, tagged and renamed."""

from __future__ import annotations

from gsil_bench.data.transforms import DataQualityConfig


def test_duplicate_repeats_right_after_the_original(run, make_demos):
    demos = make_demos()
    out, report = run(DataQualityConfig(duplicate=0.25), demos)
    assert report["duplicated"] == 5 and len(out) == report["output"] == 25
    copies = [i for i, d in enumerate(out) if d.id.endswith("#dup")]
    assert len(copies) == 5
    for i in copies:
        assert out[i].id == out[i - 1].id + "#dup"
        assert (out[i].prompt, out[i].response) == (out[i - 1].prompt, out[i - 1].response)
        assert out[i].meta["transforms"] == ["duplicate"]
