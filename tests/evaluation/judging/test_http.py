"""The OpenAI-compatible judge against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import time
from pathlib import Path

import pytest

from gsil_bench.errors import UserError
from gsil_bench.evaluation.judging.base import Judge, JudgeError, JudgeUnavailable
from gsil_bench.evaluation.judging.http import OpenAIJudge

# The judge server helper sits in tests/evaluation; pytest runs in importlib mode.
sys.path.insert(0, str(Path(__file__).parents[1]))
from judge_server import JudgeServer, deterministic_reply  # noqa: E402


def _prompts(n: int) -> list[list[dict[str, str]]]:
    return [
        [
            {"role": "system", "content": 'Rate it: "[[rating]]".'},
            {
                "role": "user",
                "content": f"[The Start of Assistant's Answer]\n{'x' * i}\n"
                "[The End of Assistant's Answer]",
            },
        ]
        for i in range(n)
    ]


def _judge(server: JudgeServer, **kwargs) -> OpenAIJudge:
    kwargs = {"progress": False, **kwargs}
    return OpenAIJudge(server.base_url, "fake-judge", **kwargs)


def test_completions_in_order_and_protocol():
    with JudgeServer() as server:
        judge = _judge(server)
        prompts = _prompts(5)
        out = judge.complete(prompts)
    assert isinstance(judge, Judge)
    assert out == [deterministic_reply(p) for p in prompts]
    body = server.requests[0]["body"]
    assert server.requests[0]["path"] == "/v1/chat/completions"
    assert body["model"] == "fake-judge" and body["temperature"] == 0
    assert body["messages"][0]["role"] == "system"


def test_duplicate_prompts_are_asked_once():
    with JudgeServer() as server:
        out = _judge(server).complete(_prompts(2) * 3)
    assert len(out) == 6 and out[:2] == out[2:4] == out[4:]
    assert len(server.requests) == 2


# retry-after-ms (honoured by the openai client) keeps these fast; test_http_faults has the
# client's own backoff and a whole-second Retry-After.
FAST = {"retry-after-ms": "10"}


@pytest.mark.parametrize("status", [500, 503, 429])
def test_retries_transient_failures_then_succeeds(status):
    with JudgeServer(fail_first=2, fail_status=status, fail_headers=FAST) as server:
        judge = _judge(server, max_retries=3, concurrency=1)
        out = judge.complete(_prompts(1))
    assert "Rating: [[1]]" in out[0]
    assert len(server.requests) == 3
    assert judge.stats["retries"] == 2


def test_gives_up_after_retries_with_clear_error():
    with JudgeServer(fail_first=100, fail_headers=FAST) as server:
        judge = _judge(server, max_retries=2)
        with pytest.raises(JudgeUnavailable, match=r"unreachable after 3 tries: HTTP 500") as err:
            judge.complete(_prompts(1))
    assert server.base_url in str(err.value)
    assert len(server.requests) == 3 and judge.stats["retries"] == 2


def test_client_errors_are_not_retried():
    with JudgeServer(fail_first=100, fail_status=401) as server:
        judge = _judge(server, api_key_env="GSIL_BENCH_TEST_NO_SUCH_KEY")
        with pytest.raises(JudgeError, match=r"HTTP 401.*GSIL_BENCH_TEST_NO_SUCH_KEY"):
            judge.complete(_prompts(1))
    assert len(server.requests) == 1


def test_timeout_is_fast_and_names_the_url():
    with JudgeServer(delay_s=3.0) as server:
        judge = _judge(server, timeout_s=0.2, max_retries=1)
        start = time.perf_counter()
        with pytest.raises(JudgeUnavailable, match=r"unreachable after 2 tries: timed out") as err:
            judge.complete(_prompts(1))
        elapsed = time.perf_counter() - start
    assert server.base_url in str(err.value)
    assert elapsed < 2.0


def test_unreachable_port_gives_clear_error():
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    judge = OpenAIJudge(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, progress=False)
    start = time.perf_counter()  # one retry after the client's own backoff (0.5 s at most)
    with pytest.raises(UserError, match=rf"judge 'm' at http://127.0.0.1:{port}/v1.*after 2 tries"):
        judge.complete(_prompts(1))
    assert time.perf_counter() - start < 2.0


def test_non_json_answer_is_a_clear_error():
    with (
        JudgeServer(raw_body=b"<html>gateway</html>") as server,
        pytest.raises(JudgeError, match="not JSON: <html>"),
    ):
        _judge(server).complete(_prompts(1))


def test_disk_cache_hit_makes_no_requests(tmp_path):
    prompts = _prompts(4)
    with JudgeServer() as server:
        first = _judge(server, cache_dir=tmp_path).complete(prompts)
        assert len(server.requests) == 4
        again = _judge(server, cache_dir=tmp_path)
        assert again.complete(prompts) == first
        assert len(server.requests) == 4 and again.stats["cache_hits"] == 4
        # A different judge (model name) is a different cache key.
        OpenAIJudge(server.base_url, "other", cache_dir=tmp_path, progress=False).complete(
            prompts[:1]
        )
        assert len(server.requests) == 5
    entries = list(tmp_path.rglob("*.json"))
    assert len(entries) == 5
    assert not list(tmp_path.rglob(".tmp-*"))
    record = json.loads(entries[0].read_text())
    assert set(record) == {"judge", "messages", "completion"}


def test_api_key_from_env_is_sent_and_never_recorded(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)  # the openai and httpx loggers at their most talkative
    monkeypatch.setenv("GSIL_BENCH_TEST_KEY", "sk-test-123")
    with JudgeServer() as server:
        judge = _judge(server, api_key_env="GSIL_BENCH_TEST_KEY", cache_dir=tmp_path)
        judge.complete(_prompts(1))
        monkeypatch.delenv("GSIL_BENCH_TEST_KEY")
        _judge(server, api_key_env="GSIL_BENCH_TEST_KEY").complete(_prompts(2)[1:])
    monkeypatch.setenv("GSIL_BENCH_TEST_KEY", "sk-test-123")
    with (
        JudgeServer(fail_first=1, fail_status=401) as refusing,
        pytest.raises(JudgeError) as refused,
    ):
        _judge(refusing, api_key_env="GSIL_BENCH_TEST_KEY").complete(_prompts(1))
    # HTTP header names are case-insensitive; the client may send them in lower case.
    headers = [{k.lower(): v for k, v in r["headers"].items()} for r in server.requests]
    assert headers[0]["authorization"] == "Bearer sk-test-123"
    assert "authorization" not in headers[1]  # no key in the environment: no header at all
    assert "$GSIL_BENCH_TEST_KEY" in str(refused.value)  # the variable's name, not its value
    assert "sk-test-123" not in str(refused.value)
    assert "sk-test-123" not in json.dumps(judge.identity) + json.dumps(judge.stats)
    assert all("sk-test-123" not in p.read_text() for p in tmp_path.rglob("*.json"))
    assert "chat/completions" in caplog.text  # the client did log its requests...
    assert "sk-test-123" not in caplog.text  # ...and never the key


def test_concurrency_limit_is_respected():
    with JudgeServer(delay_s=0.3) as server:
        start = time.perf_counter()
        _judge(server, concurrency=4).complete(_prompts(8))
        elapsed = time.perf_counter() - start
    assert 2 <= server.max_in_flight <= 4
    assert elapsed < 1.8  # 8 requests of 0.3 s in 4 lanes (0.6 s), not 2.4 s in series


def test_complete_works_inside_a_running_event_loop():
    """A notebook runs an event loop in the main thread; complete() still answers there."""

    async def in_a_notebook(judge: OpenAIJudge) -> list[str]:
        return judge.complete(_prompts(2))

    with JudgeServer() as server:
        out = asyncio.run(in_a_notebook(_judge(server)))
    assert out == [deterministic_reply(p) for p in _prompts(2)]
