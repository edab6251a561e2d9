"""Local judges: an HF causal LM writing judgements, and missing local models."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gsil_bench.errors import UserError
from gsil_bench.evaluation.judging.base import make_judge
from gsil_bench.evaluation.judging.local import HFJudge
from gsil_bench.evaluation.judging.reward import RewardModelJudge

# The judge server helper sits in tests/evaluation; pytest runs in importlib mode.
sys.path.insert(0, str(Path(__file__).parents[1]))
from judge_server import tiny_chat_model  # noqa: E402


def _prompts(n: int) -> list[list[dict[str, str]]]:
    return [
        [
            {"role": "system", "content": 'Rate it: "[[rating]]".'},
            {
                "role": "user",
                "content": f"[The Start of Assistant's Answer]\n{'x' * i}\n"
                "[The End of Assistant's Answer]",
            },
        ]
        for i in range(n)
    ]


def test_hf_judge_in_memory_and_from_spec(tmp_path):
    model, tokenizer = tiny_chat_model()
    judge = HFJudge(model, tokenizer, max_new_tokens=4, progress=False)
    out = judge.complete(_prompts(3))
    assert len(out) == 3 and all(isinstance(t, str) for t in out)
    assert judge.identity["kind"] == "hf"
    model.save_pretrained(tmp_path / "judge")
    tokenizer.save_pretrained(tmp_path / "judge")
    loaded = make_judge(f"hf:{tmp_path / 'judge'}", max_new_tokens=4, progress=False)
    assert loaded.complete(_prompts(3)) == out
    assert loaded.identity["model"] == str(tmp_path / "judge")


def test_local_judges_report_missing_models(tmp_path):
    with pytest.raises(UserError, match="could not be loaded"):
        HFJudge(tmp_path / "nothing-here")
    with pytest.raises(UserError, match="could not be loaded"):
        RewardModelJudge(str(tmp_path / "nothing-here"))
