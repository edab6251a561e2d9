"""The base recipe's schedule comes from the tiny model's config; one builder per base model."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gsil_bench.backend.cache import DiskCache
from gsil_bench.io import file_lock
from gsil_bench.minisuite import base
from gsil_bench.minisuite.base import base_key, base_optim, tiny_base
from gsil_bench.minisuite.config import TinyModelConfig
from gsil_bench.minisuite.suite import MiniSuite


def test_base_optim_follows_the_tiny_config():
    tiny = TinyModelConfig(base_lr=1e-3, base_batch_size=8, base_steps=30, base_decay_steps=10)
    optim = base_optim(tiny)
    assert (optim.lr, optim.batch_size, optim.max_steps, optim.decay_steps) == (1e-3, 8, 30, 10)
    assert (optim.schedule, optim.warmup_ratio, optim.mixed_precision) == ("linear", 0.02, "no")


def test_a_base_model_another_process_builds_is_waited_for_not_built_again(
    tmp_path: Path, suite: MiniSuite, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = TinyModelConfig()
    cache = DiskCache(tmp_path)
    key = base_key(tiny, suite, 3)
    built: list[int] = []
    monkeypatch.setattr(base, "_build", lambda *args: built.append(args[-1]))
    got: list[Path] = []
    with file_lock(tmp_path / "base-work" / f"{key}.lock"):  # the other builder
        waiter = threading.Thread(
            target=lambda: got.append(tiny_base(tiny, suite, cache, seed=3)[0])
        )
        waiter.start()
        time.sleep(0.3)
        assert waiter.is_alive()  # waiting for the lock, not building
        entry = cache.put("base", key, lambda tmp: (tmp / "config.json").write_text("{}"), {})
    waiter.join(timeout=10)
    assert got == [entry] and built == []
