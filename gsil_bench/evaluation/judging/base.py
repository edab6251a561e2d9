"""What a judge is, and how a judge spec string or mapping becomes one.

Judge specs (:func:`make_judge`), one string or a mapping:

- ``openai:MODEL`` -- a hosted OpenAI model at ``https://api.openai.com/v1``;
- ``openai:MODEL@BASE_URL`` -- any OpenAI-compatible server (vLLM, TGI, a proxy);
- ``BASE_URL#MODEL`` -- the same, e.g. ``http://127.0.0.1:8000/v1#Qwen/Qwen2.5-7B-Instruct``;
- ``hf:PATH_OR_NAME`` -- a local causal LM that writes judgements with ``generate``;
- ``reward:PATH_OR_NAME`` -- a local sequence-classification reward model (HH safety only);
- ``KIND:MODEL`` for any other kind in :data:`JUDGES` (plugins: entry points
  ``gsil_bench.judges``);
- a mapping (or its JSON text) ``{"kind": KIND, ...}`` whose other keys are the judge class's
  keyword arguments (``model`` names the model in every kind).

The spec's kind is looked up in :data:`JUDGES`; a judge class takes its model as ``model`` or
``model_or_path``. API keys are read from the environment by the HTTP judge at request time and
never appear in ``identity``, a cache or any record.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from gsil_bench.errors import UserError
from gsil_bench.registry import Registry, target_of

if TYPE_CHECKING:
    from typing_extensions import TypeIs

Messages = list[dict[str, str]]

OPENAI_BASE_URL = "https://api.openai.com/v1"


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


def is_reward_judge(judge: Judge | RewardJudge) -> TypeIs[RewardJudge]:
    """True for a judge that scores replies (no positions, no templates) rather than writing."""
    return isinstance(judge, RewardJudge) and not isinstance(judge, Judge)


# Built-in kinds are the modules of this package that register a class (importing them is
# cheap: clients and models are loaded when a judge is built, not when its module is read).
JUDGES: Registry[type] = Registry(
    "judge kind", group="gsil_bench.judges", modules=("gsil_bench.evaluation.judging",)
)

JudgeClass = TypeVar("JudgeClass", bound=type)


def register_judge(kind: str) -> Callable[[JudgeClass], JudgeClass]:
    """Class decorator: ``kind`` in a judge spec (``KIND:MODEL``) builds this class."""

    def decorate(cls: JudgeClass) -> JudgeClass:
        JUDGES.register(kind, cls, target=target_of(cls))
        return cls

    return decorate


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
    if not isinstance(kind, str) or kind not in JUDGES:
        raise UserError(f"judge spec kind {kind!r} unknown; {SPEC_HELP}")
    cls = JUDGES.get(kind)
    accepted = set(inspect.signature(cls).parameters)
    model = options.pop("model", None)
    if kind == "openai":
        options.setdefault("base_url", OPENAI_BASE_URL)
    options["model" if "model" in accepted else "model_or_path"] = model
    if not model:
        raise UserError(f"judge spec of kind {kind!r} names no model; {SPEC_HELP}")
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
    if not sep or kind not in JUDGES:
        raise UserError(f"judge spec {spec!r} not understood; {SPEC_HELP}")
    if kind == "openai":
        # Split at the URL, not at the first '@': model names may carry one.
        for marker in ("@http://", "@https://"):
            if marker in rest:
                model, _, url = rest.partition(marker)
                return {"kind": kind, "model": model, "base_url": marker[1:] + url}
        return {"kind": kind, "model": rest, "base_url": OPENAI_BASE_URL}
    return {"kind": kind, "model": rest}


def judge_for(spec: str | None, benchmark: str) -> Judge | RewardJudge:
    """The run's judge (``eval.judge``) for a benchmark that needs one."""
    if not spec:
        raise UserError(f"suite {benchmark!r} needs a judge: set eval.judge (e.g. --judge ...)")
    return make_judge(spec)
