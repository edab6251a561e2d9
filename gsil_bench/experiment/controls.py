"""Controls: the base model's evaluation, cached by content, and how far a run moved from it.

A method that "did not degrade" may simply not have learned; the untrained base model as a row
and per-run measures of movement tell the two apart (DESIGN.md §11, issue 9). The diagnostics
of a trained run (``RunRecord.diagnostics``):

- ``moved_answers/<benchmark>``: the share of the benchmark's test items whose answer differs
  from the base model's answer to the same item (compared by ``answer_sha``, the hash a
  benchmark keeps per item; benchmarks that keep none are not compared);
- ``heldout_logp_delta``: the change in mean per-token log-likelihood of held-out
  demonstrations, trained minus base. The held-out demonstrations are the test items'
  references, so this is ``ref_logp`` of the final model minus the base model's, averaged
  over the benchmarks that report it (the mini suite's domains), each domain weighing alike;
- ``identical_pairs``: the share of training pairs whose negative equals the demonstration,
  over all rounds (such pairs give SPIN, and GSIL at shift 0, no gradient); absent for losses
  that use no negatives.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gsil_bench.backend.cache import DiskCache, content_key
from gsil_bench.config import RunConfig
from gsil_bench.evaluation.benchmark import BENCHMARKS
from gsil_bench.evaluation.evaluate import evaluate_model, expand_suites

Results = dict[str, dict[str, Any]]  # benchmark name -> BenchmarkResult.to_dict()
ModelLoader = Callable[[], tuple[Any, Any]]

HELDOUT_METRIC = "ref_logp"


def base_eval_key(config: RunConfig, base_fp: str) -> str:
    """Everything a base model's evaluation depends on: the weights, the evaluation settings,
    the content of what each benchmark evaluates on (a benchmark's optional
    ``content_fingerprint(run)``, e.g. the mini suite's test items), the length policy (the
    mini suite scores its references under it) and the dtype the model is loaded in."""
    contents = {}
    for name in expand_suites(config.eval.suites):
        benchmark = BENCHMARKS.get(name) if name in BENCHMARKS else None
        fingerprint = getattr(benchmark, "content_fingerprint", None)
        contents[name] = fingerprint(config) if fingerprint else None
    inputs = {
        "model": base_fp,
        "eval": config.eval.model_dump(mode="json"),
        "contents": contents,
        "lengths": [config.data.max_prompt_tokens, config.data.max_length],
        "dtype": config.model.dtype,
    }
    return content_key("base-eval", inputs)


def base_evaluation(
    config: RunConfig, cache: DiskCache, base_fp: str, load_base: ModelLoader
) -> Results:
    """The base model's results on the run's suites, evaluated once per content key (every
    run of one base model shares them: the ``base`` row and the trained runs' diagnostics).
    ``load_base`` gives (model, tokenizer) of the base, called only on a cache miss."""
    key = base_eval_key(config, base_fp)
    hit = cache.get("base-eval", key)
    if hit is not None:
        cached: Results = json.loads((hit / "results.json").read_text())
        return cached
    began = time.perf_counter()
    model, tokenizer = load_base()
    results = {name: r.to_dict() for name, r in evaluate_model(model, tokenizer, config).items()}

    def write(tmp: Path) -> None:
        (tmp / "results.json").write_text(json.dumps(results))

    meta = {"model": base_fp, "seconds": time.perf_counter() - began}
    cache.put("base-eval", key, write, meta)
    return results


def moved_share(result: Mapping[str, Any], base: Mapping[str, Any] | None) -> float | None:
    """Share of the items, matched by id, whose ``answer_sha`` differs from the base's; None
    when no item carries one on both sides."""
    if base is None:
        return None
    base_answers = {row["id"]: row.get("answer_sha") for row in base.get("items", [])}
    compared = [
        row["answer_sha"] != base_answers[row["id"]]
        for row in result.get("items", [])
        if row.get("answer_sha") is not None and base_answers.get(row["id"]) is not None
    ]
    return sum(compared) / len(compared) if compared else None


def heldout_logp_delta(results: Results, base: Results) -> float | None:
    """Mean over the benchmarks reporting ``ref_logp`` (on both sides, finite) of final minus
    base; None when there is none."""
    deltas = []
    for name, result in results.items():
        final = result["metrics"].get(HELDOUT_METRIC)
        start = base.get(name, {}).get("metrics", {}).get(HELDOUT_METRIC)
        if final is not None and start is not None and math.isfinite(final - start):
            deltas.append(final - start)
    return sum(deltas) / len(deltas) if deltas else None


def identical_pair_share(rounds: Sequence[Mapping[str, Any]]) -> float | None:
    """Identical negatives over pairs, summed over the rounds that counted both."""
    counted = [r for r in rounds if "pairs" in r and "identical_negatives" in r]
    pairs = sum(r["pairs"] for r in counted)
    return sum(r["identical_negatives"] for r in counted) / pairs if pairs else None


def run_diagnostics(
    results: Results, base: Results | None, rounds: Sequence[Mapping[str, Any]]
) -> dict[str, float]:
    """The diagnostics of a trained run (see the module docstring); keys whose inputs are
    missing (no evaluation, no negatives) are left out."""
    found: dict[str, float | None] = {}
    for name, result in results.items():
        found[f"moved_answers/{name}"] = moved_share(result, (base or {}).get(name))
    found["heldout_logp_delta"] = heldout_logp_delta(results, base or {})
    found["identical_pairs"] = identical_pair_share(rounds)
    return {key: value for key, value in found.items() if value is not None}
