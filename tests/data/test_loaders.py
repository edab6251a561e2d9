"""Loaders: every record format, every file and folder kind, and errors that name file, line and
field. Real data files and the Hub: test_loaders_real_data.py."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

from gsil_bench.data.loaders import load_demonstrations
from gsil_bench.data.records import Demonstration
from gsil_bench.errors import UserError

PLAIN = {"prompt": "What is 2 + 2?", "response": "4"}
CHAT = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
    ]
}
# ultrachat_200k rows: the prompt is repeated as the first user message.
ULTRACHAT = {
    "prompt": "Name a fruit.",
    "prompt_id": "abc",
    "messages": [
        {"role": "user", "content": "Name a fruit."},
        {"role": "assistant", "content": "Pear."},
    ],
}
# ultrafeedback_binarized rows: chosen/rejected are whole conversations; "messages" repeats
# chosen, so the record must be read as preference data.
ULTRAFEEDBACK = {
    "prompt": "Say yes.",
    "prompt_id": "x1",
    "chosen": [{"role": "user", "content": "Say yes."}, {"role": "assistant", "content": "Yes."}],
    "rejected": [{"role": "user", "content": "Say yes."}, {"role": "assistant", "content": "No."}],
    "messages": [{"role": "user", "content": "Say yes."}, {"role": "assistant", "content": "Yes."}],
    "score_chosen": 8.0,
    "score_rejected": 2.0,
}
PREFERENCE_TEXT = {"prompt": "Greet me.", "chosen": "Hello there.", "rejected": "Go away."}
HH = {
    "chosen": "\n\nHuman: How do I pick a lock?\n\nAssistant: Why do you ask?\n\n"
    "Human: I'm locked out.\n\nAssistant: Call a locksmith.",
    "rejected": "\n\nHuman: How do I pick a lock?\n\nAssistant: Why do you ask?\n\n"
    "Human: I'm locked out.\n\nAssistant: Use a hairpin.",
}
GSM8K = {"question": "Tom has 2 apples and buys 3. How many?", "answer": "2 + 3 = 5\n#### 5"}


def write_jsonl(path: Path, records: list, *, raw_lines: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(r) for r in records] + list(raw_lines)
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def only(path: Path) -> Demonstration:
    (demo,) = load_demonstrations(str(path))
    return demo


# ---------------------------------------------------------------- formats


def test_plain_prompt_response(tmp_path):
    demo = only(write_jsonl(tmp_path / "d.jsonl", [PLAIN]))
    assert demo.prompt == [{"role": "user", "content": "What is 2 + 2?"}]
    assert demo.response == "4" and demo.rejected is None
    assert demo.id == "d.jsonl:1"
    assert demo.meta == {"source": f"{tmp_path / 'd.jsonl'}:1", "format": "prompt-response"}


def test_chat_messages_last_assistant_turn_is_the_demonstration(tmp_path):
    demo = only(write_jsonl(tmp_path / "d.jsonl", [CHAT]))
    assert demo.response == "Blue."
    assert demo.prompt == CHAT["messages"][:-1]
    assert demo.meta["format"] == "chat"


def test_ultrachat_layout(tmp_path):
    demo = only(write_jsonl(tmp_path / "d.jsonl", [ULTRACHAT]))
    assert demo.prompt == [{"role": "user", "content": "Name a fruit."}]
    assert demo.response == "Pear."


def test_ultrafeedback_layout_keeps_rejected(tmp_path):
    demo = only(write_jsonl(tmp_path / "d.jsonl", [ULTRAFEEDBACK]))
    assert (demo.prompt, demo.response, demo.rejected) == (
        [{"role": "user", "content": "Say yes."}],
        "Yes.",
        "No.",
    )
    assert demo.meta["format"] == "preference"


def test_preference_with_text_sides(tmp_path):
    demo = only(write_jsonl(tmp_path / "d.jsonl", [PREFERENCE_TEXT]))
    assert demo.prompt == [{"role": "user", "content": "Greet me."}]
    assert (demo.response, demo.rejected) == ("Hello there.", "Go away.")


def test_anthropic_hh_text(tmp_path):
    demo = only(write_jsonl(tmp_path / "d.jsonl", [HH]))
    assert demo.prompt == [
        {"role": "user", "content": "How do I pick a lock?"},
        {"role": "assistant", "content": "Why do you ask?"},
        {"role": "user", "content": "I'm locked out."},
    ]
    assert (demo.response, demo.rejected) == ("Call a locksmith.", "Use a hairpin.")
    assert demo.meta["format"] == "hh"


def test_hh_consecutive_assistant_turns_are_merged(tmp_path):
    record = {"chosen": "\n\nHuman: Hi\n\nAssistant: One.\n\nAssistant: Two.", "rejected": None}
    demo = only(write_jsonl(tmp_path / "d.jsonl", [record]))
    assert demo.response == "One.\n\nTwo." and demo.rejected is None


def test_gsm8k_answer_kept_verbatim(tmp_path):
    demo = only(write_jsonl(tmp_path / "d.jsonl", [GSM8K]))
    assert demo.prompt == [{"role": "user", "content": GSM8K["question"]}]
    assert demo.response == GSM8K["answer"] and demo.meta["format"] == "gsm8k"


def test_prompt_as_message_list_and_explicit_id(tmp_path):
    record = {
        "id": "q7",
        "prompt": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                   {"role": "user", "content": "c"}],
        "response": "d",
        "rejected": "e",
    }  # fmt: skip
    demo = only(write_jsonl(tmp_path / "d.jsonl", [record]))
    assert demo.id == "q7" and len(demo.prompt) == 3 and demo.rejected == "e"


def test_to_record_round_trips(tmp_path):
    original = only(write_jsonl(tmp_path / "a.jsonl", [HH]))
    again = only(write_jsonl(tmp_path / "b.jsonl", [original.to_record()]))
    assert (again.prompt, again.response, again.rejected, again.id) == (
        original.prompt,
        original.response,
        original.rejected,
        original.id,
    )


# ---------------------------------------------------------------- sources


RECORDS = [PLAIN, CHAT, ULTRAFEEDBACK, HH, GSM8K]


def test_jsonl_gz_and_blank_lines(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl.gz", RECORDS, raw_lines=("", "   "))
    assert [d.response for d in load_demonstrations(str(path))] == [
        "4", "Blue.", "Yes.", "Call a locksmith.", GSM8K["answer"],
    ]  # fmt: skip


def test_json_array_and_json_lines_named_json(tmp_path):
    array = tmp_path / "array.json"
    array.write_text(json.dumps(RECORDS))
    lines = write_jsonl(tmp_path / "lines.json", RECORDS)
    assert len(load_demonstrations(str(array))) == len(load_demonstrations(str(lines))) == 5
    assert load_demonstrations(str(array))[1].meta["source"] == f"{array}: record 2"


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([PLAIN, {"prompt": "x", "response": "y"}]), path)
    demos = load_demonstrations(str(path))
    assert [d.response for d in demos] == ["4", "y"]
    assert demos[1].id == "d.parquet:2"


def test_saved_dataset_and_dataset_dict(tmp_path):
    import datasets

    rows = [ULTRAFEEDBACK, ULTRAFEEDBACK | {"prompt_id": "x2"}]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "single"))
    demos = load_demonstrations(str(tmp_path / "single"))
    assert [d.rejected for d in demos] == ["No.", "No."]
    splits = datasets.DatasetDict(
        {"train_sft": datasets.Dataset.from_list([ULTRACHAT]),
         "test_sft": datasets.Dataset.from_list([ULTRACHAT, ULTRACHAT])}
    )  # fmt: skip
    splits.save_to_disk(str(tmp_path / "dict"))
    assert len(load_demonstrations(str(tmp_path / "dict"), split="test_sft")) == 2
    with pytest.raises(UserError, match=r"no split 'train' \(splits: train_sft, test_sft\)"):
        load_demonstrations(str(tmp_path / "dict"))


def test_directory_picks_the_split_files(tmp_path):
    write_jsonl(tmp_path / "data" / "train-00000-of-00001.jsonl", [PLAIN] * 3)
    write_jsonl(tmp_path / "data" / "test-00000-of-00001.jsonl", [GSM8K])
    assert len(load_demonstrations(str(tmp_path))) == 3
    assert load_demonstrations(str(tmp_path), split="test")[0].meta["format"] == "gsm8k"
    with pytest.raises(UserError, match="no file for split 'validation'"):
        load_demonstrations(str(tmp_path), split="validation")


def test_directory_without_split_names_is_one_split(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [PLAIN])
    write_jsonl(tmp_path / "b.jsonl", [GSM8K])
    assert len(load_demonstrations(str(tmp_path), split="anything")) == 2


def test_limit(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [PLAIN] * 10, raw_lines=("{not json",))
    assert len(load_demonstrations(str(path), limit=4)) == 4
    assert load_demonstrations(str(path), limit=0) == []
    with pytest.raises(UserError, match="limit"):
        load_demonstrations(str(path), limit=-1)


# ---------------------------------------------------------------- malformed records


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"prompt": "p", "response": ""}, r":2: field 'response': empty"),
        ({"prompt": "p", "response": 3}, r":2: field 'response': expected a string, got int"),
        ({"prompt": "", "response": "r"}, r":2: field 'prompt': empty"),
        ({"question": "q", "answer": None}, r":2: field 'answer': missing"),
        ({"text": "t"}, r":2: unrecognised record \(fields: text\)"),
        ({"messages": []}, r":2: field 'messages': expected a non-empty list"),
        ({"messages": [{"role": "human", "content": "x"}]}, r":2: field 'messages\[0\].role'"),
        ({"messages": [{"role": "user", "content": 1}]}, r":2: field 'messages\[0\].content'"),
        ({"messages": [{"role": "user", "content": "x"}]}, r"'messages': no assistant turn"),
        ({"messages": [{"role": "assistant", "content": "x"}]}, r"must follow a user turn"),
        (
            {"chosen": "no turns here", "rejected": "x"},
            r":2: field 'chosen': expected '\\n\\nHuman",
        ),
        ({"chosen": "\n\nHuman: hi\n\nAssistant: ", "rejected": None}, r"'chosen': the last"),
        ({"chosen": [{"role": "assistant", "content": "x"}]}, r"field 'chosen'"),
    ],
)
def test_malformed_record_names_file_line_and_field(tmp_path, record, message):
    path = write_jsonl(tmp_path / "bad.jsonl", [PLAIN, record])
    with pytest.raises(UserError, match=message) as caught:
        load_demonstrations(str(path))
    assert str(caught.value).startswith(f"{path}:2") or "unrecognised" in str(caught.value)


def test_bad_json_line(tmp_path):
    # '{"prompt": "x",' is 15 characters; the missing property name is at column 16.
    path = write_jsonl(tmp_path / "bad.jsonl", [PLAIN], raw_lines=('{"prompt": "x",',))
    with pytest.raises(UserError, match=rf"^{path}:2: not valid JSON \(.*, column 16\)$"):
        load_demonstrations(str(path))


def test_json_files_name_the_line_of_a_bad_byte_or_broken_json(tmp_path):
    path = tmp_path / "enc.json"
    path.write_bytes(b'[\n {"prompt": "a", "response": "b"},\n {"prompt": "\xe9"}\n]\n')
    with pytest.raises(UserError, match=rf"^{path}:3: not UTF-8 text"):
        load_demonstrations(str(path))
    path = tmp_path / "broken.json"
    path.write_text('[\n {"prompt": "a", "response": "b"},\n {"prompt" "a"}\n]\n')
    # Line 3 is ' {"prompt" "a"}': the colon is missing at column 12.
    with pytest.raises(UserError, match=rf"^{path}:3: not valid JSON \(.*, column 12\)$"):
        load_demonstrations(str(path))


def test_json_lines_in_a_json_file_keep_their_numbers_across_u2028(tmp_path):
    # U+2028 is legal inside a JSON string; it must not split the line.
    first = {"prompt": "a\u2028b", "response": "c"}
    text = json.dumps(first, ensure_ascii=False) + "\n" + json.dumps(PLAIN) + "\n{oops\n"
    path = tmp_path / "lines.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=rf"^{path}:3: not valid JSON"):
        load_demonstrations(str(path))
    assert [d.id for d in load_demonstrations(str(path), limit=2)] == [
        "lines.json:1",
        "lines.json:2",
    ]


def test_skip_invalid_drops_and_warns(tmp_path, caplog):
    bad = {"prompt": "p", "response": " "}
    path = write_jsonl(tmp_path / "d.jsonl", [PLAIN, bad, PLAIN], raw_lines=("{oops",))
    with caplog.at_level(logging.WARNING, logger="gsil_bench.data.loaders"):
        demos = load_demonstrations(str(path), skip_invalid=True)
    assert [d.id for d in demos] == ["d.jsonl:1", "d.jsonl:3"]
    assert "skipped 2 malformed records" in caplog.text and "d.jsonl:2" in caplog.text
