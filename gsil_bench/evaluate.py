"""Evaluate a trained run, a checkpoint folder or any HF model on named suites.

The record written next to the target carries the model fingerprint, the suite's data
fingerprint, package versions, judge identity, per-item outcomes and timings.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from gsil_bench.config import EvalConfig, RunConfig, build_config, read_yaml
from gsil_bench.errors import UserError


def resolve_target(target: str) -> tuple[str, RunConfig | None, Path]:
    """(model path or name, the run's config if TARGET is a run folder, where to write)."""
    path = Path(target)
    if path.is_dir() and (path / "config.yaml").exists():  # a run folder
        config = build_config(read_yaml(path / "config.yaml"), str(path / "config.yaml"))
        model_dir = path / f"round-{config.iterations}" / "model"
        if not (model_dir / "COMPLETE").exists():
            raise UserError(f"run {path} has no finished model yet ({model_dir} is missing)")
        return str(model_dir), config, path / "eval.json"
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UserError(f"{path} is neither a run folder nor a model folder (no config.json)")
        return str(path), None, path.parent / f"eval-{path.name}.json"
    if target.startswith((".", "/", "~")) or path.suffix:
        raise UserError(f"evaluation target {target} does not exist")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", target)
    return target, None, Path(f"eval-{safe}.json")


def evaluate_target(
    target: str,
    *,
    suites: list[str],
    limit: int | None = None,
    judge: str | None = None,
    output: Path | None = None,
) -> tuple[dict[str, Any], Path]:
    from gsil_bench.backend.model import fingerprint_model, load_pretrained
    from gsil_bench.evaluation.suites import evaluate_model
    from gsil_bench.pipeline import package_versions

    model_path, run_config, default_out = resolve_target(target)
    run_config = run_config or RunConfig()
    cfg = EvalConfig(
        **{
            **run_config.eval.model_dump(),
            "suites": suites,
            "limit": limit,
            "judge": judge or run_config.eval.judge,
        }
    )
    suite = None
    if "mini" in suites:
        from gsil_bench.data.minisuite import build_suite

        suite = build_suite(run_config.data.mini)
    model, tokenizer = load_pretrained(model_path, dtype=run_config.model.dtype)
    began = time.perf_counter()
    results = evaluate_model(model, tokenizer, cfg, suite=suite)
    record = {
        "target": target,
        "model_path": model_path,
        "model_fingerprint": fingerprint_model(model),
        "suite_fingerprint": suite.fingerprint() if suite is not None else None,
        "eval": cfg.model_dump(mode="json"),
        "versions": package_versions(),
        "benchmarks": {name: r.to_dict() for name, r in results.items()},
        "seconds": time.perf_counter() - began,
    }
    out = output or default_out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1, default=float))
    return record, out
