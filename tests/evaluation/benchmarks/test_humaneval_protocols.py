"""HumanEval protocols: the Eurus chat prompt, prefill, decoding and extraction, written out by
hand from OpenBMB/Eurus eval/Coding/human_eval/evaluate_human_eval.py (commit fd72db1)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gsil_bench.config import EvalConfig, RunConfig
from gsil_bench.errors import UserError
from gsil_bench.evaluation.benchmark import BENCHMARKS, parse_options
from gsil_bench.evaluation.benchmarks.humaneval import (
    load_problems,
    run_humaneval,
    score_samples,
)
from gsil_bench.evaluation.benchmarks.humaneval_protocols import (
    PROTOCOLS,
    eurus_completion,
    eurus_user_turn,
    protocol_named,
    sampling_temperature,
)

# The test helpers sit in tests/evaluation; pytest runs in importlib mode.
sys.path.insert(0, str(Path(__file__).parents[1]))
from judge_server import HUMANEVAL as SHARED_HUMANEVAL  # noqa: E402
from judge_server import needs  # noqa: E402

needs_humaneval = needs(SHARED_HUMANEVAL)

# HumanEval/0's prompt, copied from the problems file.
HE0_PROMPT = (
    "from typing import List\n\n\n"
    "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
    '    """ Check if in given list of numbers, are any two numbers closer to each other than\n'
    "    given threshold.\n"
    "    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)\n"
    "    False\n"
    "    >>> has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)\n"
    "    True\n"
    '    """\n'
)
# make_conv's f-strings with signature = "has_close_elements(numbers: List[float], threshold:
# float) -> bool" (the regex's group: name to the ")" before ":\n").
HE0_USER_TURN = (
    "Write Python code to solve the task.\n"
    "Write a Python function `has_close_elements(numbers: List[float], threshold: float) -> bool`"
    " to solve the following problem: Present code in ```python```\n"
    "```python\n" + HE0_PROMPT + "```\n"
)
TOY = {
    "task_id": "toy/0",
    "prompt": "def add(a, b):\n    '''Add two numbers.'''\n",
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n",
    "entry_point": "add",
}
# Problems with helpers in the prompt (10, 32, 38, 50), typing imports (0), others plain.
CANONICAL_IDS = [0, 10, 32, 38, 50, 53, 100, 129, 150, 163]


@needs_humaneval
def test_eurus_user_turn_of_a_real_problem_is_the_scripts():
    problem = load_problems(SHARED_HUMANEVAL)["HumanEval/0"]
    assert problem["prompt"] == HE0_PROMPT
    assert eurus_user_turn(problem) == HE0_USER_TURN


@needs_humaneval
def test_eurus_prompt_is_the_chat_template_then_the_prefill(tiny_tokenizer):
    problem = load_problems(SHARED_HUMANEVAL)["HumanEval/0"]
    rendered = tiny_tokenizer.apply_chat_template(
        [{"role": "user", "content": HE0_USER_TURN}], add_generation_prompt=True, tokenize=False
    )
    assert PROTOCOLS["eurus"].prompt(tiny_tokenizer, problem) == rendered + " ```python\ndef"
    assert PROTOCOLS["completion"].prompt(tiny_tokenizer, problem) == HE0_PROMPT


def test_eurus_extraction_of_hand_made_replies():
    # The model continues after the prefill's "def": the code runs to the first fence.
    closed = " add(a, b):\n    return a + b\n```\n\nThis adds ```a``` and ```b```."
    assert eurus_completion(closed) == "def  add(a, b):\n    return a + b\n"
    unclosed = " add(a, b):\n    return a + b\n"
    assert eurus_completion(unclosed) == "def  add(a, b):\n    return a + b\n"
    # A reply that repeats the prefill leaves nothing before the fence, as in the script.
    assert eurus_completion("```python\ndef add(a, b):\n    return a + b\n```") == "def "
    assert eurus_completion("") == "def "
    programs = [eurus_completion(r) for r in (closed, unclosed, "```python\ndef add(a, b):")]
    samples = [{"task_id": "toy/0", "completion": c} for c in programs]
    result = score_samples(samples, {"toy/0": TOY}, k=(1,), progress=False, workers=2)
    assert [r["status"] for r in result.items[0]["results"]] == ["passed", "passed", "failed"]


def test_signature_regex_failure_names_the_problem():
    with pytest.raises(UserError, match=r"problem toy/9: no 'def sub\.\.\.:' line"):
        eurus_user_turn({**TOY, "task_id": "toy/9", "entry_point": "sub"})


@needs_humaneval
def test_canonical_solutions_as_eurus_replies_pass():
    problems = load_problems(SHARED_HUMANEVAL)
    chosen = {f"HumanEval/{i}": problems[f"HumanEval/{i}"] for i in CANONICAL_IDS}
    replies, stubs = [], []
    for problem in chosen.values():
        # What a model writes after "...```python\ndef": the rest of the entry point's
        # definition line and docstring, the body, a closing fence and some prose.
        head = problem["prompt"].split(f"def {problem['entry_point']}(", 1)[1]
        rest = f" {problem['entry_point']}(" + head
        replies.append(rest + problem["canonical_solution"] + "```\n\nIt works as follows.")
        stubs.append(rest + "```\n")  # docstring only: returns None
    samples = [
        {"task_id": t, "completion": eurus_completion(r)}
        for t, r in zip(chosen, replies, strict=True)
    ]
    result = score_samples(samples, chosen, k=(1,), progress=False, workers=2)
    assert result.metrics["pass@1"] == 1.0, [i for i in result.items if i["score"] < 1][:2]
    assert result.metrics["n_tasks"] == 10
    empty = [
        {"task_id": t, "completion": eurus_completion(r)}
        for t, r in zip(chosen, stubs, strict=True)
    ]
    assert score_samples(empty, chosen, k=(1,), progress=False, workers=2).metrics["pass@1"] == 0


def test_decoding_follows_the_protocol_unless_overridden():
    eurus, completion = protocol_named("eurus"), protocol_named("completion")
    assert (eurus.temperature, eurus.max_new_tokens) == (0.2, 1024)  # the script's values
    assert sampling_temperature(eurus, 1, None) == 0.2
    assert sampling_temperature(eurus, 1, 0.0) == 0.0  # greedy by explicit override
    assert sampling_temperature(completion, 1, None) == 0.0
    assert sampling_temperature(completion, 5, None) == 0.8
    with pytest.raises(UserError, match="temperature 0 .greedy. gives all 5 samples"):
        sampling_temperature(eurus, 5, 0.0)
    with pytest.raises(UserError, match="protocol 'raw' unknown; known: completion, chat, eurus"):
        protocol_named("raw")
    humaneval = BENCHMARKS.get("humaneval")
    with pytest.raises(UserError, match=r"^eval\.options\.humaneval\.protocol: "):
        parse_options(humaneval, {"protocol": "raw"}, "eval.options.humaneval")
    with pytest.raises(UserError, match=r"humaneval\.temperature: 0 .greedy. gives all 4 samples"):
        parse_options(
            humaneval, {"samples_per_task": 4, "temperature": 0}, "eval.options.humaneval"
        )


def _toy_file(tmp_path: Path) -> Path:
    path = tmp_path / "problems.jsonl"
    path.write_text(json.dumps(TOY) + "\n")
    return path


def test_the_benchmark_runs_eurus_and_records_it(tmp_path, tiny_model, tiny_tokenizer):
    humaneval = BENCHMARKS.get("humaneval")
    options = parse_options(
        humaneval,
        {"problems": str(_toy_file(tmp_path)), "protocol": "eurus", "progress": False},
        "eval.options.humaneval",
    )
    cfg = EvalConfig(suites=["humaneval"], max_new_tokens=4, batch_size=2)
    (result,) = humaneval.run(tiny_model, tiny_tokenizer, cfg, options, RunConfig())
    assert result.details["protocol"] == "eurus"
    assert "fd72db1861ef009fede0dbe5bcc9893c9012dacf" in result.details["protocol_source"]
    assert result.details["decoding"] == "sampling t=0.2"
    assert result.details["max_new_tokens"] == 4  # eval.max_new_tokens set: it wins
    assert result.details["template"] == "chat template"
    greedy = parse_options(humaneval, {**options.model_dump(), "temperature": 0}, "o")
    (again,) = humaneval.run(tiny_model, tiny_tokenizer, cfg, greedy, RunConfig())
    assert again.details["decoding"] == "greedy" and again.details["protocol"] == "eurus"


def test_chat_flag_is_deprecated_for_the_chat_protocol(tmp_path, tiny_model, tiny_tokenizer):
    path = _toy_file(tmp_path)
    with pytest.warns(DeprecationWarning, match="use protocol='chat'"):
        result = run_humaneval(
            tiny_model, tiny_tokenizer, problems_path=path, chat=True, max_new_tokens=2
        )
    assert result.details["protocol"] == "chat" and result.details["max_new_tokens"] == 2
    with pytest.warns(DeprecationWarning), pytest.raises(UserError, match="contradicts"):
        run_humaneval(tiny_model, tiny_tokenizer, problems_path=path, chat=True, protocol="eurus")
    plain = run_humaneval(tiny_model, tiny_tokenizer, problems_path=path, max_new_tokens=2)
    assert plain.details["protocol"] == "completion" and plain.details["decoding"] == "greedy"
