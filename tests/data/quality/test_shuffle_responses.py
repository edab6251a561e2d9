"""``shuffle_responses``: picked prompts get another prompt's response, none keeps its own."""

from __future__ import annotations

from gsil_bench.data.transforms import DataQualityConfig


def test_shuffle_gives_each_picked_prompt_another_prompts_response(run, make_demos, changed):
    demos = make_demos()
    out, report = run(DataQualityConfig(shuffle_responses=0.5), demos)
    moved = changed(demos, out)
    assert report["shuffled_responses"] == len(moved) == 10
    assert report["shuffled_identical"] == 0
    # A permutation of the picked responses: the multiset of responses is unchanged.
    assert sorted(d.response for d in out) == sorted(d.response for d in demos)
    for after in out:
        own = next(d.response for d in demos if d.id == after.id)
        assert (after.response != own) == (after.id in moved)


def test_shuffle_of_a_single_record(run, make_demos, changed):
    demos = make_demos(10)
    out, report = run(DataQualityConfig(shuffle_responses=0.1), demos)
    assert report["shuffled_responses"] == 1 and len(changed(demos, out)) == 1
