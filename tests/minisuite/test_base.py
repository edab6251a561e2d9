"""The base recipe's schedule comes from the tiny model's config."""

from __future__ import annotations

from gsil_bench.minisuite.base import base_optim
from gsil_bench.minisuite.config import TinyModelConfig


def test_base_optim_follows_the_tiny_config():
    tiny = TinyModelConfig(base_lr=1e-3, base_batch_size=8, base_steps=30, base_decay_steps=10)
    optim = base_optim(tiny)
    assert (optim.lr, optim.batch_size, optim.max_steps, optim.decay_steps) == (1e-3, 8, 30, 10)
    assert (optim.schedule, optim.warmup_ratio, optim.mixed_precision) == ("linear", 0.02, "no")
