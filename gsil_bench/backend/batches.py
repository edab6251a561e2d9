"""Tokenised training examples, the length policy, padding and summed response log-probs."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.utils.checkpoint

from gsil_bench.backend.chat import encode_prompt, encode_response, render_prompt
from gsil_bench.progress import progress_bar


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


# Attention implementations that take a custom 4D mask: SDPA a boolean one (True = attend),
# eager an additive float one. Flash-attention and FlexAttention take neither.
SHARED_MASK_ATTENTION = frozenset({"sdpa", "eager"})


def sliding_window(config) -> int | None:
    """The attention window of a model whose every layer slides (Mistral, Mixtral, Phi-3 with
    ``sliding_window``; Qwen2/3 whose ``layer_types`` are all sliding), else None."""
    kinds = set(getattr(config, "layer_types", None) or [])
    if kinds:
        return getattr(config, "sliding_window", None) if kinds == {"sliding_attention"} else None
    return getattr(config, "sliding_window", None)


def unshareable(model) -> str | None:
    """Why ``model`` cannot run prefix-shared pairs, or None when it can: it needs a plain
    backbone + LM head (:func:`split_head`, not wrapped for data parallelism), attention that
    takes a custom 4D mask, and one attention window for all layers (a custom mask replaces
    the model's own, so :func:`block_logps` applies the window itself)."""
    config = getattr(model, "config", None)
    if split_head(model) is None:
        return f"model type {getattr(config, 'model_type', type(model).__name__)!r}"
    implementation = getattr(config, "_attn_implementation", None)
    if implementation not in SHARED_MASK_ATTENTION:
        return f"attention implementation {implementation!r}"
    kinds = set(getattr(config, "layer_types", None) or [])
    if "sliding_attention" in kinds and len(kinds) > 1:
        return "mix of sliding-window and full-attention layers"
    return None


def prefix_sharing_supported(model) -> bool:
    """Whether ``model`` can run prefix-shared pairs (see :func:`unshareable`)."""
    return unshareable(model) is None


_WARNED: set[tuple[str, str]] = set()


def use_prefix_sharing(model, wanted: bool) -> bool:
    """Whether to run pairs prefix-shared: ``wanted`` and :func:`prefix_sharing_supported`.
    Where it is wanted but the model cannot take the block mask, says so once per reason
    (a warning) and the unshared path runs."""
    return _block_mask_usable(model, wanted, "optim.prefix_sharing", "pairs run unshared")


def use_packing(model, wanted: bool) -> bool:
    """Whether to pack rows (:func:`collate_packed`): ``wanted`` and the block mask usable,
    as for prefix sharing; otherwise says so once per reason and rows run padded."""
    return _block_mask_usable(model, wanted, "optim.packing", "rows run padded")


def _block_mask_usable(model, wanted: bool, key: str, fallback: str) -> bool:
    if not wanted:
        return False
    reason = unshareable(model)
    if reason is None:
        return True
    if (key, reason) not in _WARNED:
        _WARNED.add((key, reason))
        warnings.warn(
            f"{key}: the {reason} cannot take a custom block attention mask (it needs a plain "
            "backbone + LM head with sdpa or eager attention, unwrapped, one attention window "
            f"for all layers); {fallback}, with the same log-probs",
            stacklevel=3,
        )
    return False


def collate_shared(examples: Sequence[TrainExample], *, pad_id: int) -> dict[str, torch.Tensor]:
    """One right-padded row per pair: the prompt once, then the real response, then the
    generated one, with a block mask under which each response sees the prompt and itself
    only, and position ids that restart at the prompt's end for the generated response (so
    each response sees exactly what it sees in :func:`collate`'s two rows).

    Output rows as in :func:`collate`: pair ``i``'s real response is row ``i``, its generated
    one row ``B + i``. ``tokens`` counts each pair's tokens as :func:`collate` feeds them (the
    prompt twice): throughput then compares the same work. See :func:`collate_blocks`."""
    return collate_blocks(examples, with_generated=True, shared=True, pack=False, pad_id=pad_id)


def collate_packed(
    examples: Sequence[TrainExample], *, with_generated: bool, shared: bool, pad_id: int
) -> dict[str, torch.Tensor]:
    """Padding-free packing: the blocks of :func:`collate_blocks` (a prompt with its
    response, or with both responses when ``shared``) several to a row, first fit by
    decreasing length into rows as wide as the longest block; each block sees only itself
    and its position ids restart at 0, so every response's log-probs are those of its own
    row in :func:`collate` / :func:`collate_shared`."""
    return collate_blocks(
        examples, with_generated=with_generated, shared=shared, pack=True, pad_id=pad_id
    )


def collate_blocks(
    examples: Sequence[TrainExample],
    *,
    with_generated: bool,
    shared: bool,
    pack: bool,
    pad_id: int,
) -> dict[str, torch.Tensor]:
    """Rows of blocks under a block mask, for :func:`block_logps`.

    A block is a prompt followed by one or more responses; each response sees the block's
    prompt and itself (causally), nothing else, and its position ids continue from the
    prompt's end. Per example: one block of prompt + real (+ generated when ``shared``), or
    with ``with_generated`` and not ``shared`` a second block of prompt + generated. Without
    ``pack`` each block is a row of its own, in order; with it, blocks share rows (see
    :func:`collate_packed`). Padding sees only itself (no empty softmax row).

    ``src``/``dst``/``target`` list every predicted response token: the flat position whose
    hidden state predicts it, the output row (example ``i``'s real response is output ``i``,
    its generated one output ``B + i``) and its id. A response's first token is predicted
    from the prompt's last position; with an empty prompt it is not predicted (as in
    :func:`sequence_logps`, where position 0 has no predecessor). ``tokens``: each example's
    tokens as :func:`collate` feeds them.
    """
    b = len(examples)
    blocks: list[tuple[list[int], list[tuple[list[int], int]]]] = []
    tokens = torch.zeros(b, dtype=torch.long)
    for i, e in enumerate(examples):
        p, r, g = e.prompt_ids, e.real_ids, e.generated_ids or []
        tokens[i] = len(p) + len(r) + (len(p) + len(g) if with_generated else 0)
        if shared and with_generated:
            blocks.append((p, [(r, i), (g, b + i)]))
            continue
        blocks.append((p, [(r, i)]))
        if with_generated:
            blocks.append((p, [(g, b + i)]))
    sizes = [len(p) + sum(len(x) for x, _ in responses) for p, responses in blocks]
    width = max(sizes)
    rows = _pack_rows(sizes, width) if pack else [[k] for k in range(len(blocks))]
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    segment = torch.full((len(rows), width), -1, dtype=torch.long)  # a response's own id
    block = torch.full((len(rows), width), -1, dtype=torch.long)
    src: list[int] = []
    dst: list[int] = []
    target: list[int] = []
    next_segment = 0
    for row, members in enumerate(rows):
        at = 0
        for k in members:
            p, responses = blocks[k]
            input_ids[row, at : at + len(p)] = torch.tensor(p, dtype=torch.long)
            position_ids[row, at : at + len(p)] = torch.arange(len(p))
            block[row, at : at + sizes[k]] = k
            start = at + len(p)
            for response, out in responses:
                end = start + len(response)
                input_ids[row, start:end] = torch.tensor(response, dtype=torch.long)
                position_ids[row, start:end] = torch.arange(len(p), len(p) + len(response))
                segment[row, start:end] = next_segment
                next_segment += 1
                # token j is predicted at start + j - 1, the first one at the prompt's end
                before = [at + len(p) - 1, *range(start, end - 1)][: len(response)]
                skip = 0 if p else 1  # no position before an empty prompt's first token
                src += [row * width + i for i in before[skip:]]
                dst += [out] * len(before[skip:])
                target += response[skip:]
                start = end
            at += sizes[k]
    same_block = block.unsqueeze(2) == block.unsqueeze(1)
    query, key = segment.unsqueeze(2), segment.unsqueeze(1)  # (R, W, 1), (R, 1, W)
    prompt_key = (key < 0) & (block.unsqueeze(1) >= 0)
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    valid = (block.unsqueeze(2) >= 0) & (block.unsqueeze(1) >= 0)
    visible = same_block & valid & causal & (prompt_key | (key == query))
    visible |= torch.eye(width, dtype=torch.bool) & (block.unsqueeze(2) < 0)
    return {
        "input_ids": input_ids,
        "position_ids": position_ids,
        "block_mask": visible.unsqueeze(1),
        "src": torch.tensor(src, dtype=torch.long),
        "dst": torch.tensor(dst, dtype=torch.long),
        "target": torch.tensor(target, dtype=torch.long),
        "tokens": tokens,
    }


def _pack_rows(sizes: Sequence[int], width: int) -> list[list[int]]:
    """First fit by decreasing size: indices of ``sizes`` in rows of at most ``width``."""
    rows: list[list[int]] = []
    room: list[int] = []
    for k in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        fit = next((r for r, left in enumerate(room) if left >= sizes[k]), None)
        if fit is None:
            rows.append([k])
            room.append(width - sizes[k])
        else:
            rows[fit].append(k)
            room[fit] -= sizes[k]
    return rows


def block_logps(
    model, batch: dict[str, torch.Tensor], outputs: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`sequence_logps` of a :func:`collate_blocks` batch: summed log-probs and counts
    of its ``outputs`` output rows (real responses ``0..B-1``, then generated ``B..2B-1``)."""
    split = split_head(model)
    if split is None:
        raise ValueError("block_logps needs a plain backbone + LM head (split_head)")
    backbone, head = split
    mask = batch["block_mask"]
    window = sliding_window(model.config)
    if window is not None:  # as the model's own mask would: q sees k when q - k < window
        pos = batch["position_ids"]
        mask = mask & ((pos.unsqueeze(2) - pos.unsqueeze(1)) < window).unsqueeze(1)
    if model.config._attn_implementation == "eager":
        dtype = next(model.parameters()).dtype
        zero = torch.zeros((), dtype=dtype, device=mask.device)
        mask = torch.where(mask, zero, torch.finfo(dtype).min)
    hidden = backbone(
        input_ids=batch["input_ids"], attention_mask=mask, position_ids=batch["position_ids"]
    ).last_hidden_state
    states = hidden.reshape(-1, hidden.shape[-1])[batch["src"]]
    token_logps = head_logps(head, states, batch["target"])
    sums = torch.zeros(outputs, dtype=token_logps.dtype, device=token_logps.device)
    counts = torch.zeros(outputs, dtype=torch.long, device=token_logps.device)
    counts = counts.index_add(0, batch["dst"], torch.ones_like(batch["dst"]))
    return sums.index_add(0, batch["dst"], token_logps), counts


def move(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def reference_logps(
    model,
    examples: Sequence[TrainExample],
    *,
    with_generated: bool,
    batch_size: int,
    pad_id: int,
    description: str = "reference log-probs",
    prefix_sharing: bool = False,
) -> dict[str, torch.Tensor]:
    """One pass of the frozen reference over every real (and generated) response.

    Batches are cut from the examples sorted by length (little padding), and the log-probs
    come back in the order of ``examples``. With ``prefix_sharing`` (and generated responses)
    each pair runs as one prompt-shared row (:func:`collate_shared`) where the model allows.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    shared = with_generated and use_prefix_sharing(model, prefix_sharing)

    order = sorted(range(len(examples)), key=lambda i: example_length(examples[i]))
    real, gen = [], []
    # inference_mode for the forwards; the results are assembled outside it, so that callers
    # get ordinary tensors (an inference tensor refuses in-place updates elsewhere).
    with progress_bar(len(examples), description) as bar, torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = [examples[i] for i in order[start : start + batch_size]]
            if shared:
                batch = move(collate_shared(chunk, pad_id=pad_id), device)
                logps, _ = block_logps(model, batch, 2 * len(chunk))
            else:
                batch = move(collate(chunk, with_generated=with_generated, pad_id=pad_id), device)
                logps, _ = sequence_logps(model, batch)
            real.append(logps[: len(chunk)].cpu())
            if with_generated:
                gen.append(logps[len(chunk) :].cpu())
            bar.advance(len(chunk))
    model.train(was_training)
    back = torch.empty(len(order), dtype=torch.long)
    back[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
    out = {"real": torch.cat(real)[back]}
    if with_generated:
        out["generated"] = torch.cat(gen)[back]
    return out
