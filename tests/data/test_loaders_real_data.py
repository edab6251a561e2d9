"""Loaders on real data and at the edges: the GSM8K and Anthropic HH files, a Hub name that
does not exist, and local paths that are not there."""

from __future__ import annotations

import pytest

from gsil_bench.data.loaders import load_demonstrations
from gsil_bench.errors import UserError


def test_missing_path(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_demonstrations(str(tmp_path / "nope.jsonl"))


def test_unknown_hub_dataset_is_a_user_error(monkeypatch):
    import datasets
    import huggingface_hub

    # Offline, so the Hub client fails at once instead of retrying a missing network.
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(name, "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    with pytest.raises(
        UserError,
        match=r"gsil-bench-test/none: no such local path \(split 'train'\): cannot load"
        r" 'gsil-bench-test/none' from the Hugging Face Hub \(the Hub is unreachable",
    ):
        load_demonstrations("gsil-bench-test/none", split="train")


@pytest.mark.parametrize("source", ["data/train.yaml", "./train", "a/b/c", "~/nowhere/x"])
def test_anything_written_like_a_path_is_not_sent_to_the_hub(source):
    # gsil_bench.io.is_local: the one "Hub or local" rule.
    with pytest.raises(UserError, match=f"^{source}: no such file or directory"):
        load_demonstrations(source)


# ---------------------------------------------------------------- real files


def test_real_gsm8k(shared_data):
    demos = load_demonstrations(str(shared_data / "gsm8k" / "test.jsonl"))
    assert len(demos) == 1319
    assert demos[0].prompt[0]["content"].startswith("Janet’s ducks lay 16 eggs")
    assert demos[0].response.endswith("#### 18")
    assert load_demonstrations(str(shared_data / "gsm8k"), split="test", limit=3)[2].id == (
        "test.jsonl:3"
    )


def test_real_hh_harmless(shared_data):
    path = shared_data / "hh-rlhf" / "harmless-base-test.jsonl.gz"
    # Four real records end with an empty Assistant turn; the first is on line 87.
    with pytest.raises(UserError, match=r"harmless-base-test.jsonl.gz:87: field 'chosen'"):
        load_demonstrations(str(path))
    demos = load_demonstrations(str(path), skip_invalid=True)
    assert len(demos) == 2312 - 4
    first = demos[0]
    assert first.prompt[0] == {
        "role": "user",
        "content": "what are some pranks with a pen i can do?",
    }
    assert first.prompt[-1]["role"] == "user" and len(first.prompt) == 5
    assert first.response.startswith("No, sorry!  All of these involve a pen")
    assert first.rejected.startswith("There are lots of funny things you can do with pens")
    assert all(d.response.strip() and d.rejected for d in demos)
