"""Judges for MT-Bench and HH safety: an OpenAI-compatible HTTP endpoint or a local HF model.

Judge specs (``make_judge``), one string or a mapping:

- ``openai:MODEL`` -- a hosted OpenAI model at ``https://api.openai.com/v1``;
- ``openai:MODEL@BASE_URL`` -- any OpenAI-compatible server (vLLM, TGI, a proxy);
- ``BASE_URL#MODEL`` -- the same, e.g. ``http://127.0.0.1:8000/v1#Qwen/Qwen2.5-7B-Instruct``;
- ``hf:PATH_OR_NAME`` -- a local causal LM that writes judgements with ``generate``;
- ``reward:PATH_OR_NAME`` -- a local sequence-classification reward model (HH safety only);
- a mapping (or its JSON text) ``{"kind": "openai"|"hf"|"reward", ...}`` whose other keys are
  the constructor's keyword arguments (``model`` names the model in every kind).

The API key is read from the environment variable named by ``api_key_env`` at request time and
never appears in ``identity``, the cache or any record.
"""

from __future__ import annotations

import hashlib
import http.client
import inspect
import json
import os
import random
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from gsil_bench.errors import UserError
from gsil_bench.progress import progress_bar

Messages = list[dict[str, str]]

OPENAI_BASE_URL = "https://api.openai.com/v1"
# 408/409/429 and 5xx are the statuses a well-behaved client retries; other 4xx are our fault.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class JudgeError(UserError):
    """The judge answered, but not with a usable chat completion (bad key, unknown model...)."""


class JudgeUnavailable(UserError):
    """The judge could not be reached within the retries."""


@runtime_checkable
class Judge(Protocol):
    """Writes judgements: one completion per chat conversation, in input order."""

    identity: dict[str, Any]

    def complete(self, prompts: Sequence[Messages]) -> list[str]: ...


@runtime_checkable
class RewardJudge(Protocol):
    """Scores responses directly; higher is better. Order-free, so one pass suffices."""

    identity: dict[str, Any]

    def score(self, prompts: Sequence[Messages], responses: Sequence[str]) -> list[float]: ...


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
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"judge": self.identity, "messages": messages, "completion": completion}
        # Temp file in the same directory + os.replace: readers never see a half-written entry,
        # even with several processes sharing one cache.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(record, handle, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _snippet(raw: bytes | str, limit: int = 200) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date instead of seconds: fall back to our own backoff


def _describe(err: BaseException, timeout_s: float) -> str:
    inner = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(inner, TimeoutError):
        return f"timed out after {timeout_s:g} s"
    return str(inner) or type(inner).__name__


def load_local_model(model_or_path: Any, tokenizer: Any, auto_class: str) -> tuple[Any, Any, str]:
    """(model, tokenizer, name) from an object pair or a local path / Hub name."""
    import transformers

    if isinstance(model_or_path, str | Path):
        name = str(model_or_path)
        try:
            tok = tokenizer or transformers.AutoTokenizer.from_pretrained(name)
            model = getattr(transformers, auto_class).from_pretrained(name)
        except (OSError, ValueError) as err:
            raise UserError(f"judge model {name!r} could not be loaded: {err}") from None
        return model, tok, name
    if tokenizer is None:
        raise UserError("a judge given as a model object also needs its tokenizer")
    name = getattr(getattr(model_or_path, "config", None), "_name_or_path", "") or "in-memory"
    return model_or_path, tokenizer, name


class HFJudge:
    """A local causal LM writing judgements with greedy ``generate`` (no HTTP, no cache)."""

    def __init__(
        self,
        model_or_path: Any,
        tokenizer: Any = None,
        *,
        max_new_tokens: int = 512,
        batch_size: int = 8,
        progress: bool = True,
    ) -> None:
        self.model, self.tokenizer, self.name = load_local_model(
            model_or_path, tokenizer, "AutoModelForCausalLM"
        )
        self.max_new_tokens = max_new_tokens
        self._options: dict[str, Any] = {"max_new_tokens": max_new_tokens}
        self._options |= {"batch_size": batch_size, "progress": progress, "description": "judging"}

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "hf", "model": self.name, "max_new_tokens": self.max_new_tokens}

    def complete(self, prompts: Sequence[Messages]) -> list[str]:
        from gsil_bench.evaluation.chat_generation import answer_messages

        return answer_messages(self.model, self.tokenizer, prompts, **self._options)


JUDGE_KINDS = ("openai", "hf", "reward")


def __getattr__(name: str) -> Any:
    # The reward-model judge lives with HH safety, its only user (an eager import would be
    # circular); it is still importable from here.
    if name == "RewardModelJudge":
        from gsil_bench.evaluation.hh_safety import RewardModelJudge

        return RewardModelJudge
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


SPEC_HELP = (
    "expected openai:MODEL[@BASE_URL], BASE_URL#MODEL, hf:PATH, reward:PATH "
    'or {"kind": "openai"|"hf"|"reward", "model": ..., ...}'
)


def make_judge(spec: str | Mapping[str, Any], **overrides: Any) -> Judge | RewardJudge:
    """Build a judge from a spec (see the module docstring); ``overrides`` add keyword args."""
    if isinstance(spec, str):
        spec = spec.strip()
        if spec.startswith("{"):
            try:
                spec = json.loads(spec)
            except json.JSONDecodeError as err:
                raise UserError(f"judge spec is not valid JSON: {err}") from None
        else:
            spec = _parse_spec_string(spec)
    if not isinstance(spec, Mapping):
        raise UserError(f"judge spec {spec!r}: {SPEC_HELP}")
    options = {**spec, **overrides}
    kind = options.pop("kind", None)
    if kind not in JUDGE_KINDS:
        raise UserError(f"judge spec kind {kind!r} unknown; {SPEC_HELP}")
    cls = {"openai": OpenAIJudge, "hf": HFJudge}.get(kind) or __getattr__("RewardModelJudge")
    model = options.pop("model", None)
    if kind == "openai":
        options.setdefault("base_url", OPENAI_BASE_URL)
        options["model"] = model
    else:
        options["model_or_path"] = model
    if not model:
        raise UserError(f"judge spec of kind {kind!r} names no model; {SPEC_HELP}")
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise UserError(
            f"judge spec of kind {kind!r}: unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(accepted))}"
        )
    return cls(**options)


def _parse_spec_string(spec: str) -> dict[str, Any]:
    if spec.startswith(("http://", "https://")):
        base_url, sep, model = spec.partition("#")
        if not sep or not model:
            raise UserError(f"judge spec {spec!r}: a URL needs the model after '#'; {SPEC_HELP}")
        return {"kind": "openai", "base_url": base_url, "model": model}
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in JUDGE_KINDS:
        raise UserError(f"judge spec {spec!r} not understood; {SPEC_HELP}")
    if kind == "openai":
        # Split at the URL, not at the first '@': model names may carry one.
        for marker in ("@http://", "@https://"):
            if marker in rest:
                model, _, url = rest.partition(marker)
                return {"kind": kind, "model": model, "base_url": marker[1:] + url}
        return {"kind": kind, "model": rest, "base_url": OPENAI_BASE_URL}
    return {"kind": kind, "model": rest}
