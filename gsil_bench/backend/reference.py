"""The reference pass: summed response log-probs of a frozen model over every example, in
batches cut by length, padded or prompt-shared."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gsil_bench.backend.batches import (
    TrainExample,
    collate,
    example_length,
    move,
    sequence_logps,
)
from gsil_bench.backend.blocks import block_logps, collate_shared, use_prefix_sharing
from gsil_bench.progress import progress_bar


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
