"""The Demonstration record and the data fingerprint."""

from __future__ import annotations

import hashlib

import pytest

from gsil_bench.data.records import Demonstration, demonstrations_fingerprint


def demo(response: str = "r", **changes) -> Demonstration:
    fields = {"prompt": [{"role": "user", "content": "p"}], "response": response, "id": "a"}
    return Demonstration(**{**fields, **changes})


def test_prompt_must_end_with_a_user_turn():
    with pytest.raises(ValueError, match="end with a user turn"):
        demo(prompt=[{"role": "user", "content": "p"}, {"role": "assistant", "content": "x"}])
    with pytest.raises(ValueError, match="end with a user turn"):
        demo(prompt=[])
    with pytest.raises(ValueError, match="response must be a string"):
        demo(response=None)


def test_to_record():
    assert demo().to_record() == {
        "id": "a", "prompt": [{"role": "user", "content": "p"}], "response": "r",
    }  # fmt: skip
    full = demo(rejected="w", meta={"domain": "math"}).to_record()
    assert full["rejected"] == "w" and full["meta"] == {"domain": "math"}


def test_fingerprint_is_content_and_order_but_not_meta_or_id():
    a, b = demo("one"), demo("two")
    assert demonstrations_fingerprint([a, b]) == demonstrations_fingerprint([demo("one"), b])
    assert demonstrations_fingerprint([a, b]) != demonstrations_fingerprint([b, a])
    assert demonstrations_fingerprint([a]) != demonstrations_fingerprint(
        [demo("one", rejected="x")]
    )
    moved = demo("one", meta={"source": "elsewhere.jsonl:1"})
    assert demonstrations_fingerprint([a]) == demonstrations_fingerprint([moved])
    # The run record's data fingerprint: what a model trains on, so a renamed record keeps it.
    assert demonstrations_fingerprint([a]) == demonstrations_fingerprint([demo("one", id="b")])
    assert len(demonstrations_fingerprint([])) == 20


def test_fingerprint_bytes():
    # The exact bytes hashed, written out by hand: JSON of [prompt, response, rejected] with
    # sorted keys and ASCII escapes, records back to back; the first 20 hex digits.
    text = '[[{"content": "p", "role": "user"}], "caf\\u00e9", null]'
    expected = hashlib.sha256(text.encode()).hexdigest()[:20]
    assert demonstrations_fingerprint([demo("caf\u00e9")]) == expected
