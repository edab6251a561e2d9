"""SPIN's ``{real, generated}`` records (uclaml/SPIN, spin/generate_vllm.py writes them) and the
``first_turn`` option of every chat-like format: hand-made rows, JSONL and parquet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gsil_bench.config import DataConfig, RunConfig, load_config
from gsil_bench.data.loaders import load_demonstrations
from gsil_bench.errors import UserError
from gsil_bench.experiment.inputs import prepare_demonstrations
from gsil_bench.experiment.negatives import rejected_negatives


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


# The layout of UCLA-AGI/SPIN_iter0 (SPIN README, "Data"): the prompt repeated in both lists.
SPIN_ROW = {
    "real": [user("Name a prime."), assistant("7 is prime.")],
    "generated": [user("Name a prime."), assistant("9 is prime.")],
}
# spin/reformat.py writes the generated reply as "" before generation.
SPIN_UNGENERATED = {
    "real": [user("Say hi."), assistant("Hi!")],
    "generated": [user("Say hi."), assistant("")],
}
SPIN_WITH_SYSTEM = {
    "real": [{"role": "system", "content": "Be terse."}, user("2+2?"), assistant("4")],
    "generated": [{"role": "system", "content": "Be terse."}, user("2+2?"), assistant("5")],
}
SPIN_MULTI_TURN = {
    "real": [user("u1"), assistant("a1"), user("u2"), assistant("a2")],
    "generated": [user("u1"), assistant("a1"), user("u2"), assistant("g2")],
}
CHAT = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        user("Hi"),
        assistant("Hello!"),
        user("Name a colour."),
        assistant("Blue."),
    ]
}
HH = {
    "chosen": "\n\nHuman: How do I pick a lock?\n\nAssistant: Why do you ask?\n\n"
    "Human: I'm locked out.\n\nAssistant: Call a locksmith.",
    "rejected": "\n\nHuman: How do I pick a lock?\n\nAssistant: Why do you ask?\n\n"
    "Human: I'm locked out.\n\nAssistant: Use a hairpin.",
}
ONE_TURN_PREFERENCE = {
    "prompt": "Say yes.",
    "chosen": [user("Say yes."), assistant("Yes.")],
    "rejected": [user("Say yes."), assistant("No.")],
}


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def triples(demos) -> list[tuple]:
    return [(d.prompt, d.response, d.rejected) for d in demos]


# ---------------------------------------------------------------- field mapping


def test_spin_row_maps_real_to_the_demonstration_and_generated_to_rejected(tmp_path):
    path = write_jsonl(tmp_path / "spin.jsonl", [SPIN_ROW, SPIN_WITH_SYSTEM])
    first, second = load_demonstrations(str(path))
    assert (first.prompt, first.response, first.rejected) == (
        [user("Name a prime.")],
        "7 is prime.",
        "9 is prime.",
    )
    assert first.meta == {"source": f"{path}:1", "format": "spin"}
    assert (second.prompt, second.response, second.rejected) == (
        [{"role": "system", "content": "Be terse."}, user("2+2?")],
        "4",
        "5",
    )


def test_an_ungenerated_spin_row_has_no_negative(tmp_path):
    (demo,) = load_demonstrations(str(write_jsonl(tmp_path / "d.jsonl", [SPIN_UNGENERATED])))
    assert (demo.prompt, demo.response, demo.rejected) == ([user("Say hi.")], "Hi!", None)


def test_spin_negatives_are_what_data_negatives_rejected_trains_on(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [SPIN_ROW, SPIN_WITH_SYSTEM])
    assert rejected_negatives(load_demonstrations(str(path))) == ["9 is prime.", "5"]
    path = write_jsonl(tmp_path / "e.jsonl", [SPIN_ROW, SPIN_UNGENERATED])
    with pytest.raises(UserError, match=r"1 records have no rejected response .*'e\.jsonl:2'"):
        rejected_negatives(load_demonstrations(str(path)))


def test_spin_parquet_reads_as_the_jsonl(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [SPIN_ROW, SPIN_UNGENERATED, SPIN_WITH_SYSTEM]
    # The release's own layout: spin/convert_data.py writes train_prefs-00000-of-00001.parquet.
    path = tmp_path / "train_prefs-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    demos = load_demonstrations(str(tmp_path), split="train")
    assert triples(demos) == [
        ([user("Name a prime.")], "7 is prime.", "9 is prime."),
        ([user("Say hi.")], "Hi!", None),
        ([{"role": "system", "content": "Be terse."}, user("2+2?")], "4", "5"),
    ]
    assert demos[2].meta == {"source": f"{path}: row 3", "format": "spin"}


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("generated", "at", "counts"),
    [
        ([user("Name a composite."), assistant("9")], 0, ""),
        (
            [user("Name a prime."), user("Again."), assistant("9")],
            1,
            " (2 prompt messages, 'real' has 1)",
        ),
        ([assistant("9")], 0, " (0 prompt messages, 'real' has 1)"),
    ],
)
def test_a_generated_prompt_unlike_the_real_one_is_one_clear_error(tmp_path, generated, at, counts):
    path = write_jsonl(
        tmp_path / "d.jsonl", [SPIN_ROW, {"real": SPIN_ROW["real"], "generated": generated}]
    )
    with pytest.raises(UserError) as caught:
        load_demonstrations(str(path))
    assert str(caught.value) == (
        f"{path}:2: field 'generated': its prompt differs from the prompt of 'real' at "
        f"message {at}{counts}"
    )


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"real": [user("q")], "generated": [user("q"), assistant("g")]},
            "field 'real': no assistant turn to use as the response",
        ),
        (
            {"real": [user("q"), assistant("r")], "generated": [user("q")]},
            "field 'generated': no assistant turn (the model's reply)",
        ),
        (
            {"real": [user("q"), assistant(" ")], "generated": [user("q"), assistant("g")]},
            "field 'real': the last assistant turn is empty",
        ),
        (
            {"real": [user("q"), assistant("r")], "generated": "g"},
            "field 'generated': expected a non-empty list of messages",
        ),
    ],
)
def test_a_malformed_spin_row_names_file_line_and_field(tmp_path, record, message):
    path = write_jsonl(tmp_path / "bad.jsonl", [SPIN_ROW, record])
    with pytest.raises(UserError) as caught:
        load_demonstrations(str(path))
    assert str(caught.value) == f"{path}:2: {message}"


def test_a_malformed_parquet_row_names_the_row(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "d.parquet"
    bad = {"real": [user("q")], "generated": [user("q"), assistant("g")]}
    pq.write_table(pa.Table.from_pylist([SPIN_ROW, bad]), path)
    with pytest.raises(UserError) as caught:
        load_demonstrations(str(path))
    assert (
        str(caught.value)
        == f"{path}: row 2: field 'real': no assistant turn to use as the response"
    )


# ---------------------------------------------------------------- first turn


def test_first_turn_keeps_the_first_exchange_of_every_chat_like_format(tmp_path):
    prompt_list = {
        "prompt": [user("a"), assistant("b"), user("c")],
        "response": "d",
        "rejected": "e",
    }
    path = write_jsonl(tmp_path / "d.jsonl", [CHAT, HH, SPIN_MULTI_TURN, prompt_list])
    assert triples(load_demonstrations(str(path), first_turn=True)) == [
        ([{"role": "system", "content": "Be brief."}, user("Hi")], "Hello!", None),
        ([user("How do I pick a lock?")], "Why do you ask?", None),
        ([user("u1")], "a1", None),  # g2 answered u2, not u1: no negative for the first turn
        ([user("a")], "b", None),
    ]


def test_first_turn_leaves_single_turn_records_whole(tmp_path):
    rows = [SPIN_ROW, SPIN_WITH_SYSTEM, ONE_TURN_PREFERENCE, {"prompt": "p", "response": "r"}]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    assert triples(load_demonstrations(str(path), first_turn=True)) == [
        ([user("Name a prime.")], "7 is prime.", "9 is prime."),
        ([{"role": "system", "content": "Be terse."}, user("2+2?")], "4", "5"),
        ([user("Say yes.")], "Yes.", "No."),
        ([user("p")], "r", None),
    ]


def test_first_turn_is_off_by_default(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [CHAT, SPIN_MULTI_TURN])
    assert triples(load_demonstrations(str(path))) == [
        (CHAT["messages"][:-1], "Blue.", None),
        ([user("u1"), assistant("a1"), user("u2")], "a2", "g2"),
    ]


def test_first_turn_with_an_empty_first_reply_is_an_error(tmp_path):
    record = {"messages": [user("u1"), assistant(""), user("u2"), assistant("a2")]}
    path = write_jsonl(tmp_path / "d.jsonl", [record])
    assert load_demonstrations(str(path))[0].response == "a2"
    with pytest.raises(UserError) as caught:
        load_demonstrations(str(path), first_turn=True)
    assert str(caught.value) == (
        f"{path}:1: first turn (data.first_turn): the first assistant turn is empty"
    )


def test_data_first_turn_reaches_the_loader_from_the_run_config(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [CHAT, SPIN_ROW])
    demos, facts = prepare_demonstrations(DataConfig(source=str(path), first_turn=True), seed=0)
    assert [d.response for d in demos] == ["Hello!", "7 is prime."]
    assert facts["demonstrations"] == 2
    demos, _ = prepare_demonstrations(DataConfig(source=str(path)), seed=0)
    assert [d.response for d in demos] == ["Blue.", "7 is prime."]


def test_first_turn_config_key_spelling_and_fingerprint():
    assert load_config(None, ["data.first_turn=true"]).data.first_turn is True
    with pytest.raises(
        UserError, match=r"unknown key 'data\.first_trun' \(did you mean 'data\.first_turn'\?\)$"
    ):
        load_config(None, ["data.first_trun=true"])
    with pytest.raises(
        UserError, match=r"unknown key 'first_turn' \(did you mean 'data\.first_turn'\?\)$"
    ):
        load_config(None, ["first_turn=true"])
    # Off, the key is not written, so configs from before it keep their fingerprints.
    assert "first_turn" not in RunConfig().model_dump(mode="json")["data"]
    on = RunConfig(data=DataConfig(first_turn=True))
    assert on.model_dump(mode="json")["data"]["first_turn"] is True
    assert on.fingerprint() != RunConfig().fingerprint()
