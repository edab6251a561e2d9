"""GSM8K: extraction and scoring identical to lm-eval's gsm8k task, prompts, loading."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from gsil_bench.errors import UserError
from gsil_bench.evaluation.benchmarks.gsm8k import (
    cut_at_stop,
    default_fewshot,
    gsm8k_chat_messages,
    load_gsm8k,
    read_records,
    run_gsm8k,
)
from gsil_bench.evaluation.benchmarks.gsm8k_scoring import (
    FALLBACK,
    extract_flexible,
    extract_strict,
    gold_number,
    gsm8k_prompt,
    normalize,
    score_gsm8k,
)

SHARED_GSM8K = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "gsm8k"
needs_gsm8k = pytest.mark.skipif(
    not (SHARED_GSM8K / "test.jsonl").is_file(),
    reason=f"real GSM8K files not found at {SHARED_GSM8K}",
)

TEXTS = [
    "The answer is 5.",
    "#### 1,000",
    "so $3.50 each, total $7.",
    "-3 and then -4.",
    "no numbers here",
    "#### -2.5\nmore 7",
    "12,345.67 dollars",
    "1.",
    "..",
    "$$",
    "answer: 4,",
    "It is 10. #### 12",
    "#### 5 and #### 6",
    "",
]
GOLDS = ["#### 5", "#### 7", "#### 1000", "#### -4", "#### 12", "#### 12345.67"]


def styled(answer: str) -> str:
    """'the final answer is $1,234.' built from the gold number with thousands separators."""
    gold = gold_number(answer)
    number = float(gold) if "." in gold else int(gold)
    return f"Let me work it out. The final answer is ${number:,}."


def test_strict_takes_the_first_number_after_hashes():
    assert extract_strict("blah\n#### 72") == "72"
    assert extract_strict("#### 5 and #### 6") == "5"
    assert extract_strict("#### -1,234.5") == "-1,234.5"
    assert extract_strict("The answer is 72") == FALLBACK


def test_flexible_takes_the_last_number():
    assert extract_flexible("3 apples, then 4, so 7 in total") == "7"
    assert extract_flexible("the final answer is $1,234.") == "$1,234."
    assert extract_flexible("nothing") == FALLBACK


def test_normalisation_drops_commas_dollars_prefix_and_trailing_dot():
    assert normalize("$1,234.") == "1234"
    assert normalize("Janet sells 16 eggs.\n#### 18") == "18"
    assert gold_number("a\n#### 1,000") == "1000"
    assert normalize("ABC") == "abc"


def test_extraction_matches_lm_eval_itself():
    filters = pytest.importorskip("lm_eval.filters.extraction")
    metrics = pytest.importorskip("lm_eval.api.metrics")
    strict = filters.RegexFilter(regex_pattern=r"#### (\-?[0-9\.\,]+)", group_select=0)
    flexible = filters.RegexFilter(regex_pattern=r"(-?[$0-9.,]{2,})|(-?[0-9]+)", group_select=-1)
    for text in TEXTS:
        assert extract_strict(text) == strict.apply([[text]], None)[0][0]
        assert extract_flexible(text) == flexible.apply([[text]], None)[0][0]
        for gold in GOLDS:
            for mine in (extract_strict(text), extract_flexible(text)):
                theirs = metrics.exact_match_hf_evaluate(
                    [mine],
                    [gold],
                    regexes_to_ignore=[",", "\\$", "(?s).*#### ", "\\.$"],
                    ignore_case=True,
                    ignore_punctuation=False,
                )["exact_match"]
                assert float(theirs) == float(normalize(mine) == gold_number(gold)), (text, gold)


def test_score_reports_strict_flexible_and_items():
    records = [
        {"answer": "x\n#### 7", "completion": "so 7\n#### 7"},
        {"answer": "x\n#### 1,200", "completion": "The answer is $1,200."},
        {"answer": "x\n#### 3", "completion": "I think 4"},
    ]
    result = score_gsm8k(records)
    assert result.benchmark == "gsm8k" and result.primary == "exact_match"
    assert result.metrics["exact_match"] == pytest.approx(1 / 3)
    assert result.metrics["exact_match_flexible"] == pytest.approx(2 / 3)
    assert result.metrics["n"] == 3
    assert [item["id"] for item in result.items] == [0, 1, 2]
    assert result.items[1] | {"strict": FALLBACK} == result.items[1]


def test_prompt_is_lm_eval_format():
    shots = [{"question": "Q1?", "answer": "A1\n#### 1"}, {"question": "Q2?", "answer": "#### 2"}]
    expected = (
        "Question: Q1?\nAnswer: A1\n#### 1\n\n"
        "Question: Q2?\nAnswer: #### 2\n\n"
        "Question: Q?\nAnswer:"
    )
    assert gsm8k_prompt("Q?", shots) == expected
    assert gsm8k_prompt("Q?") == "Question: Q?\nAnswer:"
    assert gsm8k_chat_messages("Q?") == [{"role": "user", "content": "Question: Q?\nAnswer:"}]


def test_default_fewshot_is_deterministic_and_seeded_like_lm_eval():
    train = [{"question": f"q{i}", "answer": f"#### {i}"} for i in range(100)]
    shots = default_fewshot(train)
    assert shots == default_fewshot(train) == random.Random(1234).sample(train, 5)
    samplers = pytest.importorskip("lm_eval.api.samplers")
    assert shots == list(samplers.ContextSampler(train, rnd=1234).sample(5))
    with pytest.raises(UserError, match="need 5"):
        default_fewshot(train[:3])


def test_cut_at_stop():
    assert cut_at_stop(" 4 + 3 = 7\n#### 7\n\nQuestion: next") == " 4 + 3 = 7\n#### 7\n\n"
    assert cut_at_stop("no stop") == "no stop"


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_load_local_file_and_directory(tmp_path):
    rows = [json.dumps({"question": f"q{i}", "answer": f"#### {i}"}) for i in range(4)]
    _write(tmp_path / "test.jsonl", rows)
    _write(tmp_path / "train.jsonl", rows[:2])
    assert len(load_gsm8k(tmp_path)) == 4
    assert len(load_gsm8k(str(tmp_path), split="train")) == 2
    assert load_gsm8k(tmp_path / "test.jsonl", limit=3)[-1]["question"] == "q2"


def test_load_errors_name_file_line_and_field(tmp_path):
    with pytest.raises(UserError, match="no such GSM8K file"):
        load_gsm8k(tmp_path / "missing.jsonl")
    with pytest.raises(UserError, match="no train.jsonl"):
        load_gsm8k(tmp_path, split="train")
    bad = _write(tmp_path / "bad.jsonl", ['{"question": "q", "answer": "#### 1"}', "{oops"])
    with pytest.raises(UserError, match=r"bad.jsonl:2: not valid JSON"):
        load_gsm8k(bad)
    missing = _write(tmp_path / "missing_field.jsonl", ['{"question": "q"}'])
    with pytest.raises(UserError, match=r"missing_field.jsonl:1: field 'answer'"):
        read_records(missing, ("question", "answer"))


@needs_gsm8k
def test_gold_solutions_score_one_on_the_real_test_set():
    records = load_gsm8k(SHARED_GSM8K)
    assert len(records) == 1319
    result = score_gsm8k([{"answer": r["answer"], "completion": r["answer"]} for r in records])
    assert result.metrics == {"exact_match": 1.0, "exact_match_flexible": 1.0, "n": 1319.0}


@needs_gsm8k
def test_dollar_comma_style_is_flexible_only_on_the_real_test_set():
    records = load_gsm8k(SHARED_GSM8K)
    completions = [{"answer": r["answer"], "completion": styled(r["answer"])} for r in records]
    assert styled("x\n#### 1234") == "Let me work it out. The final answer is $1,234."
    result = score_gsm8k(completions)
    assert result.metrics["exact_match_flexible"] == 1.0
    assert result.metrics["exact_match"] == 0.0


def test_run_gsm8k_with_the_tiny_model(tmp_path, tiny_model, tiny_tokenizer):
    rows = [
        json.dumps({"question": f"What is {i} + 1?", "answer": f"#### {i + 1}"}) for i in range(6)
    ]
    _write(tmp_path / "test.jsonl", rows[:2])
    _write(tmp_path / "train.jsonl", rows)
    result = run_gsm8k(
        tiny_model, tiny_tokenizer, source=tmp_path, max_new_tokens=4, progress=False
    )
    assert result.metrics["n"] == 2 and len(result.items) == 2
    assert result.details["prompt"] == "lm-eval gsm8k, 5-shot"
    assert all("completion" in item for item in result.items)
    chat = run_gsm8k(
        tiny_model,
        tiny_tokenizer,
        source=tmp_path,
        chat=True,
        num_fewshot=0,
        max_new_tokens=4,
        progress=False,
    )
    assert chat.details["prompt"] == "zero-shot chat"
