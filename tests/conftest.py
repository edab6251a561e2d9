"""Shared fixtures: a tiny tokenizer and model built in-process (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

TEXTS = [
    "Tom has 3 apples and buys 4 more. 3 + 4 = 7. #### 7",
    "def add_two(x):\n    return x + 2",
    "I can't help with that request.",
    "Red\nGreen\nBlue",
] * 20


@pytest.fixture(autouse=True)
def _single_thread_torch():
    # Two pytest processes may share the 2 cores; one thread each keeps timings stable.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from gsil_bench.minisuite.tiny import train_tokenizer

    return train_tokenizer(TEXTS, vocab_size=300)


@pytest.fixture
def fresh_tiny(tiny_tokenizer):
    """A factory of identical tiny Llamas (seed 0), ``max_positions`` as asked."""
    from gsil_bench.minisuite.tiny import build_model

    def fresh(max_positions: int = 128):
        return build_model(
            tiny_tokenizer,
            hidden_size=32,
            num_layers=2,
            num_heads=2,
            intermediate_size=64,
            max_positions=max_positions,
            seed=0,
        )

    return fresh


@pytest.fixture
def tiny_model(fresh_tiny):
    return fresh_tiny()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real benchmark files not found at {SHARED_DATA} (CI and developers have them)"
        )
    return SHARED_DATA
