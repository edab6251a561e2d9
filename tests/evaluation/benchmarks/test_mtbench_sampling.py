"""MT-Bench answers at FastChat's per-category temperatures, seeded from the run's seed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gsil_bench.backend import generation
from gsil_bench.config import RunConfig
from gsil_bench.errors import UserError
from gsil_bench.evaluation.benchmark import BENCHMARKS, parse_options
from gsil_bench.evaluation.benchmarks.mtbench import Question, load_questions
from gsil_bench.evaluation.benchmarks.mtbench_sampling import (
    answer_questions,
    answer_temperature,
    temperature_groups,
)

sys.path.insert(0, str(Path(__file__).parents[1]))
from judge_server import DATA, tiny_chat_model  # noqa: E402

MT = DATA / "mt-bench"

# Written by hand from lm-sys/FastChat 0e6d3e4, fastchat/llm_judge/common.py (temperature_config)
# and gen_model_answer.py (0.7 for a category not in the table).
FASTCHAT_TABLE = [
    ("writing", 0.7),
    ("roleplay", 0.7),
    ("extraction", 0.0),
    ("math", 0.0),
    ("coding", 0.0),
    ("reasoning", 0.0),
    ("stem", 0.1),
    ("humanities", 0.1),
    ("arena-hard-200", 0.0),
    ("poetry", 0.7),  # not in the table
]

QUESTIONS = [
    Question(1, "writing", ("Please write a short poem about the sea.", "Now about the sky.")),
    Question(2, "math", ("What is 12 plus 7?", "Double it.")),
    Question(3, "stem", ("How do I bake bread?", "And without yeast?")),
    Question(4, "roleplay", ("Say hello as a pirate.", "Now say goodbye.")),
    Question(5, "coding", ("Write a function that adds two numbers.", "Add a docstring.")),
]


@pytest.mark.parametrize(("category", "temperature"), FASTCHAT_TABLE)
def test_fastchat_temperature_per_category(category, temperature):
    assert answer_temperature(category, "fastchat") == temperature
    assert answer_temperature(category, "greedy") == 0.0


def test_groups_by_temperature_in_order_of_first_appearance():
    groups = temperature_groups(QUESTIONS, "fastchat")
    assert groups == {0.7: [0, 3], 0.0: [1, 4], 0.1: [2]}
    assert list(groups) == [0.7, 0.0, 0.1]
    assert temperature_groups(QUESTIONS, "greedy") == {0.0: [0, 1, 2, 3, 4]}
    with pytest.raises(UserError, match="'hot' is not fastchat or greedy"):
        temperature_groups(QUESTIONS, "hot")  # type: ignore[arg-type]


@pytest.mark.skipif(not (MT / "question.jsonl").is_file(), reason=f"no MT-Bench files in {MT}")
def test_real_questions_split_20_40_20():
    # MT-Bench: 10 questions in each of 8 categories; writing+roleplay at 0.7, stem+humanities
    # at 0.1, extraction+math+coding+reasoning greedy.
    groups = temperature_groups(load_questions(MT), "fastchat")
    assert {t: len(ix) for t, ix in groups.items()} == {0.7: 20, 0.1: 20, 0.0: 40}


def test_one_generation_call_per_temperature_and_turn(monkeypatch):
    calls = []

    def fake_generate(model, tokenizer, prompts, **kw):
        calls.append((len(prompts), kw["do_sample"], kw["temperature"], kw["seed"]))
        return [f" answer {len(calls)}-{i} " for i in range(len(prompts))]

    monkeypatch.setattr(generation, "generate", fake_generate)
    model, tokenizer = tiny_chat_model()
    answers = answer_questions(model, tokenizer, QUESTIONS, run_seed=7, max_new_tokens=4)
    # Groups 0.7 (2 questions), 0.0 (2), 0.1 (1); turn 1 then turn 2 within each group.
    assert [c[:3] for c in calls] == [
        (2, True, 0.7),
        (2, True, 0.7),
        (2, False, 1.0),
        (2, False, 1.0),
        (1, True, 0.1),
        (1, True, 0.1),
    ]
    assert len({c[3] for c in calls}) == 6  # a seed per group and turn
    assert answers[3] == ["answer 1-1", "answer 2-1"]  # roleplay: second row of group 0.7
    assert answers[2] == ["answer 5-0", "answer 6-0"]
    first = [c[3] for c in calls]
    calls.clear()
    answer_questions(model, tokenizer, QUESTIONS, run_seed=7, max_new_tokens=4)
    assert [c[3] for c in calls] == first  # seeds depend on the run seed only
    calls.clear()
    answer_questions(model, tokenizer, QUESTIONS, run_seed=8, max_new_tokens=4)
    assert not {c[3] for c in calls} & set(first)


def test_tiny_model_fastchat_run_is_reproducible_and_greedy_categories_match():
    model, tokenizer = tiny_chat_model()

    def answer(policy, seed):
        return answer_questions(
            model,
            tokenizer,
            QUESTIONS,
            policy=policy,
            run_seed=seed,
            max_new_tokens=8,
            batch_size=1,  # no padding: greedy answers cannot depend on the batch
            progress=False,
        )

    sampled = answer("fastchat", 3)
    assert answer("fastchat", 3) == sampled
    greedy = answer("greedy", 3)
    assert answer("greedy", 99) == greedy  # greedy ignores the seed
    for i in (1, 4):  # math and coding are greedy under FastChat's table
        assert sampled[i] == greedy[i]
    assert sampled[0] != greedy[0] and sampled[3] != greedy[3]  # writing, roleplay sampled
    other_seed = answer("fastchat", 4)
    assert other_seed[0] != sampled[0]
    assert other_seed[1] == sampled[1]


def test_options_and_cache_fingerprint():
    mtbench = BENCHMARKS.get("mt-bench")
    assert parse_options(mtbench, {}, "eval.options.mt-bench").temperatures == "fastchat"
    with pytest.raises(UserError, match=r"^eval\.options\.mt-bench\.temperatures: "):
        parse_options(mtbench, {"temperatures": "hot"}, "eval.options.mt-bench")

    def fingerprint(seed, **options):
        run = RunConfig(seed=seed, eval={"suites": ["mt-bench"], "options": {"mt-bench": options}})
        return mtbench.content_fingerprint(run)

    assert fingerprint(1) == fingerprint(1, temperatures="fastchat") != fingerprint(2)
    assert fingerprint(1, temperatures="greedy") == fingerprint(2, temperatures="greedy")
    assert fingerprint(1, temperatures="greedy") != fingerprint(1)
