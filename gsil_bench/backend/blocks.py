"""Batches under a block attention mask: prefix sharing (the prompt of a pair once, then both
responses) and padding-free packing (several sequences to a row), with the log-probs of their
responses (:func:`block_logps`). Each response sees its prompt and itself only, so its
log-probs are those of its own padded row (:func:`~gsil_bench.backend.batches.collate`)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

from gsil_bench.backend.batches import TrainExample, head_logps, split_head

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
