"""The judge client under faults: a server error then success, 429 with Retry-After, and a
connection lost mid-reply, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import email.utils
import sys
import time
from pathlib import Path

import pytest

from gsil_bench.evaluation.judging.base import JudgeError, JudgeUnavailable
from gsil_bench.evaluation.judging.http import OpenAIJudge, _seconds

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
    kwargs = {"backoff_s": 0.01, "progress": False, "concurrency": 1, **kwargs}
    return OpenAIJudge(server.base_url, "fake-judge", **kwargs)


def test_a_server_error_then_success_is_one_answer():
    with JudgeServer(fail_first=1, fail_status=500) as server:
        judge = _judge(server)
        assert judge.complete([PROMPT]) == ["The answer has 4 characters. Rating: [[5]]"]
    assert rating_for(ANSWER) == 5
    assert len(server.requests) == 2 and judge.stats["retries"] == 1


def test_429_waits_as_long_as_retry_after_says():
    """Our own backoff would wait 0.01 s; the server asks for 1 s and gets it."""
    with JudgeServer(fail_first=1, fail_status=429, fail_headers={"Retry-After": "1"}) as server:
        out = _judge(server).complete([PROMPT])
    assert "Rating: [[5]]" in out[0]
    first, second = (r["time"] for r in server.requests)
    assert 1.0 <= second - first < 2.5


def test_retry_after_as_an_http_date_is_honoured_too():
    in_two_s = email.utils.formatdate(time.time() + 2, usegmt=True)
    assert 0.5 <= (_seconds(in_two_s) or 0.0) <= 2.0  # whole seconds: 1-2 s from now
    assert _seconds("soon") is None and _seconds("-3") == 0.0


@pytest.mark.parametrize("drop", ["body", "unsized", "headers"])
def test_a_connection_lost_mid_reply_is_asked_again(drop):
    """body: half the promised Content-Length; unsized: half a JSON reply with no length (it
    was an error "not JSON" before); headers: closed before any status line."""
    with JudgeServer(drop_first=2, drop=drop) as server:
        judge = _judge(server, max_retries=3)
        out = judge.complete([PROMPT])
    assert out == ["The answer has 4 characters. Rating: [[5]]"]
    assert len(server.requests) == 3 and judge.stats["retries"] == 2


def test_a_connection_lost_every_time_names_the_cut():
    with JudgeServer(drop_first=100, drop="unsized") as server:
        judge = _judge(server, max_retries=1)
        with pytest.raises(JudgeUnavailable, match=r"after 2 tries: the reply was cut off after"):
            judge.complete([PROMPT])


def test_an_html_page_is_still_not_json_and_not_retried():
    with (
        JudgeServer(raw_body=b"<html>bad gateway</html>") as server,
        pytest.raises(JudgeError, match="not JSON: <html>"),
    ):
        _judge(server).complete([PROMPT])
    assert len(server.requests) == 1
