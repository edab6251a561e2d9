"""Batched generation: left-padded, length-sorted, greedy by default.

Greedy decoding runs its own loop over the model's KV cache (:func:`greedy_tokens`), which
drops finished rows from the batch as it goes: HF ``generate`` keeps computing every row until
the longest one ends, which in the mini suite's evaluation is twice the work. Sampling, and any
model whose generation config asks for logits processors (a repetition penalty, banned words,
a minimum length, beams), go through HF ``generate``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from pathlib import Path

import torch

from gsil_bench.backend.chat import encode_prompt
from gsil_bench.errors import UserError
from gsil_bench.progress import progress_bar


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 32,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    description: str = "generating",
    progress: bool = True,
) -> list[str]:
    """Continue each rendered prompt; returns the decoded continuations in input order.

    Prompts are sorted by length so that each batch wastes little padding; sampling is seeded
    so the same call gives the same text on the same machine.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    outputs: list[str] = [""] * len(encoded)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        with progress_bar(len(encoded), description, enabled=progress) as bar:
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                width = max(len(encoded[i]) for i in idx)
                input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
                attention = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    ids = encoded[i]
                    input_ids[row, width - len(ids) :] = torch.tensor(ids)
                    attention[row, width - len(ids) :] = 1
                input_ids, attention = input_ids.to(device), attention.to(device)
                if not do_sample and plain_greedy(model):
                    rows = greedy_tokens(
                        model, input_ids, attention, max_new_tokens, tokenizer.eos_token_id
                    )
                else:
                    sampling = {"temperature": temperature, "top_p": top_p} if do_sample else {}
                    out = model.generate(
                        input_ids=input_ids,
                        attention_mask=attention,
                        max_new_tokens=max_new_tokens,
                        do_sample=do_sample,
                        pad_token_id=pad_id,
                        eos_token_id=tokenizer.eos_token_id,
                        **sampling,
                    )
                    rows = out[:, width:].tolist()
                for row, i in enumerate(idx):
                    outputs[i] = tokenizer.decode(rows[row], skip_special_tokens=True)
                bar.advance(len(idx))
    finally:
        torch.random.set_rng_state(generator_state)
        model.train(was_training)
    return outputs


# Generation-config fields under which greedy decoding is plain argmax; any other value
# (a repetition penalty, a minimum length, beams, banned or forced tokens) needs HF's
# logits processors.
_NEUTRAL = {
    "num_beams": (None, 1),
    "repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0),
    "encoder_no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,),
    "force_words_ids": (None,),
    "min_length": (None, 0),
    "min_new_tokens": (None, 0),
    "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "sequence_bias": (None,),
    "exponential_decay_length_penalty": (None,),
    "renormalize_logits": (None, False),
    "guidance_scale": (None, 1.0),
}


def plain_greedy(model) -> bool:
    """Whether greedy decoding of ``model`` is plain argmax (see ``_NEUTRAL``) and the model
    is a decoder-only one with a KV cache, so :func:`greedy_tokens` may replace ``generate``."""
    config = getattr(model, "generation_config", None)
    if config is None or getattr(model.config, "is_encoder_decoder", False):
        return False
    return all(getattr(config, name, None) in allowed for name, allowed in _NEUTRAL.items())


@torch.no_grad()
def greedy_tokens(
    model,
    input_ids: torch.Tensor,
    attention: torch.Tensor,
    max_new_tokens: int,
    eos_id: int | None,
    *,
    preallocate: bool = True,
) -> list[list[int]]:
    """Greedy continuations of a left-padded batch, each ending at (and including) EOS or
    after ``max_new_tokens`` tokens: the tokens HF ``generate`` gives without processors.

    Rows that ended are dropped from the batch and its KV cache once an eighth of the batch
    has ended (dropping at every step would copy the cache every step); position ids follow
    the attention mask as ``generate`` sets them for left padding. With ``preallocate`` (and a
    model whose cache layers are all plain full-attention ones) the keys and values go into
    buffers sized for the whole continuation (:class:`_PreallocatedLayer`) instead of
    HF's ``DynamicCache``, which copies every layer's cache at every step.
    """
    out: list[list[int]] = [[] for _ in range(input_ids.shape[0])]
    rows = torch.arange(input_ids.shape[0], device=input_ids.device)  # batch row -> output
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    parameters = inspect.signature(model.forward).parameters
    cache_arg = "cache" if "cache" in parameters else "past_key_values"
    # As ``generate`` does: the LM head on the last position only (the prompt's logits are
    # never read).
    last_only = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}
    given = _preallocated_cache(model, input_ids.shape[1] + max_new_tokens) if preallocate else None
    step = model(
        input_ids=input_ids,
        attention_mask=attention,
        position_ids=positions,
        use_cache=True,
        **last_only,
        **({cache_arg: given} if given is not None else {}),
    )
    cache, last = _cache_of(step), positions[:, -1]
    ended = torch.zeros_like(rows, dtype=torch.bool)
    for made in range(max_new_tokens):
        token = step.logits[:, -1].argmax(-1)
        for row, t in zip(rows[~ended].tolist(), token[~ended].tolist(), strict=True):
            out[row].append(t)
        if eos_id is not None:
            ended |= token == eos_id
        if bool(ended.all()) or made + 1 == max_new_tokens:
            break
        if int(ended.sum()) * 8 >= len(rows):
            keep = (~ended).nonzero().squeeze(-1)
            cache.batch_select_indices(keep)
            rows, token, attention, last = rows[keep], token[keep], attention[keep], last[keep]
            ended = ended[keep]
        attention = torch.cat([attention, attention.new_ones((len(rows), 1))], dim=-1)
        last = last + 1
        step = model(
            input_ids=token[:, None],
            attention_mask=attention,
            position_ids=last[:, None],
            use_cache=True,
            **last_only,
            **{cache_arg: cache},
        )
    return out


class _GrowingBuffers:
    """Keys and values of one attention layer in buffers of ``capacity`` positions, written in
    place; ``keys``/``values`` are views of the filled prefix, so attention runs over exactly
    the positions HF's ``DynamicLayer`` would hold and gives the same numbers."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.filled = 0
        self.key_buffer: torch.Tensor | None = None
        self.value_buffer: torch.Tensor | None = None

    def append(
        self, key_states: torch.Tensor, value_states: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.key_buffer is None or self.value_buffer is None:
            batch, heads, _, _ = key_states.shape
            shape = (batch, heads, self.capacity)
            self.key_buffer = key_states.new_empty((*shape, key_states.shape[-1]))
            self.value_buffer = value_states.new_empty((*shape, value_states.shape[-1]))
        end = self.filled + key_states.shape[-2]
        if end > self.capacity:
            raise ValueError(f"KV buffers of {self.capacity} positions cannot hold {end}")
        self.key_buffer[:, :, self.filled : end] = key_states
        self.value_buffer[:, :, self.filled : end] = value_states
        self.filled = end
        return self.key_buffer[:, :, :end], self.value_buffer[:, :, :end]

    def select_rows(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep the batch rows ``indices`` (one copy of the buffers, as ``DynamicLayer``'s)."""
        assert self.key_buffer is not None and self.value_buffer is not None
        self.key_buffer = self.key_buffer.index_select(0, indices)
        self.value_buffer = self.value_buffer.index_select(0, indices)
        return self.key_buffer[:, :, : self.filled], self.value_buffer[:, :, : self.filled]


def _preallocated_cache(model, capacity: int):
    """A ``DynamicCache`` for ``model`` whose layers write into preallocated buffers, or None
    where that cannot be done the same way as HF (transformers without cache layers, or a
    model with sliding-window or other non-plain layers): the caller then lets the model make
    its own cache."""
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer
    except ImportError:
        return None
    try:
        cache = DynamicCache(config=model.config)
    except TypeError:  # transformers without per-layer caches
        return None
    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) is not DynamicLayer for layer in layers):
        return None
    if not hasattr(DynamicLayer, "lazy_initialization"):  # the layer API before 4.56
        return None
    layer_class = _preallocated_layer_class(DynamicLayer)
    cache.layers = [layer_class(capacity) for _ in layers]
    return cache


@functools.cache
def _preallocated_layer_class(dynamic_layer: type) -> type:
    """A subclass of transformers' ``DynamicLayer`` (made on first use: the import of
    ``transformers`` stays lazy) that keeps its keys and values in :class:`_GrowingBuffers`.
    Everything else (mask sizes, sequence length) is ``DynamicLayer``'s, read off the views."""

    class _PreallocatedLayer(dynamic_layer):  # type: ignore[misc, valid-type]
        def __init__(self, capacity: int):
            super().__init__()
            self.buffers = _GrowingBuffers(capacity)

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            self.keys, self.values = self.buffers.append(key_states, value_states)
            return self.keys, self.values

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            if self.get_seq_length() > 0:
                self.keys, self.values = self.buffers.select_rows(indices)

    return _PreallocatedLayer


def _cache_of(output):
    """The KV cache of a forward's output: ``cache`` in transformers 5.2x, before that
    ``past_key_values``."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def generate_vllm(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    staging_dir: Path,
    max_new_tokens: int = 128,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
) -> list[str]:
    """The same contract as :func:`generate`, served by vLLM (GPU users, extra ``vllm``).

    vLLM loads weights from disk, so the model in memory is saved to ``staging_dir`` first
    (once per weight fingerprint: the caller names the folder after it).
    """
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        raise UserError(
            "generation.backend=vllm needs vLLM: pip install 'gsil-bench[vllm]' (GPU machines)"
        ) from None
    from gsil_bench.backend.model import save_pretrained

    if not (staging_dir / "config.json").exists():
        save_pretrained(model, tokenizer, staging_dir)
    llm = LLM(model=str(staging_dir), seed=seed)
    params = SamplingParams(
        max_tokens=max_new_tokens,
        temperature=temperature if do_sample else 0.0,
        top_p=top_p if do_sample else 1.0,
        seed=seed,
    )
    outputs = llm.generate(list(prompts), params)
    del llm  # frees the GPU memory vLLM reserved before training resumes
    return [out.outputs[0].text for out in outputs]
