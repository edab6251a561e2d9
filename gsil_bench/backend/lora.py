"""LoRA adapters on the policy (``model.peft``), through the ``peft`` library.

A round wraps its starting model with fresh adapters (B = 0, so the wrapped model computes
exactly what the starting model does) and trains only those. The round's reference is the
same model with the adapters disabled (:func:`adapters_disabled`), so no second copy of the
weights is held. The next round merges the trained adapters into the weights and adds fresh
ones: its reference, with adapters disabled, is then the previous round's policy.

Saved adapters (``adapter_model.safetensors`` + ``adapter_config.json``) name the folder of
the weights they apply to as ``base_model_name_or_path``: the base model for round 1, the
previous round's saved model after that; :func:`load_adapter_folder` follows that chain.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from gsil_bench.config import PeftConfig
from gsil_bench.errors import UserError

ADAPTER_CONFIG = "adapter_config.json"


def _peft() -> Any:
    try:
        import peft
    except ImportError:
        raise UserError(
            "model.peft needs the peft package: pip install 'gsil-bench[peft]'"
        ) from None
    return peft


def is_peft_model(model: Any) -> bool:
    """Whether ``model`` is a peft-wrapped model (without importing peft when it is absent)."""
    return hasattr(model, "peft_config") and hasattr(model, "disable_adapter")


def add_adapters(model: Any, config: PeftConfig, *, weights_from: str, seed: int = 0) -> Any:
    """``model`` wrapped with fresh LoRA adapters (only they train); ``weights_from`` is the
    folder or Hub name of the weights under them (written into the saved adapter config).
    The adapters' random A matrices are drawn from ``seed``, so a resumed round rebuilds the
    same ones before its checkpoint is loaded."""
    peft = _peft()
    lora = peft.LoraConfig(
        r=config.r,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            wrapped = peft.get_peft_model(model, lora)
        except ValueError as exc:  # e.g. target modules that the model does not have
            raise UserError(f"model.peft: {exc}".splitlines()[0]) from None
    # peft takes base_model_name_or_path from the model's name_or_path (for round 2 on, the
    # base's, not the previous round's): ours is set here.
    wrapped.peft_config["default"].base_model_name_or_path = weights_from
    return wrapped


def merged(model: Any) -> Any:
    """A peft model with its adapters merged into the weights (the plain model); any other
    model as it is."""
    if is_peft_model(model):
        return model.merge_and_unload()
    return model


@contextlib.contextmanager
def adapters_disabled(model: Any) -> Iterator[None]:
    """The model computes without its adapters inside (nothing changes for a plain model)."""
    if is_peft_model(model):
        with model.disable_adapter():
            yield
    else:
        yield


def save_adapters(model: Any, path: Path) -> None:
    """adapter_model.safetensors + adapter_config.json of a peft model, in ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)


def has_adapters(path: Path) -> bool:
    return (path / ADAPTER_CONFIG).is_file()


def load_adapters(model: Any, path: Path) -> Any:
    """``model`` (the weights the adapters were trained on) wrapped with the saved adapters
    of ``path``, in inference mode."""
    peft = _peft()
    return peft.PeftModel.from_pretrained(model, str(path))


def adapter_base(path: Path) -> str:
    """The folder or Hub name of the weights the adapters in ``path`` apply to."""
    try:
        base = json.loads((path / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {path / ADAPTER_CONFIG}: {exc}") from None
    if not base:
        raise UserError(f"{path / ADAPTER_CONFIG} names no base_model_name_or_path")
    return str(base)
