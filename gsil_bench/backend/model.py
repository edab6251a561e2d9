"""Loading HF causal LMs (a local folder or a Hub name), saving, and content fingerprints."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from accelerate import PartialState
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from gsil_bench.backend import lora
from gsil_bench.errors import UserError
from gsil_bench.hub_access import offline_unless_reachable

# Our own Rich bars report progress; transformers' per-file bars would interleave with them.
hf_logging.disable_progress_bar()

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(name: str) -> torch.dtype:
    if name != "auto":
        return _DTYPES[name]
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_pretrained(
    name_or_path: str,
    *,
    dtype: str = "auto",
    trust_remote_code: bool = False,
    revision: str | None = None,
):
    """(model, tokenizer) from a local folder or a Hub name; left padding for generation.

    ``revision`` pins a Hub model to a branch, tag or commit (SPIN trained a specific commit of
    zephyr-7b-sft-full); None is the default branch. A local folder has no revisions.
    """
    local = Path(name_or_path)
    if name_or_path.startswith((".", "/", "~")) and not local.expanduser().exists():
        raise UserError(f"model path {name_or_path} does not exist")
    if lora.has_adapters(local):
        return _load_adapter_folder(local, dtype=dtype, trust_remote_code=trust_remote_code)
    pin = {"revision": revision} if revision else {}
    if not local.expanduser().exists():  # a Hub name: offline at once when it cannot answer
        offline_unless_reachable()
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            name_or_path, trust_remote_code=trust_remote_code, **pin
        )
        model = AutoModelForCausalLM.from_pretrained(
            name_or_path, dtype=resolve_dtype(dtype), trust_remote_code=trust_remote_code, **pin
        )
    except (OSError, ValueError) as exc:  # ValueError: a folder whose files do not make a model
        raise UserError(f"cannot load model {name_or_path!r}: {exc}".splitlines()[0]) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    # On this process's accelerator (cuda:<local rank> under accelerate launch, else the CPU):
    # generation, reference passes and evaluation run where the model is, before train()
    # would place it.
    return model.to(PartialState().device), tokenizer


def _load_adapter_folder(path: Path, *, dtype: str, trust_remote_code: bool):
    """(model, tokenizer) of a folder of saved LoRA adapters: the weights they apply to
    (loaded the same way, so a chain of rounds' adapters loads back to the base), with the
    adapters merged in."""
    base = lora.adapter_base(path)
    model, _ = load_pretrained(base, dtype=dtype, trust_remote_code=trust_remote_code)
    model = lora.merged(lora.load_adapters(model, path))
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model, tokenizer


LOW_PRECISION = (torch.bfloat16, torch.float16)


def parameter_dtype(model) -> torch.dtype:
    """The dtype of the model's floating-point parameters (the first one's; float32 if none)."""
    for p in getattr(model, "module", model).parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def upcast_to_master_weights(model) -> torch.dtype | None:
    """Give a bf16/fp16 model fp32 master weights for training; returns the dtype it had (to
    cast back with :func:`finish_training`), or None when its trainable weights were fp32.

    An optimizer that updates bf16 weights directly loses every update below the weight's
    rounding step (2**-8 of its magnitude): at the papers' lr 5e-7 almost all of them, so the
    model would stay at its start. Both releases train with DeepSpeed bf16, which keeps fp32
    master weights; here the forward runs under autocast in the low-precision dtype instead.
    """
    low = [p.dtype for p in model.parameters() if p.requires_grad and p.dtype in LOW_PRECISION]
    if not low:
        return None
    model.to(torch.float32)
    return low[0]


def training_precision(mixed_precision: str, loaded: torch.dtype | None) -> str:
    """accelerate's mixed precision for a run: an explicit setting as it is; ``auto`` is
    autocast in the dtype the model was loaded in (bf16/fp16), else bf16 on a GPU that has
    it and none elsewhere."""
    if mixed_precision != "auto":
        return mixed_precision
    if loaded is not None:
        return "bf16" if loaded == torch.bfloat16 else "fp16"
    gpu_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return "bf16" if gpu_bf16 else "no"


def finish_training(model, dtype: torch.dtype | None):
    """The trained module without accelerate's autocast wrapper on its forward (generation
    and evaluation then run as a freshly loaded copy would), cast back to ``dtype`` when
    training upcast it: the model in memory is then the one saved and the one a resumed run
    loads, so both continue identically. The fp32 masters are not handed on: the releases'
    next iteration, too, starts from the 16-bit weights DeepSpeed saved (see
    :mod:`gsil_bench.experiment.rounds`)."""
    from accelerate.utils import extract_model_from_parallel

    module = extract_model_from_parallel(model, keep_fp32_wrapper=False)
    # LoRA: the frozen weights were never upcast, and the adapters stay fp32 (peft's dtype
    # for them, the one they load back in).
    if dtype is not None and not lora.is_peft_model(module):
        module.to(dtype)
    return module


def save_pretrained(model, tokenizer, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    unwrapped = getattr(model, "module", model)
    if lora.is_peft_model(unwrapped):
        # The adapters (adapter_model.safetensors + adapter_config.json). No full embedding
        # layers: gsil-bench never resizes the vocabulary.
        unwrapped.save_pretrained(path, safe_serialization=True, save_embedding_layers=False)
    else:
        unwrapped.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)


@torch.no_grad()
def fingerprint_model(model) -> str:
    """A content hash of the weights: shapes, a strided sample and a checksum of every tensor.

    Cheap for 7B models (no full pass over bytes) yet changes whenever training moved the
    weights, which is what cache keys need. The checksum adds the tensor's bits read as
    integers: integer addition does not depend on the order of the terms, so the value is
    the same whatever the number of threads (a float sum is not, and a key that changed with
    the thread count would miss the cache between a 1-thread and a 2-thread process).
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(getattr(model, "module", model).state_dict().items()):
        flat = tensor.detach().reshape(-1)
        stride = max(1, flat.numel() // 4096)
        sample = flat[::stride].float().cpu()
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(sample.numpy().tobytes())
        digest.update(str(_bits_checksum(flat)).encode())
    return digest.hexdigest()[:20]


_INT_OF_WIDTH = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _bits_checksum(flat: torch.Tensor) -> int:
    """The sum of the tensor's elements reinterpreted as integers of their width (exact)."""
    if flat.dtype == torch.bool:
        flat = flat.to(torch.uint8)
    bits = flat.contiguous().view(_INT_OF_WIDTH[flat.element_size()])
    return int(bits.sum(dtype=torch.int64))
