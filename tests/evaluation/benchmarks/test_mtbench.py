"""MT-Bench end to end on the real question files, graded by a judge server on 127.0.0.1."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from gsil_bench.backend.chat import render_prompt
from gsil_bench.backend.generation import generate
from gsil_bench.errors import UserError
from gsil_bench.evaluation.benchmarks.mtbench import (
    Question,
    grade_mtbench,
    load_answers,
    load_questions,
    parse_rating,
    run_mtbench,
    select_questions,
)
from gsil_bench.evaluation.chat_generation import answer_conversations
from gsil_bench.evaluation.judging.http import OpenAIJudge
from gsil_bench.evaluation.judging.templates import load_judge_templates

# The judge server helper sits in tests/evaluation; pytest runs in importlib mode.
sys.path.insert(0, str(Path(__file__).parents[1]))
from judge_server import DATA, JudgeServer, judged_answer, rating_for, tiny_chat_model  # noqa: E402

MT = DATA / "mt-bench"
needs_data = pytest.mark.skipif(
    not (MT / "question.jsonl").is_file(), reason=f"MT-Bench files not found in {MT}"
)


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        ("Rating: [[7]]", 7.0),
        ("Rating: [[8.5]]", 8.5),
        ("Rating: [[ 9 ]]", 9.0),
        ("Rating: [[10]]", 10.0),
        ("Rating: [6]", 6.0),  # FastChat's fallback pattern
        ("First [[3]], later [[9]]", 3.0),  # FastChat takes the first match
        ("[[2]] beats the fallback [5]", 2.0),
        ("Rating: [[11]]", -1.0),
        ("Rating: [[0]]", -1.0),
        ("Rating: [[seven]]", -1.0),
        ("I would rather not say.", -1.0),
        ("", -1.0),
    ],
)
def test_parse_rating(text, rating):
    assert parse_rating(text) == rating


def test_answer_conversations_conditions_on_own_answers():
    model, tokenizer = tiny_chat_model()
    turns = [["Add 1 and 2.", "Now double it."], ["Write a poem."]]
    answers = answer_conversations(
        model, tokenizer, turns, max_new_tokens=6, batch_size=2, progress=False
    )
    assert [len(a) for a in answers] == [2, 1]
    history = [
        {"role": "user", "content": turns[0][0]},
        {"role": "assistant", "content": answers[0][0]},
        {"role": "user", "content": turns[0][1]},
    ]
    expected = generate(
        model, tokenizer, [render_prompt(tokenizer, history)], max_new_tokens=6, progress=False
    )
    assert answers[0][1] == expected[0].strip()


@needs_data
def test_loaders_read_fastchat_files():
    questions = load_questions(MT)
    assert len(questions) == 80 and all(len(q.turns) == 2 for q in questions)
    assert load_questions(MT / "question.jsonl") == questions
    templates = load_judge_templates(MT / "judge_prompts.jsonl")
    assert {"single-v1", "single-math-v1-multi-turn", "pair-v2"} <= set(templates)
    references = load_answers(MT / "reference_answer_gpt-4.jsonl")
    assert len(references[111]) == 2
    picked = select_questions(questions, limit=4)
    assert [q.category for q in picked] == ["writing", "roleplay", "reasoning", "math"]
    assert [q.question_id for q in select_questions(questions, ids=[130, 81])] == [130, 81]
    with pytest.raises(UserError, match="not found"):
        select_questions(questions, ids=[9999])


@needs_data
def test_mtbench_end_to_end_against_judge_server(tmp_path):
    model, tokenizer = tiny_chat_model()
    references = load_answers(MT / "reference_answer_gpt-4.jsonl")
    with JudgeServer() as server:
        judge = OpenAIJudge(server.base_url, "fake-judge", cache_dir=tmp_path, progress=False)
        result = run_mtbench(
            model,
            tokenizer,
            judge,
            questions_source=MT,
            limit=4,
            max_new_tokens=8,
            progress=False,
        )
    assert result.benchmark == "mt-bench" and result.primary == "score"
    assert len(result.items) == 8 and len(server.requests) == 8
    by_id = {item["id"]: item for item in result.items}
    assert set(by_id) == {f"{q}-turn{t}" for q in (81, 91, 101, 111) for t in (1, 2)}
    assert by_id["111-turn1"]["template"] == "single-math-v1"
    assert by_id["111-turn2"]["template"] == "single-math-v1-multi-turn"
    assert by_id["101-turn1"]["template"] == "single-math-v1"  # reasoning uses references too
    assert by_id["81-turn2"]["template"] == "single-v1-multi-turn"

    prompts = [r["body"]["messages"][-1]["content"] for r in server.requests]
    for item in result.items:
        assert item["valid"] and item["score"] == rating_for(item["answer"])
    # Turn 2's prompt shows the model's own turn-1 answer; math prompts carry the reference.
    math_turn2 = next(p for p in prompts if "### Reference answer:" in p and "Assistant A" in p)
    assert references[111][1] in math_turn2 or references[101][1] in math_turn2
    assert any(judged_answer(p) == by_id["111-turn2"]["answer"] for p in prompts)
    assert any(by_id["111-turn1"]["answer"] in p and "### User:" in p for p in prompts)

    scores = [item["score"] for item in result.items]
    assert result.metrics["score"] == pytest.approx(sum(scores) / 8)
    turn2 = [i["score"] for i in result.items if i["turn"] == 2]
    assert result.metrics["score_turn2"] == pytest.approx(sum(turn2) / 4)
    assert set(result.metrics) >= {"score/writing", "score/roleplay", "score/math"}
    assert result.details["judge"]["model"] == "fake-judge"
    assert "single-math-v1" in result.details["templates"]
    # FastChat's temperatures (common.py temperature_config) are the default and are recorded.
    used = result.details["temperatures"]
    assert used["policy"] == "fastchat" and used["seed"] == 0
    assert used["by_category"] == {"writing": 0.7, "roleplay": 0.7, "reasoning": 0.0, "math": 0.0}
    assert by_id["81-turn2"]["temperature"] == 0.7 and by_id["111-turn1"]["temperature"] == 0.0
    json.dumps(result.to_dict())  # the record is JSON-serialisable


@needs_data
def test_grade_answers_made_elsewhere_counts_unrated():
    questions = [
        Question(1, "writing", ("Q1", "Q2")),
        Question(2, "math", ("What is 2+2?", "And 3+3?"), ("4", "6")),
    ]
    answers = {1: ["short", "a longer answer"], 2: ["4", "6"]}

    def picky(messages):  # no rating for math prompts
        return "no verdict" if "Reference" in messages[-1]["content"] else "[[6]]"

    templates = load_judge_templates(MT)
    with JudgeServer(reply=picky) as server:
        judge = OpenAIJudge(server.base_url, "picky", progress=False)
        result = grade_mtbench(questions, answers, judge, templates)
    assert result.details["n_unrated"] == 2
    assert [i["score"] for i in result.items] == [6.0, 6.0, -1.0, -1.0]
    assert result.metrics["score"] == 6.0
    assert math.isnan(result.metrics["score/math"])
    with pytest.raises(UserError, match="question 2: 1 answer turn"):
        grade_mtbench(questions, {1: ["a", "b"], 2: ["4"]}, judge, templates)


def test_missing_templates_are_a_user_error(tmp_path):
    (tmp_path / "question.jsonl").write_text(
        json.dumps({"question_id": 1, "category": "writing", "turns": ["a", "b"]}) + "\n"
    )
    with pytest.raises(UserError, match="judge_prompts"):
        run_mtbench(None, None, None, questions_source=tmp_path, progress=False)
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(UserError, match=r"bad.jsonl:1: not valid JSON"):
        load_questions(tmp_path / "bad.jsonl")
