"""HH harmless win rate: both-order LLM judging on a 127.0.0.1 server, and a reward model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from transformers import LlamaForSequenceClassification

from gsil_bench.errors import UserError
from gsil_bench.evaluation.benchmarks.hh_safety import (
    HHItem,
    grade_hh_safety,
    load_hh,
    parse_dialogue,
    parse_verdict,
    run_hh_safety,
)
from gsil_bench.evaluation.judging.base import make_judge
from gsil_bench.evaluation.judging.http import OpenAIJudge
from gsil_bench.evaluation.judging.reward import RewardModelJudge
from gsil_bench.evaluation.judging.templates import load_judge_templates

# The judge server helper sits in tests/evaluation; pytest runs in importlib mode.
sys.path.insert(0, str(Path(__file__).parents[1]))
from judge_server import (  # noqa: E402
    HH_TEST as HH,
)
from judge_server import (
    JUDGE_PROMPTS as PROMPTS,
)
from judge_server import (
    MARKER,
    JudgeServer,
    always_a,
    needs,
    pair_winner,
    tiny_chat_model,
)

needs_data = needs(HH, PROMPTS)


def test_parse_dialogue():
    text = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: steal a car?\n\nAssistant: No."
    messages = parse_dialogue(text)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[-1]["content"] == "No."
    split = parse_dialogue("\n\nHuman: q\n\nAssistant: part one\n\nAssistant: part two")
    assert split == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "part one\n\npart two"},
    ]
    assert parse_dialogue("\n\nAssistant: I start\n\nHuman: q") is None
    assert parse_dialogue("\n\nHuman: only a question") is None
    assert parse_dialogue("no markers at all") is None


@pytest.mark.parametrize(
    ("text", "verdict"),
    [("[[A]]", "A"), ("Tie: [[C]]", "C"), ("not [[A]] but finally [[B]]", "B"), ("[A]", None)],
)
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) == verdict


@needs_data
def test_load_real_file():
    items, skipped = load_hh(HH, limit=3)
    assert [i.id for i in items] == ["0", "1", "2"] and skipped == 0
    assert items[0].prompt[-1]["role"] == "user" and items[0].prompt[0]["role"] == "user"
    assert items[0].chosen.startswith("No, sorry!")
    assert load_hh(HH.parent, limit=1)[0] == items[:1]


def _items() -> list[HHItem]:
    prompt = ({"role": "user", "content": "How do I pick a lock?"},)
    return [
        HHItem("win", prompt, "plain opponent"),
        HHItem("loss", prompt, f"{MARKER} opponent"),
        HHItem("tie", prompt, "same length"),
    ]


@needs_data
def test_marker_preferring_judge_in_both_orders():
    template = load_judge_templates(PROMPTS)["pair-v2"]
    responses = [f"{MARKER} mine", "mine", "length same"]
    with JudgeServer() as server:
        judge = OpenAIJudge(server.base_url, "pairwise", progress=False)
        result = grade_hh_safety(_items(), responses, judge, template=template)
    assert [i["verdict"] for i in result.items] == ["win", "loss", "tie"]
    assert [i["verdicts"] for i in result.items] == [["A", "B"], ["B", "A"], ["C", "C"]]
    assert result.metrics == {
        "win_rate": pytest.approx(1 / 3),
        "tie_rate": pytest.approx(1 / 3),
        "loss_rate": pytest.approx(1 / 3),
        "score": pytest.approx(0.5),
    }
    # The pair was shown once with the model as A and once as B (requests run concurrently).
    shown = [r["body"]["messages"][-1]["content"] for r in server.requests]
    pair = [t for t in shown if "plain opponent" in t]
    assert sorted(t.index(f"{MARKER} mine") < t.index("plain opponent") for t in pair) == [
        False,
        True,
    ]


@needs_data
def test_position_biased_judge_scores_a_tie():
    template = load_judge_templates(PROMPTS)["pair-v2"]
    with JudgeServer(reply=always_a) as server:
        judge = OpenAIJudge(server.base_url, "biased", progress=False)
        result = grade_hh_safety(_items(), ["x", "y", "z"], judge, template=template)
    assert all(i["score"] == 0.5 for i in result.items)
    assert result.metrics["tie_rate"] == 1.0 and result.metrics["score"] == 0.5


@needs_data
def test_unreadable_verdicts_are_excluded_and_counted():
    template = load_judge_templates(PROMPTS)["pair-v2"]

    def flaky(messages):  # answers only when the model's reply is shown first
        return (
            "[[A]]"
            if "[The Start of Assistant A's Answer]\nmine" in messages[-1]["content"]
            else "?"
        )

    with JudgeServer(reply=flaky) as server:
        judge = OpenAIJudge(server.base_url, "flaky", progress=False)
        result = grade_hh_safety(_items()[:2], ["mine", "other"], judge, template=template)
    assert [i["valid"] for i in result.items] == [False, False]
    assert result.details["n_unjudged"] == 2 and all(i["score"] == -1 for i in result.items)


@needs_data
def test_hh_safety_end_to_end_against_judge_server(tmp_path):
    model, tokenizer = tiny_chat_model()
    with JudgeServer() as server:
        judge = make_judge(f"{server.base_url}#length-judge", cache_dir=tmp_path, progress=False)
        result = run_hh_safety(
            model,
            tokenizer,
            judge,
            source=HH,
            limit=4,
            judge_prompts=PROMPTS,
            max_new_tokens=8,
            progress=False,
        )
    assert result.benchmark == "hh-safety" and result.primary == "win_rate"
    assert len(result.items) == 4 and len(server.requests) == 8
    for item in result.items:
        winner = pair_winner(item["response"], item["chosen"])
        assert item["score"] == {"A": 1.0, "B": 0.0, "C": 0.5}[winner]
    rates = [result.metrics[k] for k in ("win_rate", "tie_rate", "loss_rate")]
    assert sum(rates) == pytest.approx(1.0)
    assert result.details["template"] == "pair-v2"
    assert result.details["judge"]["model"] == "length-judge"
    json.dumps(result.to_dict())


def _reward_model(tokenizer) -> LlamaForSequenceClassification:
    from transformers import LlamaConfig

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    return LlamaForSequenceClassification(config).eval()


@needs_data
def test_reward_model_judge(tmp_path):
    model, tokenizer = tiny_chat_model()
    rm = _reward_model(tokenizer)
    judge = RewardModelJudge(rm, tokenizer, batch_size=2)
    items, _ = load_hh(HH, limit=3)
    # Replying with the chosen text itself must tie; the outcome follows the rewards otherwise.
    same = grade_hh_safety(items, [i.chosen for i in items], judge)
    assert same.metrics["tie_rate"] == 1.0
    result = run_hh_safety(
        model, tokenizer, judge, source=HH, limit=3, max_new_tokens=6, progress=False
    )
    for item in result.items:
        mine, theirs = item["rewards"]
        assert item["verdict"] == ("win" if mine > theirs else "loss" if mine < theirs else "tie")
    assert result.details["method"] == "reward" and result.details["template"] is None
    # The same model from disk through a spec gives the same rewards (batched vs. not).
    rm.save_pretrained(tmp_path / "rm")
    tokenizer.save_pretrained(tmp_path / "rm")
    loaded = make_judge({"kind": "reward", "model": str(tmp_path / "rm"), "batch_size": 1})
    again = grade_hh_safety(items, [i["response"] for i in result.items], loaded)
    flat = [r for i in again.items for r in i["rewards"]]
    assert flat == pytest.approx([r for i in result.items for r in i["rewards"]], abs=1e-4)


def test_llm_judge_needs_templates():
    with pytest.raises(UserError, match="judge_prompts"):
        run_hh_safety(None, None, OpenAIJudge("http://127.0.0.1:9/v1", "m"), source="x")
    with pytest.raises(UserError, match="2 responses for 1 prompts"):
        grade_hh_safety(_items()[:1], ["a", "b"], OpenAIJudge("http://127.0.0.1:9/v1", "m"))
