"""An OpenAI-compatible chat-completions judge: a hosted model or a local vLLM/TGI/llama.cpp server.

Requests go through the official ``openai`` client (``AsyncOpenAI``): its timeout, its retries
(408/409/429/5xx and lost connections, honouring ``Retry-After``) and at most ``concurrency``
requests in flight. Around it gsil-bench keeps an optional disk cache keyed by the judge's
identity and the messages; each judgement is written as soon as it arrives, so a run that fails
half-way asks only for the rest next time. The API key is read from the environment variable
named by ``api_key_env`` at request time and never appears in ``identity``, the cache or any
record.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import urllib.parse
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from gsil_bench.errors import UserError
from gsil_bench.evaluation.judging.base import (
    JudgeError,
    JudgeUnavailable,
    Messages,
    register_judge,
)
from gsil_bench.io import atomic_write_text
from gsil_bench.progress import progress_bar

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
T = TypeVar("T")


@register_judge("openai")
class OpenAIJudge:
    """A chat-completions endpoint through ``openai.AsyncOpenAI``, with a disk cache."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 60.0,
        max_retries: int = 3,
        concurrency: int = 8,
        cache_dir: str | Path | None = None,
        temperature: float = 0.0,
        max_tokens: int = 2048,
        extra_body: Mapping[str, Any] | None = None,
        progress: bool = True,
    ) -> None:
        parsed = urllib.parse.urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UserError(f"judge base URL {base_url!r}: expected http(s)://host[:port]/path")
        if not model or max_retries < 0 or concurrency < 1 or timeout_s <= 0:
            raise UserError(
                f"judge at {base_url}: need a model, max_retries >= 0, concurrency >= 1 "
                "and timeout_s > 0"
            )
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})
        self.progress = progress
        # A local server is never behind the user's proxy; honour proxies for everything else.
        self._trust_env = parsed.hostname not in LOOPBACK_HOSTS
        self.stats = {"requests": 0, "retries": 0, "cache_hits": 0}

    @property
    def identity(self) -> dict[str, Any]:
        # Everything that changes a judgement, and nothing else: it is also the cache key.
        extra = {"extra_body": self.extra_body} if self.extra_body else {}
        return {"kind": "openai", "model": self.model, "base_url": self.base_url, **extra} | {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def complete(self, prompts: Sequence[Messages]) -> list[str]:
        keys = [self._cache_key(p) for p in prompts]
        results: dict[str, str] = {}
        todo: dict[str, Messages] = {}
        for key, messages in zip(keys, prompts, strict=True):
            if key in results or key in todo:
                continue
            cached = self._cache_read(key)
            if cached is not None:
                results[key] = cached
                self.stats["cache_hits"] += 1
            else:
                todo[key] = list(messages)
        if todo:
            _run(self._ask_all(todo, results))
        return [results[k] for k in keys]

    async def _ask_all(self, todo: dict[str, Messages], results: dict[str, str]) -> None:
        import openai

        key = os.environ.get(self.api_key_env, "")

        async def sent(request: Any) -> None:  # every attempt, retries included
            self.stats["requests"] += 1
            if not key:  # no key, no Authorization header (a local server needs none)
                request.headers.pop("Authorization", None)

        client = openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=key or "none",  # the client insists on one; dropped in `sent`
            timeout=self.timeout_s,
            max_retries=self.max_retries,
            http_client=openai.DefaultAsyncHttpxClient(
                trust_env=self._trust_env, event_hooks={"request": [sent]}
            ),
        )
        lanes = asyncio.Semaphore(self.concurrency)
        retries = -self.stats["requests"]  # requests sent, less one per judgement started
        with progress_bar(len(todo), "judging", enabled=self.progress) as bar:

            async def ask(key: str, messages: Messages) -> None:
                nonlocal retries
                async with lanes:
                    retries -= 1
                    results[key] = await self._ask(client, messages)
                self._cache_write(key, messages, results[key])
                bar.advance()

            tasks = [asyncio.create_task(ask(k, m)) for k, m in todo.items()]
            try:
                await asyncio.gather(*tasks)  # the first failure is raised; the rest cancelled
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await client.close()
                self.stats["retries"] += self.stats["requests"] + retries

    async def _ask(self, client: Any, messages: Messages) -> str:
        import openai

        tries = f"unreachable after {self.max_retries + 1} tries"
        where = f"judge {self.model!r} at {self.url}"
        try:
            reply = await client.chat.completions.create(
                model=self.model,
                messages=messages,
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                extra_body=self.extra_body or None,
            )
        except openai.APITimeoutError:
            raise JudgeUnavailable(
                f"{where} {tries}: timed out after {self.timeout_s:g} s"
            ) from None
        except openai.APIConnectionError as err:
            cause = err.__cause__ or err
            raise JudgeUnavailable(f"{where} {tries}: {cause or type(cause).__name__}") from None
        except openai.APIStatusError as err:
            status, detail = err.status_code, _snippet(err.response.text)
            if status in (408, 409, 429) or status >= 500:  # what the client retries
                raise JudgeUnavailable(f"{where} {tries}: HTTP {status}: {detail}") from None
            hint = f" (is ${self.api_key_env} set?)" if status in (401, 403) else ""
            raise JudgeError(
                f"{where} refused the request: HTTP {status}{hint}: {detail}"
            ) from None
        except json.JSONDecodeError as err:  # an HTML error page, or a reply cut short
            raise JudgeError(
                f"{where} answered with something that is not JSON: {_snippet(err.doc)}"
            ) from None
        try:
            return reply.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError):
            raise JudgeError(
                f"{where} answered without choices[0].message.content: {_snippet(str(reply))}"
            ) from None

    def _cache_key(self, messages: Messages) -> str:
        text = json.dumps(
            {"judge": self.identity, "messages": list(messages)},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def _cache_path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / key[:2] / f"{key}.json"

    def _cache_read(self, key: str) -> str | None:
        path = self._cache_path(key)
        try:
            if path is None or not path.is_file():
                return None
            return json.loads(path.read_text(encoding="utf-8"))["completion"]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged entry is simply asked again and overwritten

    def _cache_write(self, key: str, messages: Messages, completion: str) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        record = {"judge": self.identity, "messages": messages, "completion": completion}
        # Atomic: readers never see a half-written entry, even with several processes sharing
        # one cache.
        atomic_write_text(path, json.dumps(record, ensure_ascii=False))


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end from sync code, also when an event loop is already running
    in this thread (a notebook): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # the usual case: no event loop in this thread
    else:
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, coroutine).result()
    return asyncio.run(coroutine)


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")
