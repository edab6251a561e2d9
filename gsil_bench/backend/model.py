"""Loading HF causal LMs (a local folder or a Hub name), saving, and content fingerprints."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from gsil_bench.errors import UserError

# Our own Rich bars report progress; transformers' per-file bars would interleave with them.
hf_logging.disable_progress_bar()

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(name: str) -> torch.dtype:
    if name != "auto":
        return _DTYPES[name]
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_pretrained(name_or_path: str, *, dtype: str = "auto", trust_remote_code: bool = False):
    """(model, tokenizer) from a local folder or a Hub name; left padding for generation."""
    local = Path(name_or_path)
    if name_or_path.startswith((".", "/", "~")) and not local.expanduser().exists():
        raise UserError(f"model path {name_or_path} does not exist")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            name_or_path, dtype=resolve_dtype(dtype), trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as exc:  # ValueError: a folder whose files do not make a model
        raise UserError(f"cannot load model {name_or_path!r}: {exc}".splitlines()[0]) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model, tokenizer


def save_pretrained(model, tokenizer, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    unwrapped = getattr(model, "module", model)
    unwrapped.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)


@torch.no_grad()
def fingerprint_model(model) -> str:
    """A content hash of the weights: shapes plus a strided sample and the sum of every tensor.

    Cheap for 7B models (no full pass over bytes) yet changes whenever training moved the
    weights, which is what cache keys need.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(getattr(model, "module", model).state_dict().items()):
        flat = tensor.detach().reshape(-1)
        stride = max(1, flat.numel() // 4096)
        sample = flat[::stride].float().cpu()
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(sample.numpy().tobytes())
        digest.update(repr(float(flat.float().sum())).encode())
    return digest.hexdigest()[:20]
