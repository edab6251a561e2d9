"""Trains the tiny model under `torchrun`/`accelerate launch`; run by test_distributed.py."""

import sys
from pathlib import Path

import torch

from gsil_bench.backend.batches import tokenize_pairs
from gsil_bench.backend.reference import reference_logps
from gsil_bench.backend.trainer import train
from gsil_bench.config import OptimConfig
from gsil_bench.minisuite.tiny import build_model, train_tokenizer
from gsil_bench.registry import get_loss

out_dir, batch_size = Path(sys.argv[1]), int(sys.argv[2])
texts = [f"What is {i} + {i + 1}? {2 * i + 1} #### {2 * i}" for i in range(32)]
tokenizer = train_tokenizer(texts, vocab_size=300)
prompts = [[{"role": "user", "content": f"What is {i} + {i + 1}?"}] for i in range(32)]
examples, _, _ = tokenize_pairs(
    tokenizer,
    prompts,
    [f"{2 * i + 1} #### {2 * i + 1}" for i in range(32)],
    [f"{2 * i} #### {2 * i}" for i in range(32)],
    max_prompt_tokens=64,
    max_length=128,
)
model = build_model(
    tokenizer,
    hidden_size=32,
    num_layers=2,
    num_heads=2,
    intermediate_size=64,
    max_positions=128,
    seed=0,
)
ref = reference_logps(
    model, examples, with_generated=True, batch_size=16, pad_id=tokenizer.pad_token_id
)
optim = OptimConfig(
    lr=1e-3, batch_size=batch_size, epochs=2, mixed_precision="no", max_grad_norm=None
)
train(
    model,
    examples,
    loss=get_loss("gsil-logistic"),
    hparams={"beta": 1.0, "shift": 0.0},
    optim=optim,
    seed=0,
    run_dir=out_dir / "run",
    pad_id=tokenizer.pad_token_id,
    reference=ref,
)
rank = int(__import__("os").environ.get("RANK", "0"))
if rank == 0:
    module = getattr(model, "module", model)
    torch.save(
        torch.cat([p.detach().reshape(-1) for p in module.parameters()]), out_dir / "params.pt"
    )
