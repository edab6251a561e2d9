"""SFT on the tiny model with ``optim.global_batch_size`` under `torchrun` or alone; run by
test_training_knobs.py. Writes the final weights (rank 0) and the per-process batch size."""

import os
import sys
from pathlib import Path

import torch

from gsil_bench.backend.batches import tokenize_pairs
from gsil_bench.backend.trainer import train
from gsil_bench.config import OptimConfig
from gsil_bench.minisuite.tiny import build_model, train_tokenizer
from gsil_bench.registry import get_loss

out_dir = Path(sys.argv[1])
texts = [f"What is {i} + {i + 1}? {2 * i + 1} #### {2 * i + 1}" for i in range(32)]
tokenizer = train_tokenizer(texts, vocab_size=300)
prompts = [[{"role": "user", "content": f"What is {i} + {i + 1}?"}] for i in range(32)]
reals = [f"{2 * i + 1} #### {2 * i + 1}" for i in range(32)]
examples, _, _ = tokenize_pairs(
    tokenizer, prompts, reals, None, max_prompt_tokens=64, max_length=128
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
optim = OptimConfig(
    lr=1e-3, global_batch_size=8, epochs=1, mixed_precision="no", max_grad_norm=None
)
result = train(
    model,
    examples,
    loss=get_loss("sft"),
    hparams={},
    optim=optim,
    seed=0,
    run_dir=out_dir / "run",
    pad_id=tokenizer.pad_token_id,
)
if int(os.environ.get("RANK", "0")) == 0:
    module = getattr(model, "module", model)
    flat = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
    torch.save({"params": flat, "steps": result.steps}, out_dir / "out.pt")
