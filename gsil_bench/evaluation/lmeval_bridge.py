"""Any lm-evaluation-harness task, run through its Python API on a model already in memory.

lm-eval is an optional dependency (``pip install 'gsil-bench[lm-eval]'``), imported only here
and only when a task is run. Metric keys follow lm-eval's ``metric,filter`` names as
``metric`` (filter ``none``) or ``metric/filter``; their standard errors go to ``details``.
Per-document outcomes come from lm-eval's logged samples, one item per document, with every
per-sample metric of every filter; ``score`` is the item's value of the task's first metric.
"""

from __future__ import annotations

import fnmatch
import json
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy
import torch

from gsil_bench.errors import UserError
from gsil_bench.evaluation.result import BenchmarkResult

INSTALL_HINT = "pip install 'gsil-bench[lm-eval]'"


def require_lm_eval():
    """The ``lm_eval`` module, or a UserError saying how to install it."""
    try:
        import lm_eval
        import lm_eval.models.huggingface  # noqa: F401  (the HFLM wrapper)
        import lm_eval.tasks  # noqa: F401
    except ImportError as err:
        raise UserError(
            f"lm-eval is not installed ({err}); install it with: {INSTALL_HINT}"
        ) from None
    return lm_eval


def _metric_key(key: str) -> tuple[str, bool] | None:
    """``"acc,none"`` -> ("acc", False); ``"acc_stderr,f"`` -> ("acc/f", True); else None."""
    if "," not in key:
        return None
    metric, _, filter_name = key.partition(",")
    stderr = metric.endswith("_stderr")
    metric = metric.removesuffix("_stderr")
    return (metric if filter_name == "none" else f"{metric}/{filter_name}"), stderr


def _number(value: Any) -> float | None:
    if isinstance(value, bool | int | float):
        return float(value)
    return None


def _jsonable(value: Any) -> Any:
    # Task configs can hold callables (Python-defined prompts); keep their names, not objects.
    return json.loads(json.dumps(value, default=str))


def _items(samples: Sequence[Mapping[str, Any]], primary: str | None) -> list[dict[str, Any]]:
    by_doc: dict[int, dict[str, Any]] = {}
    for sample in samples:
        doc_id = int(sample["doc_id"])
        item = by_doc.setdefault(
            doc_id,
            {"id": str(doc_id), "score": None, "target": str(sample.get("target", ""))},
        )
        filter_name = sample.get("filter", "none")
        for metric in sample.get("metrics", []):
            key = metric if filter_name == "none" else f"{metric}/{filter_name}"
            value = _number(sample.get(metric))
            if value is not None:
                item[key] = value
        responses = sample.get("filtered_resps") or []
        if responses and isinstance(responses[0], str):
            item["response" if filter_name == "none" else f"response/{filter_name}"] = responses[0]
        item.setdefault("prompt_hash", sample.get("prompt_hash"))
    for item in by_doc.values():
        item["score"] = item.get(primary) if primary else None
    return [by_doc[k] for k in sorted(by_doc)]


def results_to_benchmarks(output: Mapping[str, Any]) -> list[BenchmarkResult]:
    """Turn ``simple_evaluate``'s output into one BenchmarkResult per task and group."""
    results = {**output.get("results", {}), **output.get("groups", {})}
    samples = output.get("samples", {})
    seconds = float(output.get("total_evaluation_time_seconds", 0.0) or 0.0)
    benchmarks = []
    for name, entry in results.items():
        metrics: dict[str, float] = {}
        stderr: dict[str, Any] = {}
        for key, value in entry.items():
            parsed = _metric_key(key)
            if parsed is None:
                continue
            metric, is_stderr = parsed
            if is_stderr:
                stderr[metric] = _number(value)
            elif _number(value) is not None:
                metrics[metric] = float(value)
        primary = next(iter(metrics), None)
        details = {
            "lm_eval_version": output.get("lm_eval_version"),
            "task_version": output.get("versions", {}).get(name),
            "n_shot": output.get("n-shot", {}).get(name),
            "n_samples": output.get("n-samples", {}).get(name),
            "higher_is_better": output.get("higher_is_better", {}).get(name),
            "stderr": stderr,
            "task_config": _jsonable(output.get("configs", {}).get(name)),
            "task_hash": output.get("task_hashes", {}).get(name),
            "subtasks": output.get("group_subtasks", {}).get(name) or None,
            "evaluation_seconds_all_tasks": seconds,
        }
        items = _items(samples.get(name, []), primary)
        benchmarks.append(BenchmarkResult(f"lm-eval/{name}", metrics, items, seconds, details))
    return benchmarks


def _task_manager(
    names: list[str],
    include_path: str | Path | Sequence[str | Path] | None,
    include_defaults: bool,
) -> Any:
    """lm-eval's TaskManager over its tasks and ``include_path``; unknown names are UserErrors."""
    from lm_eval.tasks import TaskManager

    if not names:
        raise UserError("lm-eval: no task names given")
    paths = None
    if include_path is not None:
        raw = [include_path] if isinstance(include_path, str | Path) else list(include_path)
        paths = [str(Path(p).expanduser()) for p in raw]
        for p in paths:
            if not Path(p).exists():
                raise UserError(f"lm-eval include_path {p}: not found")
    manager = TaskManager(include_path=paths, include_defaults=include_defaults)
    known = set(manager.all_tasks)
    unknown = [
        n
        for n in names
        if n not in known
        and not Path(n).is_file()
        and not any(fnmatch.fnmatchcase(t, n) for t in known)  # lm-eval accepts glob patterns
    ]
    if unknown:
        raise UserError(
            f"lm-eval task(s) {', '.join(unknown)} not found"
            + (f" in lm-eval or {', '.join(paths)}" if paths else " (give include_path?)")
        )
    return manager


def _evaluate_keeping_rng(**kwargs: Any) -> Any:
    """lm-eval's ``simple_evaluate``, giving the caller its random states back.

    simple_evaluate reseeds Python, NumPy and torch globally; restoring them means evaluating
    mid-run does not change what training draws next.
    """
    from lm_eval import simple_evaluate

    py_state, np_state = random.getstate(), numpy.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            return simple_evaluate(**kwargs)
    finally:
        random.setstate(py_state)
        numpy.random.set_state(np_state)


def run_lmeval(
    model,
    tokenizer,
    tasks: str | Sequence[str],
    *,
    include_path: str | Path | Sequence[str | Path] | None = None,
    include_defaults: bool = True,
    limit: int | float | None = None,
    num_fewshot: int | None = None,
    batch_size: int = 8,
    max_length: int | None = None,
    apply_chat_template: bool = False,
    fewshot_as_multiturn: bool | None = None,
    system_instruction: str | None = None,
    gen_kwargs: str | Mapping[str, Any] | None = None,
    log_samples: bool = True,
    bootstrap_iters: int = 100_000,
    seed: int = 0,
) -> list[BenchmarkResult]:
    """Evaluate the in-memory ``model`` on lm-eval ``tasks`` (names, groups or tags).

    ``include_path`` adds directories of task YAMLs (local tasks override built-in ones);
    ``include_defaults=False`` skips indexing lm-eval's own tasks (faster for local tasks).
    """
    require_lm_eval()
    from lm_eval.models.huggingface import HFLM

    names = [tasks] if isinstance(tasks, str) else list(tasks)
    manager = _task_manager(names, include_path, include_defaults)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length)
    # Passed only when set, so that lm-eval's own default applies otherwise.
    options = {} if fewshot_as_multiturn is None else {"fewshot_as_multiturn": fewshot_as_multiturn}
    start = time.perf_counter()
    output = _evaluate_keeping_rng(
        model=lm,
        tasks=names,
        task_manager=manager,
        limit=limit,
        num_fewshot=num_fewshot,
        log_samples=log_samples,
        apply_chat_template=apply_chat_template,
        system_instruction=system_instruction,
        gen_kwargs=dict(gen_kwargs) if isinstance(gen_kwargs, Mapping) else gen_kwargs,
        bootstrap_iters=bootstrap_iters,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
        **options,
    )
    if output is None:  # non-zero ranks of a distributed run get nothing back
        return []
    output = dict(output)
    output.setdefault("total_evaluation_time_seconds", time.perf_counter() - start)
    benchmarks = results_to_benchmarks(output)
    for benchmark in benchmarks:
        benchmark.details.update(
            limit=limit, num_fewshot=num_fewshot, apply_chat_template=apply_chat_template, seed=seed
        )
    return benchmarks
