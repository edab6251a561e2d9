"""Evaluate a trained run, a checkpoint folder or any HF model on named suites (``eval``).

The record written next to the target carries the model fingerprint, the data fingerprint the
benchmarks report (``suite_fingerprint``: the mini suite's), package versions, the evaluation
settings (judge identity in each benchmark's details), per-item outcomes and timings.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gsil_bench.config import (
    EvalConfig,
    RunConfig,
    build_config,
    flatten_dotted,
    format_validation_error,
    parse_overrides,
    read_yaml,
    set_dotted,
)
from gsil_bench.errors import UserError
from gsil_bench.evaluation.result import BenchmarkResult
from gsil_bench.io import atomic_write_json, is_local, package_versions
from gsil_bench.record import RunDir, RunRecord


def resolve_target(target: str) -> tuple[str, RunConfig | None, Path]:
    """(model path or name, the run's config if TARGET is a run folder, where to write)."""
    path = Path(target)
    run_dir = RunDir(path)
    if path.is_dir() and run_dir.config_yaml.exists():  # a run folder
        config = build_config(read_yaml(run_dir.config_yaml), str(run_dir.config_yaml))
        if config.iterations == 0:  # a base-only run: its model is the base model it recorded
            if not run_dir.result_path.exists():
                raise UserError(f"run {path} has not finished yet ({run_dir.result_path})")
            record = RunRecord.read(run_dir.result_path)
            if record.status != "ok":
                raise UserError(
                    f"run {path} failed ({record.reason or record.status}): it has no model to"
                    " evaluate; run it again"
                )
            return record.model_path, config, path / "eval.json"
        model_dir = run_dir.model_dir(config.iterations)
        if not run_dir.round_complete(config.iterations):
            raise UserError(f"run {path} has no finished model yet ({model_dir} is missing)")
        return str(model_dir), config, path / "eval.json"
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UserError(f"{path} is neither a run folder nor a model folder (no config.json)")
        return str(path), None, path.parent / f"eval-{path.name}.json"
    if is_local(target):
        raise UserError(f"evaluation target {target} does not exist")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", target)
    return target, None, Path(f"eval-{safe}.json")


def eval_settings(
    run: RunConfig,
    suites: list[str] | None,
    limit: int | None,
    judge: str | None,
    overrides: list[str],
    config_file: Path | None = None,
) -> EvalConfig:
    """The run's evaluation section, then the ``eval:`` section of ``config_file``, then the
    ``eval.*`` overrides (``--set``), then the command line's suites, limit and judge where
    given. Only ``eval`` keys can be set: the rest of a run's config describes how its model
    was made (and, for the mini suite, which items are its test items)."""
    values: dict[str, Any] = run.eval.model_dump()
    if config_file is not None:
        tree = read_yaml(config_file) or {}
        others = sorted(set(tree) - {"eval"}) if isinstance(tree, dict) else ["(not a mapping)"]
        if others:
            raise UserError(
                f"{config_file}: eval reads only an eval: section; found {', '.join(others)}"
                " (those keys describe how a model is made: give them to train)"
            )
        for key, value in flatten_dotted(tree.get("eval") or {}).items():
            set_dotted(values, key, value, f"{config_file}: eval.{key}")
    for key, value in parse_overrides(overrides):
        section, _, rest = key.partition(".")
        if section != "eval" or not rest:
            raise UserError(
                f"--set {key}: eval sets eval.* keys only (e.g. eval.options.gsm8k.source=FILE)"
            )
        set_dotted(values, rest, value, key)
    if suites:
        values["suites"] = suites
    if limit is not None:
        values["limit"] = limit
    if judge:
        values["judge"] = judge
    source = str(config_file) if config_file is not None else "eval settings"
    source += " with --set " + " ".join(overrides) if overrides else ""
    try:
        return EvalConfig.model_validate(values)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, source, EvalConfig)) from None


def _suite_fingerprint(results: dict[str, BenchmarkResult]) -> str | None:
    """The data fingerprint the benchmarks report in their details (the mini suite's), if any."""
    found = (r.details.get("suite_fingerprint") for r in results.values())
    return next((fp for fp in found if fp), None)


def evaluate_target(
    target: str,
    *,
    suites: list[str] | None = None,
    limit: int | None = None,
    judge: str | None = None,
    output: Path | None = None,
    overrides: list[str] | None = None,
    config_file: Path | None = None,
) -> tuple[dict[str, Any], Path]:
    """Load TARGET, evaluate it on ``suites`` and write the record (atomically).

    The evaluation settings are the run's own (a run folder) or the defaults, then the
    ``eval:`` section of ``config_file``, then the ``eval.*`` ``overrides`` (``key=value``),
    then ``suites``/``limit``/``judge`` when given.
    """
    from gsil_bench.backend.model import fingerprint_model, load_pretrained
    from gsil_bench.evaluation.evaluate import evaluate_model

    model_path, run_config, default_out = resolve_target(target)
    run_config = run_config or RunConfig()
    cfg = eval_settings(run_config, suites, limit, judge, overrides or [], config_file)
    run = run_config.model_copy(update={"eval": cfg})
    model, tokenizer = load_pretrained(
        model_path, dtype=run_config.model.dtype, revision=run_config.model.revision
    )
    began = time.perf_counter()
    results = evaluate_model(model, tokenizer, run)
    record = {
        "target": target,
        "model_path": model_path,
        "model_fingerprint": fingerprint_model(model),
        "suite_fingerprint": _suite_fingerprint(results),
        "eval": cfg.model_dump(mode="json"),
        "versions": package_versions(),
        "benchmarks": {name: r.to_dict() for name, r in results.items()},
        "seconds": time.perf_counter() - began,
    }
    out = output or default_out
    atomic_write_json(out, record)
    return record, out
