"""Can this run's evaluation run? Checked once, before any base model or training work.

A paper recipe trains for hours before it evaluates; a judge prompt file that was never set
or a misspelt benchmark path must fail at the start, in one line naming the config key and the
path, not after the training. :func:`preflight` checks what can be checked offline:

- local benchmark data given as paths exist (``eval.options.<benchmark>.<key>``);
- judge prompt (and reference answer) files exist, and MT-Bench / HH safety with an LLM judge
  have their templates (MT-Bench's default sits next to local questions; the Hub has none);
- the benchmarks that need a judge have ``eval.judge`` set, and an HTTP judge answers one tiny
  request (one output token), so a wrong URL, key or model fails now (``contact_judge``);
- an lm-evaluation-harness task name resolves, when lm-eval is installed (without it the
  run fails at evaluation with lm-eval's own install hint, as before).

Hub sources (``hub``, ``hub:NAME``, ``owner/name``, ``hf://...``) are not fetched here: they are
downloaded when the benchmark runs. A local (``hf:``) or reward-model judge is not loaded here
either: loading it is the work this check runs before.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gsil_bench.errors import UserError
from gsil_bench.evaluation.benchmark import BENCHMARKS, parse_options
from gsil_bench.evaluation.evaluate import expand_suites
from gsil_bench.evaluation.files import HF_PREFIX, find_file, hub_name
from gsil_bench.evaluation.judging.templates import TEMPLATE_FILE_NAMES

if TYPE_CHECKING:
    from gsil_bench.config import RunConfig

# Each benchmark's options that name local data, and the default Hub name each is read against
# (``hub_name`` decides Hub or local with the same rule as the benchmark's own loader).
_DATA_KEYS: dict[str, tuple[str, ...]] = {
    "gsm8k": ("source",),
    "humaneval": ("problems",),
    "mt-bench": ("questions", "judge_prompts", "references"),
    "hh-safety": ("source", "judge_prompts"),
}
_JUDGED = ("mt-bench", "hh-safety")


def preflight(run: RunConfig, *, contact_judge: bool = True) -> None:
    """Raise one :class:`UserError` line if ``run``'s evaluation cannot run; else nothing.

    ``contact_judge``: send the HTTP judge (if a benchmark needs one) one tiny request."""
    cfg = run.eval
    lmeval_tasks: list[str] = []
    judged = False
    for name in expand_suites(cfg.suites):
        if name not in BENCHMARKS:
            lmeval_tasks.append(name)
            continue
        where = f"eval.options.{name}"
        options = parse_options(BENCHMARKS.get(name), cfg.options.get(name, {}), where)
        for key in _DATA_KEYS.get(name, ()):
            _check_path(getattr(options, key, None), f"{where}.{key}")
        if name in _JUDGED:
            _check_judge(name, cfg.judge, options, where)
            judged = True
    if lmeval_tasks and importlib.util.find_spec("lm_eval") is not None:
        from gsil_bench.evaluation.lmeval_bridge import _task_manager

        try:
            _task_manager(lmeval_tasks, cfg.lmeval_include_path, True)
        except UserError as err:
            raise UserError(f"eval.suites: {err}") from None
    if judged and contact_judge and cfg.judge and _judge_kind(cfg.judge) == "openai":
        _ask_judge(cfg.judge)


def _ask_judge(spec: str) -> None:
    """One request for one token: the judge's URL, key and model work, or one line why not."""
    from gsil_bench.evaluation.judging.base import make_judge

    try:
        judge = make_judge(spec, max_tokens=1, max_retries=1, progress=False)
        judge.complete([[{"role": "user", "content": "Reply with OK."}]])  # type: ignore[union-attr]
    except UserError as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(
            f"eval.judge: {spec}: did not answer a one-token request: {reason}"
        ) from None


def _is_local(value: str) -> bool:
    text = str(value)
    if text.startswith(HF_PREFIX) or text == "hub" or text.startswith("hub:"):
        return False
    return hub_name(text, "") is None


def _check_path(value: Any, key: str) -> None:
    """A local path given for ``key`` exists (a file or a data folder)."""
    if value is None or not _is_local(str(value)):
        return
    path = Path(str(value)).expanduser()
    if not path.exists():
        raise UserError(f"{key}: {path}: no such file or folder")


def _check_judge(name: str, spec: str | None, options: Any, where: str) -> None:
    if not spec:
        raise UserError(f"eval.judge: not set; suite {name!r} needs a judge (e.g. --judge ...)")
    if _judge_kind(spec) == "reward":
        if name == "mt-bench":
            raise UserError(f"eval.judge: {name} needs a judge that writes ratings, not reward")
        return  # a reward-model judge needs no templates
    if options.judge_prompts is not None:
        return  # checked as a path above
    if name == "hh-safety":
        raise UserError(
            f"{where}.judge_prompts: not set; an LLM judge needs FastChat's judge_prompts.jsonl"
            " (pair-v2)"
        )
    # MT-Bench's default: the templates next to a local question file or folder.
    questions = str(options.questions)
    local = Path(questions).expanduser()
    base = (local if local.is_dir() else local.parent) if _is_local(questions) else None
    if base is None or find_file(base, TEMPLATE_FILE_NAMES) is None:
        raise UserError(
            f"{where}.judge_prompts: not set and no judge_prompts.jsonl next to "
            f"{where}.questions ({questions}); give FastChat's judge_prompts.jsonl"
        )


def _judge_kind(spec: str) -> str | None:
    """The kind a judge spec names, without building the judge (no model, no client)."""
    text = spec.strip()
    if text.startswith("{"):
        try:
            kind = json.loads(text).get("kind")
        except (json.JSONDecodeError, AttributeError):
            return None  # the judge's own parser reports it when the benchmark runs
        return kind if isinstance(kind, str) else None
    if text.startswith(("http://", "https://")):
        return "openai"
    return text.partition(":")[0]
