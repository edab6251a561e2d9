"""Tokenised training examples, the length policy, padding and summed response log-probs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.utils.checkpoint

from gsil_bench.backend.chat import encode_prompt, encode_response, render_prompt


@dataclass
class TrainExample:
    """Token ids of one prompt with its demonstration and (optionally) its negative."""

    prompt_ids: list[int]
    real_ids: list[int]
    generated_ids: list[int] | None = None


@dataclass
class LengthReport:
    kept: int = 0
    prompts_truncated: int = 0
    responses_truncated: int = 0
    dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


# Texts are cut to CHARS_PER_TOKEN characters per token of budget before they are tokenised,
# so that a multi-megabyte record costs what max_length tokens cost instead of gigabytes of
# tokenizer output that the length policy then throws away. BPE and SentencePiece tokenizers
# average about 4 characters per token on English text and rarely 8 on anything else, so 16
# is a generous bound: the cut text still yields more tokens than the budget, and the tokens
# kept are exactly those of the whole text (a text within the bound is not touched at all).
CHARS_PER_TOKEN = 16


def head_text(text: str, tokens: int) -> tuple[str, bool]:
    """The start of ``text`` that can hold ``tokens`` tokens, and whether it was cut."""
    bound = CHARS_PER_TOKEN * tokens
    return (text[:bound], True) if len(text) > bound else (text, False)


def tail_text(text: str, tokens: int) -> tuple[str, bool]:
    """The end of ``text`` that can hold ``tokens`` tokens, and whether it was cut."""
    bound = CHARS_PER_TOKEN * tokens
    return (text[-bound:], True) if len(text) > bound else (text, False)


def prompt_ids(
    tokenizer, messages: Sequence[dict[str, str]], max_tokens: int
) -> tuple[list[int], bool]:
    """(token ids, whether the text was cut) of the rendered prompt, tokenising at most its
    last ``CHARS_PER_TOKEN * max_tokens`` characters (the length policy keeps a prompt's end)."""
    text, cut = tail_text(render_prompt(tokenizer, messages), max_tokens)
    return encode_prompt(tokenizer, text), cut


def response_ids(tokenizer, response: str, max_tokens: int) -> tuple[list[int], bool]:
    """(token ids with EOS, whether the text was cut) of a response, tokenising at most its
    first ``CHARS_PER_TOKEN * max_tokens`` characters. A cut response gets no EOS: it does
    not end there."""
    text, cut = head_text(response, max_tokens)
    ids = encode_response(tokenizer, text)
    if cut and tokenizer.eos_token_id is not None:
        ids = ids[:-1]
    return ids, cut


def fit_lengths(
    prompt: list[int], response: list[int], *, max_prompt: int, max_length: int
) -> tuple[list[int], list[int], bool, bool]:
    """Keep the end of a long prompt (the question is last) and the start of a long response."""
    prompt_cut = len(prompt) > max_prompt
    if prompt_cut:
        prompt = prompt[-max_prompt:]
    room = max_length - len(prompt)
    response_cut = len(response) > room
    return prompt, response[: max(room, 0)], prompt_cut, response_cut


def tokenize_pairs(
    tokenizer,
    prompts: Sequence[Sequence[dict[str, str]]],
    reals: Sequence[str],
    negatives: Sequence[str] | None,
    *,
    max_prompt_tokens: int,
    max_length: int,
) -> tuple[list[TrainExample], list[int], LengthReport]:
    """Examples, the indices of the input records they came from, and what the policy did.

    Texts far longer than the budget are cut before tokenising (see ``CHARS_PER_TOKEN``).
    """
    report = LengthReport()
    examples, kept_indices = [], []
    for i, messages in enumerate(prompts):
        prompt, prompt_text_cut = prompt_ids(tokenizer, messages, max_prompt_tokens)
        real_ids, real_text_cut = response_ids(tokenizer, reals[i], max_length)
        p, real, p_cut, r_cut = fit_lengths(
            prompt, real_ids, max_prompt=max_prompt_tokens, max_length=max_length
        )
        p_cut, r_cut = p_cut or prompt_text_cut, r_cut or real_text_cut
        gen = None
        g_cut = False
        if negatives is not None:
            gen_ids, gen_text_cut = response_ids(tokenizer, negatives[i], max_length)
            _, gen, _, g_cut = fit_lengths(
                prompt, gen_ids, max_prompt=max_prompt_tokens, max_length=max_length
            )
            g_cut = g_cut or gen_text_cut
        if not real or (gen is not None and not gen):
            report.dropped += 1
            continue
        report.prompts_truncated += p_cut
        report.responses_truncated += r_cut or g_cut
        examples.append(TrainExample(p, real, gen))
        kept_indices.append(i)
    report.kept = len(examples)
    return examples, kept_indices, report


def example_length(example: TrainExample) -> int:
    """Tokens of an example's longest row (prompt + the longer of its two responses)."""
    longest = max(len(example.real_ids), len(example.generated_ids or []))
    return len(example.prompt_ids) + longest


# Windows of this many global batches are sorted by length (see ``length_grouped``): wide
# enough that a batch's rows have nearly one length, narrow enough that a batch still mixes
# examples from all over the epoch's permutation.
GROUP_WINDOW = 16


def length_grouped(
    perm: torch.Tensor, lengths: Sequence[int], global_batch: int, generator: torch.Generator
) -> torch.Tensor:
    """``perm`` (a whole number of global batches) regrouped so that each batch holds
    examples of similar length: windows of ``GROUP_WINDOW`` batches are sorted by length
    (longest first, ties in ``perm``'s order), cut into batches, and the batches shuffled with
    ``generator``. A pure function of its arguments, so resumed runs replay the same batches."""
    window = GROUP_WINDOW * global_batch
    batches = []
    for start in range(0, len(perm), window):
        chunk = perm[start : start + window].tolist()
        chunk.sort(key=lambda i: -lengths[i])  # stable: ties keep perm's order
        batches += [chunk[b : b + global_batch] for b in range(0, len(chunk), global_batch)]
    order = torch.randperm(len(batches), generator=generator).tolist()
    return torch.tensor([i for b in order for i in batches[b]], dtype=torch.long)


# One forward's fixed cost in token slots (Python, kernel launches, small matmuls), against
# which a cut into more forwards is weighed (:func:`length_buckets`). Measured on the
# quickstart's tiny Llama on 2 CPU cores: cutting the base model's batches of 32 into 2-4
# groups gains 10-20% at this value, 8 groups loses.
FORWARD_OVERHEAD_TOKENS = 128


def length_buckets(
    lengths: Sequence[int], overhead: int = FORWARD_OVERHEAD_TOKENS
) -> list[list[int]]:
    """The rows of one batch (their ``lengths``) cut into groups of similar length, each to
    run as its own right-padded forward: the cut that minimises padded slots plus
    ``overhead`` per forward (exact, by dynamic programming over the rows sorted by length;
    a batch of equal lengths stays whole). Groups and the indices in them are longest first;
    every index appears once."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    n = len(order)
    best = [0.0] + [math.inf] * n  # best[j]: cost of the first j rows of ``order``
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):  # rows order[i:j] as one group, as wide as its first (longest)
            cost = best[i] + (j - i) * lengths[order[i]] + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups: list[list[int]] = []
    while n:
        groups.append(order[cut[n] : n])
        n = cut[n]
    return groups[::-1]


def collate(
    examples: Sequence[TrainExample], *, with_generated: bool, pad_id: int
) -> dict[str, torch.Tensor]:
    """Right-padded ids of [prompt+real ...] followed by [prompt+generated ...] (one forward
    pass over both halves), with a mask that is 1 on response tokens only."""
    sequences = [(e.prompt_ids, e.real_ids) for e in examples]
    if with_generated:
        sequences += [(e.prompt_ids, e.generated_ids or []) for e in examples]
    width = max(len(p) + len(r) for p, r in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    response_mask = torch.zeros((len(sequences), width), dtype=torch.bool)
    for row, (p, r) in enumerate(sequences):
        n = len(p) + len(r)
        input_ids[row, :n] = torch.tensor(p + r)
        attention[row, :n] = 1
        response_mask[row, len(p) : n] = True
    return {"input_ids": input_ids, "attention_mask": attention, "response_mask": response_mask}


def sequence_logps(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probs of the response tokens of each row, and their counts (both (N,)).

    Token t is predicted by the hidden state at position t-1, so the mask shifts by one;
    prompt and padding positions contribute nothing (as in both papers' code). Where the model
    splits into a backbone and a plain LM head (:func:`split_head`), the head runs on the
    response positions only, in chunks: no logits of prompt or padding positions, and no
    fp32 logits of the whole batch at once.
    """
    mask = batch["response_mask"][:, 1:]
    split = split_head(model)
    if split is None:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        token_logps = target_logps(logits.logits[:, :-1].float(), batch["input_ids"][:, 1:])
        return token_logps.masked_fill(~mask, 0.0).sum(-1), mask.sum(-1)
    backbone, head = split
    hidden = backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    rows, cols = mask.nonzero(as_tuple=True)
    states = hidden.last_hidden_state[:, :-1][rows, cols]
    targets = batch["input_ids"][:, 1:][rows, cols]
    token_logps = head_logps(head, states, targets)
    sums = torch.zeros(mask.shape[0], dtype=token_logps.dtype, device=token_logps.device)
    return sums.index_add(0, rows, token_logps), mask.sum(-1)


# Model types whose causal-LM forward is ``lm_head(backbone(...).last_hidden_state)`` and
# nothing else (no logit soft-capping or scaling), so that the head may run apart.
PLAIN_HEAD_TYPES = frozenset(
    {"llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "phi3", "olmo2"}
)


def split_head(model) -> tuple[torch.nn.Module, torch.nn.Linear] | None:
    """(backbone, LM head) of a plain causal LM, or None: another architecture, or a model
    wrapped for data parallelism, whose forward must run whole for gradients to sync.
    A peft model splits as the model it wraps (its LoRA layers sit inside that model)."""
    if hasattr(model, "peft_config") and hasattr(model, "get_base_model"):
        model = model.get_base_model()
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) not in PLAIN_HEAD_TYPES:
        return None
    backbone = getattr(model, getattr(model, "base_model_prefix", ""), None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(backbone, torch.nn.Module) or not isinstance(head, torch.nn.Linear):
        return None
    return backbone, head


# Rows of hidden states per chunk of the LM head: a chunk's fp32 logits stay under ~256 MB
# whatever the vocabulary (152k for Qwen2.5: about 420 rows).
HEAD_CHUNK_ELEMENTS = 1 << 26


def head_logps(head: torch.nn.Linear, states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target | state) for each row of ``states`` (M, H), through ``head`` in chunks.

    When gradients are needed and there is more than one chunk, each chunk's logits are
    recomputed in the backward pass instead of kept (activation checkpointing), so peak
    memory holds one chunk's logits, not M x vocabulary of them."""
    rows = max(1, HEAD_CHUNK_ELEMENTS // head.out_features)
    if len(states) <= rows:
        return _chunk_logps(head, states, targets)
    parts = []
    for start in range(0, len(states), rows):
        chunk = (head, states[start : start + rows], targets[start : start + rows])
        if torch.is_grad_enabled():
            parts.append(
                torch.utils.checkpoint.checkpoint(_chunk_logps, *chunk, use_reentrant=False)
            )
        else:
            parts.append(_chunk_logps(*chunk))
    return torch.cat(parts)


def _chunk_logps(
    head: torch.nn.Module, states: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    return target_logps(head(states).float(), targets)


def target_logps(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[target] over the last axis, without the full log-softmax tensor."""
    picked = torch.gather(logits, -1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def move(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}
