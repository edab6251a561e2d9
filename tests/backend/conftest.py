"""Fixtures of the backend tests: a check that two ways of training
(padded or prompt-shared, one forward or length buckets, padded or packed) give the same run."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
import torch

from gsil_bench.backend.batches import TrainExample
from gsil_bench.backend.reference import reference_logps
from gsil_bench.backend.trainer import train
from gsil_bench.config import OptimConfig
from gsil_bench.registry import get_loss

# What a run's log must agree on: the continuous values (an accuracy counts strict wins, and
# at the first step policy and reference tie up to float rounding).
COMPARED = ("loss", "grad_norm", "reward/real", "reward/generated")


@pytest.fixture
def same_training(fresh_tiny, tmp_path):
    """``same_training(loss, examples, optims, steps=N, max_positions=...)``: trains a fresh
    tiny model under each of two OptimConfigs and asserts that the logs agree to 1e-5 on
    :data:`COMPARED` and the final weights too; returns the two runs' log rows."""

    def check(
        loss: str,
        examples: Sequence[TrainExample],
        optims: tuple[OptimConfig, OptimConfig],
        *,
        steps: int,
        max_positions: int = 128,
    ) -> list[list[dict]]:
        spec = get_loss(loss)
        reference = None
        if spec.needs_reference:
            model = fresh_tiny(max_positions)
            reference = reference_logps(
                model,
                list(examples),
                with_generated=spec.needs_generated,
                batch_size=len(examples),
                pad_id=0,
            )
        logs, weights = [], []
        for k, optim in enumerate(optims):
            model = fresh_tiny(max_positions)
            run_dir = tmp_path / f"{loss}-{k}"
            train(
                model,
                list(examples),
                loss=spec,
                hparams=dict(spec.hparams),
                optim=optim,
                seed=0,
                run_dir=run_dir,
                pad_id=0,
                reference=reference,
            )
            lines = (run_dir / "train_log.jsonl").read_text().splitlines()
            logs.append([json.loads(line) for line in lines])
            weights.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
        assert len(logs[0]) == len(logs[1]) == steps
        for first, second in zip(*logs, strict=True):
            assert set(first) == set(second)
            for key in set(COMPARED) & set(first):
                assert second[key] == pytest.approx(first[key], abs=1e-5), key
        torch.testing.assert_close(weights[1], weights[0], atol=1e-5, rtol=0)
        return logs

    return check
