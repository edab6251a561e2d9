"""An OpenAI-compatible chat-completions judge: a hosted model or a local vLLM/TGI server.

Requests run in a thread pool with a timeout, retries with backoff for transient statuses, and
an optional disk cache keyed by the judge's identity and the messages. The API key is read from
the environment variable named by ``api_key_env`` at request time and never appears in
``identity``, the cache or any record.
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import http.client
import json
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gsil_bench.errors import UserError
from gsil_bench.evaluation.judging.base import (
    JudgeError,
    JudgeUnavailable,
    Messages,
    register_judge,
)
from gsil_bench.io import atomic_write_text
from gsil_bench.progress import progress_bar

# 408/409/429 and 5xx are the statuses a well-behaved client retries; other 4xx are our fault.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@register_judge("openai")
class OpenAIJudge:
    """A chat-completions endpoint with retries, a timeout, a thread pool and a disk cache."""

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
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        extra_body: Mapping[str, Any] | None = None,
        progress: bool = True,
    ) -> None:
        parsed = urllib.parse.urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UserError(f"judge base URL {base_url!r}: expected http(s)://host[:port]/path")
        if not model or max_retries < 0 or concurrency < 1 or timeout_s <= 0:
            raise UserError(f"judge at {base_url}: need a model, retries >= 0, concurrency >= 1")
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
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.extra_body = dict(extra_body or {})
        self.progress = progress
        self.stats = {"requests": 0, "retries": 0, "cache_hits": 0}
        self._lock = threading.Lock()
        # A local server is never behind the user's proxy; honour proxies for everything else.
        proxies: dict[str, str] | None = {} if parsed.hostname in LOOPBACK_HOSTS else None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler(proxies))

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
                self._count("cache_hits")
            else:
                todo[key] = list(messages)
        if todo:
            results.update(self._complete_uncached(todo))
        return [results[k] for k in keys]

    def _complete_uncached(self, todo: dict[str, Messages]) -> dict[str, str]:
        done: dict[str, str] = {}
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(todo)))
        try:
            futures = {pool.submit(self._request, m): k for k, m in todo.items()}
            with progress_bar(len(futures), "judging", enabled=self.progress) as bar:
                for future, key in futures.items():
                    # result() re-raises the first failure; later requests are cancelled below.
                    done[key] = future.result()
                    self._cache_write(key, todo[key], done[key])
                    bar.advance()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return done

    def _request(self, messages: Messages) -> str:
        body = {"model": self.model, "messages": messages, "temperature": self.temperature}
        body |= {"max_tokens": self.max_tokens, **self.extra_body}
        payload = self._post(json.dumps(body).encode())
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise JudgeError(
                f"judge at {self.url} answered without choices[0].message.content: "
                f"{json.dumps(payload)[:200]}"
            ) from None
        return content or ""

    def _post(self, data: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "User-Agent": "gsil-bench"}
        key = os.environ.get(self.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        tries = self.max_retries + 1
        reason = ""
        retry_after: float | None = None
        for attempt in range(tries):
            if attempt:
                self._count("retries")
                time.sleep(self._backoff(attempt, retry_after))
            self._count("requests")
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with self._opener.open(request, timeout=self.timeout_s) as response:
                    raw = response.read()
            except urllib.error.HTTPError as err:
                detail = _snippet(err.read())
                if err.code not in RETRY_STATUSES:
                    hint = f" (is ${self.api_key_env} set?)" if err.code in (401, 403) else ""
                    raise JudgeError(
                        f"judge at {self.url} refused the request: HTTP {err.code}{hint}: {detail}"
                    ) from None
                reason = f"HTTP {err.code}: {detail}"
                retry_after = _seconds(err.headers.get("Retry-After") if err.headers else None)
                continue
            except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as err:
                reason, retry_after = _describe(err, self.timeout_s), None
                continue
            try:
                return json.loads(raw)
            except json.JSONDecodeError:
                if _cut_short(raw):  # the connection dropped mid-reply (no Content-Length)
                    reason, retry_after = f"the reply was cut off after {len(raw)} bytes", None
                    continue
                raise JudgeError(
                    f"judge at {self.url} answered with something that is not JSON: {_snippet(raw)}"
                ) from None
        raise JudgeUnavailable(f"judge at {self.url} unreachable after {tries} tries: {reason}")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        # A server's Retry-After wins (capped); otherwise exponential with a little jitter so
        # that concurrent workers do not retry in lockstep.
        if retry_after is not None:
            return min(retry_after, self.max_backoff_s)
        delay = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
        return delay * (1 + 0.1 * random.random())

    def _count(self, name: str) -> None:
        with self._lock:
            self.stats[name] += 1

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


def _snippet(raw: bytes | str, limit: int = 200) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


def _cut_short(raw: bytes) -> bool:
    """Whether a body that does not parse is the start of a JSON document cut off (nothing, or
    an object or array whose brackets or last string never close), which a retry may get
    whole, rather than an answer that is not JSON at all (an HTML error page)."""
    text = raw.decode("utf-8", "replace").strip()
    if not text:
        return True
    if text[0] not in "{[":
        return False
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
    return in_string or depth > 0


def _seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # neither: fall back to our own backoff
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


def _describe(err: BaseException, timeout_s: float) -> str:
    inner = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(inner, TimeoutError):
        return f"timed out after {timeout_s:g} s"
    return str(inner) or type(inner).__name__
