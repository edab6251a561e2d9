"""GSM8K exactly as lm-evaluation-harness 0.4's ``gsm8k`` task measures it.

Prompt: ``Question: {q}\\nAnswer: {a}`` shots joined by a blank line, then
``Question: {q}\\nAnswer:`` (5-shot from the train split, as on the Open LLM leaderboard).
Extraction: "strict-match" takes the first ``#### n``; "flexible-extract" takes the last
number-like token. Both predictions and the gold answer then go through the task's exact_match
normalisation: the regexes ``,``, ``\\$``, ``(?s).*#### `` and ``\\.$`` are deleted in that
order, and case is ignored.

``protocol`` runs it as GSIL or SPIN ran it instead: see :mod:`gsm8k_protocols`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from gsil_bench.errors import UserError
from gsil_bench.evaluation.benchmark import BenchmarkOptions, FileScoring, register_benchmark
from gsil_bench.evaluation.benchmarks.gsm8k_scoring import (
    FEWSHOT_SEED,
    NUM_FEWSHOT,
    STOP_SEQUENCES,
    gsm8k_prompt,
)
from gsil_bench.evaluation.files import hub_name
from gsil_bench.evaluation.result import BenchmarkResult
from gsil_bench.hub_access import load_hub_dataset
from gsil_bench.io import iter_jsonl_objects

if TYPE_CHECKING:
    from gsil_bench.config import EvalConfig, RunConfig

MAX_NEW_TOKENS = 256  # lm-eval's default max_gen_toks
HUB_NAME = "openai/gsm8k"

ProtocolName = Literal["lm-eval", "gsil", "spin"]


def gsm8k_chat_messages(question: str) -> list[dict[str, str]]:
    """Zero-shot chat variant: what lm-eval sends with ``--apply_chat_template --num_fewshot 0``."""
    return [{"role": "user", "content": gsm8k_prompt(question)}]


def default_fewshot(
    train: Sequence[Mapping[str, Any]], n: int = NUM_FEWSHOT, seed: int = FEWSHOT_SEED
) -> list[Mapping[str, Any]]:
    """``n`` train examples drawn with ``random.Random(seed).sample``.

    This is the first draw lm-eval's sampler makes with its default seed 1234. lm-eval then keeps
    drawing a new set for every test question from the same stream, so its shots depend on the
    order and number of questions evaluated; we use this one set for every question, so a
    ``--limit`` run prompts its questions exactly as the full run does.
    """
    if len(train) < n:
        raise UserError(
            f"GSM8K few-shot: need {n} train examples, the train split has {len(train)}"
        )
    return random.Random(seed).sample(list(train), n)


def cut_at_stop(text: str, stops: Sequence[str] = STOP_SEQUENCES) -> str:
    """Truncate a generation at the first stop sequence, as lm-eval's ``until`` does."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]


# --- data -----------------------------------------------------------------------------------------
def read_records(path: str | Path, fields: Sequence[str]) -> list[dict[str, Any]]:
    """Records of a jsonl file, each required to hold every field in ``fields`` as a string."""
    records = []
    for line_no, record in iter_jsonl_objects(path):
        for name in fields:
            if not isinstance(record.get(name), str):
                raise UserError(f"{path}:{line_no}: field {name!r} missing or not a string")
        records.append(record)
    return records


def load_gsm8k(
    source: str | Path = HUB_NAME, split: str = "test", limit: int | None = None
) -> list[dict[str, Any]]:
    """GSM8K records (``question``, ``answer``) from a jsonl file, a directory holding
    ``{split}.jsonl`` (as in openai/grade-school-math), or a Hub dataset (config ``main``;
    ``hub`` is openai/gsm8k)."""
    name = hub_name(source, HUB_NAME)
    if name is not None:
        records = _load_hub(name, split)
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            candidates = [path / f"{split}.jsonl", path / f"{split}.jsonl.gz"]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise UserError(f"{path}: no {split}.jsonl in this GSM8K directory")
            records = read_records(found, ("question", "answer"))
        elif path.is_file():
            records = read_records(path, ("question", "answer"))
        else:
            raise UserError(f"{source}: no such GSM8K file or directory")
    return records[:limit] if limit else records


def _load_hub(name: str, split: str) -> list[dict[str, Any]]:
    dataset = load_hub_dataset(
        name,
        what=f"GSM8K (config main, split {split})",
        hint="no local path by that name either; give a path to the jsonl files for offline use",
        name="main",
        split=split,
    )
    return [{"question": row["question"], "answer": row["answer"]} for row in dataset]


# --- evaluation of a model in memory --------------------------------------------------------------
def run_gsm8k(
    model: Any,
    tokenizer: Any,
    *,
    source: str | Path = HUB_NAME,
    limit: int | None = None,
    batch_size: int = 8,
    num_fewshot: int = NUM_FEWSHOT,
    chat: bool = False,
    max_new_tokens: int = MAX_NEW_TOKENS,
    progress: bool = True,
    protocol: str = "lm-eval",
) -> BenchmarkResult:
    """Greedy GSM8K test accuracy: lm-eval's 5-shot prompt, or zero-shot chat with ``chat``;
    ``protocol`` ``gsil`` / ``spin`` runs it as the harness version of that paper did."""
    from gsil_bench.backend.chat import render_prompt
    from gsil_bench.backend.generation import generate
    from gsil_bench.evaluation.benchmarks.gsm8k_protocols import (
        protocol_named,
        protocol_prompts,
        score_gsm8k_protocol,
    )

    spec = protocol_named(protocol)
    if spec.name != "lm-eval":
        if chat:
            raise UserError(
                f"GSM8K protocol {spec.name!r} is the harness's few-shot prompt, no chat"
            )
        full = load_gsm8k(source, "test")
        ordered = protocol_prompts(full, load_gsm8k(source, "train"), spec, num_fewshot, limit)
        test = [{**full[i], "id": i} for i, _ in ordered]
        prompts = [prompt for _, prompt in ordered]
        shots: list[Mapping[str, Any]] = []
    else:
        test = load_gsm8k(source, "test", limit)
        use_shots = num_fewshot and not chat
        shots = default_fewshot(load_gsm8k(source, "train"), num_fewshot) if use_shots else []
        if chat:
            prompts = [render_prompt(tokenizer, gsm8k_chat_messages(r["question"])) for r in test]
        else:
            prompts = [gsm8k_prompt(r["question"], shots) for r in test]
    began = time.perf_counter()
    outputs = generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        description="gsm8k",
        progress=progress,
    )
    generation_s = time.perf_counter() - began
    records = [
        {"id": r.get("id", i), "answer": r["answer"], "completion": cut_at_stop(out, spec.stops)}
        for i, (r, out) in enumerate(zip(test, outputs, strict=True))
    ]
    result = score_gsm8k_protocol(records, spec.name)
    if spec.name != "lm-eval":
        prompt = f"{spec.source}, {num_fewshot}-shot drawn per question"
    else:
        prompt = "zero-shot chat" if chat else f"lm-eval gsm8k, {len(shots)}-shot"
    result.details.update(
        {
            "source": str(source),
            "prompt": prompt,
            "stops": list(spec.stops),
            "fewshot_seed": spec.fewshot_seed,
            "decoding": "greedy",
            "max_new_tokens": max_new_tokens,
            "generation_s": generation_s,
        }
    )
    for item, out in zip(result.items, records, strict=True):
        item["completion"] = out["completion"]
    result.seconds += generation_s
    return result


# --- the registered benchmark ---------------------------------------------------------------------
class GSM8KOptions(BenchmarkOptions):
    source: str = Field(
        HUB_NAME, description="A jsonl file, a folder with test/train.jsonl, or a Hub dataset."
    )
    protocol: ProtocolName = Field(
        "lm-eval",
        description="lm-eval (current task), gsil (harness v0.3.1 b281b09), spin (v0.4.0 46c7966).",
    )


@register_benchmark
class GSM8K:
    """GSM8K test accuracy with lm-eval's 5-shot prompt; scores generation files too."""

    name: ClassVar[str] = "gsm8k"
    summary: ClassVar[str] = "GSM8K test: exact match of the final number (lm-eval's gsm8k)"
    Options: ClassVar[type[BenchmarkOptions]] = GSM8KOptions
    file_scoring: ClassVar[FileScoring] = FileScoring(
        help="Exact match of the final number, as lm-eval's gsm8k task extracts it "
        "(strict, flexible).",
        file_help="JSONL with the GSM8K `answer` and the `completion`.",
        options=(),
        note=lambda result: "strict: the number after ####; flexible: the last number",
    )

    def run(
        self, model: Any, tokenizer: Any, cfg: EvalConfig, options: Any, run: RunConfig
    ) -> list[BenchmarkResult]:
        return [
            run_gsm8k(
                model,
                tokenizer,
                source=options.source,
                limit=cfg.limit,
                batch_size=cfg.batch_size,
                protocol=options.protocol,
            )
        ]

    def score_file(self, path: Path, options: Any) -> list[BenchmarkResult]:
        from gsil_bench.evaluation.benchmarks.gsm8k_protocols import score_gsm8k_protocol

        records = read_records(path, ("answer", "completion"))
        return [score_gsm8k_protocol(records, getattr(options, "protocol", "lm-eval"))]
