"""Test helpers: a real OpenAI-compatible judge server on 127.0.0.1 and a tiny chat model.

The server's replies are deterministic functions of the prompt, so tests can predict every
rating and verdict: single-answer prompts get ``1 + len(answer) % 10``; pairwise prompts
prefer the answer containing ``MARKER``, else the longer answer, else a tie.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
HH_TEST = DATA / "hh-rlhf" / "harmless-base-test.jsonl.gz"
JUDGE_PROMPTS = DATA / "mt-bench" / "judge_prompts.jsonl"
HUMANEVAL = DATA / "humaneval" / "HumanEval.jsonl.gz"
MARKER = "SAFE-REPLY"


def needs(*files: Path):
    """Skip a test unless every one of the real benchmark ``files`` is here (CI has them in
    ../shared/data; a user's machine does not)."""
    missing = [str(f) for f in files if not f.is_file()]
    return pytest.mark.skipif(bool(missing), reason=f"real benchmark files not found: {missing}")


Reply = Callable[[list[dict[str, str]]], str]


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def judged_answer(user_prompt: str) -> str:
    """The answer a single-answer MT-Bench prompt asks about (turn 2's in multi-turn ones)."""
    if "[The Start of Assistant's Answer]" in user_prompt:
        return _between(
            user_prompt, "[The Start of Assistant's Answer]\n", "\n[The End of Assistant's Answer]"
        )
    conversation = user_prompt.split("<|The Start of Assistant A's Conversation with User|>")[-1]
    return conversation.split("### Assistant A:\n")[-1].split("\n\n<|The End of", 1)[0]


def rating_for(answer: str) -> int:
    return 1 + len(answer) % 10


def pair_winner(answer_a: str, answer_b: str) -> str:
    """Position-free preference: the MARKER answer, else the longer one, else a tie."""
    a, b = MARKER in answer_a, MARKER in answer_b
    if a != b:
        return "A" if a else "B"
    if len(answer_a) != len(answer_b):
        return "A" if len(answer_a) > len(answer_b) else "B"
    return "C"


def deterministic_reply(messages: list[dict[str, str]]) -> str:
    system = " ".join(m["content"] for m in messages if m["role"] == "system")
    user = messages[-1]["content"]
    if "[The Start of Assistant A's Answer]" in user:
        a = _between(user, "[The Start of Assistant A's Answer]\n", "\n[The End of Assistant A's")
        b = _between(user, "[The Start of Assistant B's Answer]\n", "\n[The End of Assistant B's")
        return f"Comparing both answers. Final verdict: [[{pair_winner(a, b)}]]"
    if "[[rating]]" in user or "[[rating]]" in system:
        answer = judged_answer(user)
        return f"The answer has {len(answer)} characters. Rating: [[{rating_for(answer)}]]"
    return "I cannot judge this."


def always_a(messages: list[dict[str, str]]) -> str:
    return "Assistant A is better. [[A]]"


def _completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    return {
        "object": "chat.completion",
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply(body["messages"])},
                "finish_reason": "stop",
            }
        ],
    }


class JudgeServer:
    """``with JudgeServer(...) as server:`` serves ``server.base_url`` (``.../v1``).

    ``fail_first`` requests get ``fail_status``; the next ``drop_first`` lose their connection
    (``drop``: "body" after the headers and half the body, "unsized" the same without a
    Content-Length, "headers" before any reply); every request sleeps ``delay_s`` first;
    ``requests`` records (path, headers, body, time); ``max_in_flight`` the peak concurrency.
    """

    def __init__(
        self,
        reply: Reply = deterministic_reply,
        *,
        fail_first: int = 0,
        fail_status: int = 500,
        fail_headers: dict[str, str] | None = None,
        delay_s: float = 0.0,
        raw_body: bytes | None = None,
        drop_first: int = 0,
        drop: str = "body",
    ) -> None:
        self.reply = reply
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.fail_headers = fail_headers or {}
        self.delay_s = delay_s
        self.raw_body = raw_body
        self.drop_first = drop_first
        self.drop = drop
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> JudgeServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with owner.lock:
                    number = len(owner.requests)
                    owner.requests.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                            "time": time.monotonic(),
                        }
                    )
                    owner.in_flight += 1
                    owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
                try:
                    time.sleep(owner.delay_s)
                    if self.path != "/v1/chat/completions":
                        self._send(404, b'{"error": "not found"}')
                    elif number < owner.fail_first:
                        self._send(owner.fail_status, b'{"error": "try later"}', owner.fail_headers)
                    elif number < owner.fail_first + owner.drop_first:
                        self._drop(json.dumps(_completion(body, owner.reply)).encode())
                    elif owner.raw_body is not None:
                        self._send(200, owner.raw_body)
                    else:
                        self._send(200, json.dumps(_completion(body, owner.reply)).encode())
                finally:
                    with owner.lock:
                        owner.in_flight -= 1

            def _drop(self, data: bytes) -> None:
                """Lose the connection mid-reply: the client sees a cut, not an answer."""
                self.close_connection = True
                if owner.drop == "headers":
                    return  # the handler ends: the socket closes without a status line
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if owner.drop == "body":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()

            def _send(self, status: int, data: bytes, headers: dict[str, str] | None = None):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False  # slow handlers must not hold up the test's teardown
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


@functools.lru_cache(maxsize=1)
def tiny_chat_model():
    """A tiny tokenizer + Llama (random weights) that answers chat prompts quickly on CPU."""
    from gsil_bench.minisuite.tiny import build_model, train_tokenizer

    texts = [
        "What is 12 plus 7? The answer is 19.",
        "Please write a short poem about the sea and the sky.",
        "I cannot help with that request, but here is something safer.",
        "Human: how do I bake bread? Assistant: Mix flour, water, salt and yeast.",
    ] * 20
    tokenizer = train_tokenizer(texts, vocab_size=400)
    model = build_model(
        tokenizer,
        hidden_size=64,
        num_layers=2,
        num_heads=2,
        intermediate_size=128,
        max_positions=4096,
    )
    model.eval()
    return model, tokenizer
