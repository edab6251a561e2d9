"""Model cards: a ``README.md`` in the Hub's model-card format in every saved model folder.

YAML front matter (``base_model`` and ``datasets`` when they are Hub names, ``library_name``,
``tags``), then what made the model: the loss and its hyperparameters, the data and its
quality transforms, the round, the optimizer, the evaluation results (final round only: the
others were not evaluated) and the gsil-bench version and full config. Written from the run's
record once the run has finished, so a card never describes a model half made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gsil_bench.config import DataConfig, RunConfig, config_to_yaml
from gsil_bench.io import atomic_write_text, is_local
from gsil_bench.record import RunDir, RunRecord

EMBEDDED = {"tiny": "the embedded tiny Llama", "mini": "the embedded mini suite"}


def write_model_cards(record: RunRecord, config: RunConfig, run_dir: RunDir) -> list[Path]:
    """``README.md`` in the model folder of every round of the run; returns their paths."""
    written = []
    for index in range(1, config.iterations + 1):
        folder = run_dir.model_dir(index)
        if folder.is_dir():
            path = folder / "README.md"
            atomic_write_text(path, model_card(record, config, index))
            written.append(path)
    return written


def model_card(record: RunRecord, config: RunConfig, round_index: int) -> str:
    """The card of round ``round_index``'s model of the run ``record``."""
    final = round_index == config.iterations
    lines = [
        "---",
        yaml.safe_dump(_front_matter(record, config), sort_keys=False).rstrip(),
        "---",
        "",
        f"# {record.loss} on {_name(config.data.source)}",
        "",
        f"Trained with gsil-bench {record.versions.get('gsil-bench', '')}:"
        f" round {round_index} of {config.iterations}"
        f" from {_name(config.model.name)}, seed {config.seed}.",
        "",
        "## Training",
        "",
        "| | |",
        "|---|---|",
        f"| loss | `{record.loss}` |",
        *(f"| {key} | {value} |" for key, value in record.hparams.items()),
        f"| optimizer | {config.optim.optimizer}, lr {config.optim.lr:g},"
        f" batch {config.optim.batch_size} x {config.optim.grad_accum},"
        f" {config.optim.epochs:g} epoch(s), {config.optim.schedule} schedule |",
        f"| data | {_name(config.data.source)} (split {config.data.split}),"
        f" {record.data.get('demonstrations', '?')} demonstrations |",
        f"| data transforms | {_transforms(config.data)} |",
        f"| negatives | {config.data.negatives} |",
        "",
        "## Evaluation",
        "",
        *(_results(record) if final else ["Not evaluated: only the final round is."]),
        "",
        "## Config",
        "",
        "```yaml",
        config_to_yaml(config).rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def _front_matter(record: RunRecord, config: RunConfig) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if _is_hub_name(config.model.name):
        meta["base_model"] = config.model.name
    if _is_hub_name(config.data.source):
        meta["datasets"] = [config.data.source]
    meta["library_name"] = "transformers"
    meta["tags"] = ["gsil-bench", record.loss, "alignment-from-demonstrations"]
    return meta


def _is_hub_name(name: str) -> bool:
    return name not in EMBEDDED and not is_local(name)


def _name(name: str) -> str:
    return EMBEDDED.get(name, f"`{name}`")


def _transforms(data: DataConfig) -> str:
    default = type(data.quality)()
    changed = {
        key: value
        for key, value in data.quality.model_dump().items()
        if value != getattr(default, key)
    }
    return ", ".join(f"{key}={value}" for key, value in changed.items()) or "none"


def _results(record: RunRecord) -> list[str]:
    if not record.benchmarks:
        return ["No benchmark was run (`eval.suites` was empty)."]
    rows = ["| benchmark | metric | value | items |", "|---|---|---:|---:|"]
    for name, result in record.benchmarks.items():
        for metric, value in result.get("metrics", {}).items():
            rows.append(f"| {name} | {metric} | {value:.4f} | {len(result.get('items', []))} |")
    return rows
