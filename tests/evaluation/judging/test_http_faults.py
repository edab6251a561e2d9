"""The judge client under faults: a server error then success, 429 with Retry-After, and a
connection lost mid-reply, against a real HTTP server on 127.0.0.1. Retries and backoff are the
openai client's; these tests check that they reach gsil-bench's judge as they should."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gsil_bench.evaluation.judging.base import JudgeError, JudgeUnavailable
from gsil_bench.evaluation.judging.http import OpenAIJudge

sys.path.insert(0, str(Path(__file__).parents[1]))
from judge_server import JudgeServer, rating_for  # noqa: E402

ANSWER = "four"  # rated 1 + len("four") % 10 = 5 by the test server
PROMPT = [
    {"role": "system", "content": 'Rate it: "[[rating]]".'},
    {
        "role": "user",
        "content": f"[The Start of Assistant's Answer]\n{ANSWER}\n[The End of Assistant's Answer]",
    },
]


def _judge(server: JudgeServer, **kwargs) -> OpenAIJudge:
    kwargs = {"progress": False, "concurrency": 1, **kwargs}
    return OpenAIJudge(server.base_url, "fake-judge", **kwargs)


def test_a_server_error_then_success_is_one_answer():
    with JudgeServer(fail_first=1, fail_status=500) as server:
        judge = _judge(server)
        assert judge.complete([PROMPT]) == ["The answer has 4 characters. Rating: [[5]]"]
    assert rating_for(ANSWER) == 5
    assert len(server.requests) == 2 and judge.stats["retries"] == 1


def test_429_waits_as_long_as_retry_after_says():
    """The client's own first backoff is 0.5 s at most; the server asks for 1 s and gets it,
    and the judgement arrives after exactly one retry."""
    with JudgeServer(fail_first=1, fail_status=429, fail_headers={"Retry-After": "1"}) as server:
        judge = _judge(server)
        out = judge.complete([PROMPT])
    assert out == ["The answer has 4 characters. Rating: [[5]]"]
    assert len(server.requests) == 2 and judge.stats == {
        "requests": 2,
        "retries": 1,
        "cache_hits": 0,
    }
    first, second = (r["time"] for r in server.requests)
    assert 1.0 <= second - first < 2.5


@pytest.mark.parametrize("drop", ["body", "headers"])
def test_a_connection_lost_mid_reply_is_asked_again(drop):
    """body: half the promised Content-Length; headers: closed before any status line."""
    with JudgeServer(drop_first=1, drop=drop) as server:
        judge = _judge(server, max_retries=3)
        out = judge.complete([PROMPT])
    assert out == ["The answer has 4 characters. Rating: [[5]]"]
    assert len(server.requests) == 2 and judge.stats["retries"] == 1


def test_a_connection_lost_every_time_names_the_judge_and_the_cut():
    with JudgeServer(drop_first=100, drop="body") as server:
        judge = _judge(server, max_retries=1)
        with pytest.raises(JudgeUnavailable, match=r"after 2 tries: .*closed") as err:
            judge.complete([PROMPT])
    assert f"judge 'fake-judge' at {server.base_url}/chat/completions" in str(err.value)
    assert len(server.requests) == 2


def test_a_reply_cut_short_without_a_length_is_not_json():
    """Without Content-Length a closed connection ends the body as far as HTTP goes: the client
    gets half a JSON document with status 200, which is reported, not retried."""
    with (
        JudgeServer(drop_first=100, drop="unsized") as server,
        pytest.raises(JudgeError, match=r"not JSON: \{\"object\": \"chat.completion\""),
    ):
        _judge(server).complete([PROMPT])
    assert len(server.requests) == 1


def test_an_html_page_is_still_not_json_and_not_retried():
    with (
        JudgeServer(raw_body=b"<html>bad gateway</html>") as server,
        pytest.raises(JudgeError, match="not JSON: <html>"),
    ):
        _judge(server).complete([PROMPT])
    assert len(server.requests) == 1
