"""Optuna samplers and pruners by name: the sweep file's ``sampler:`` and ``pruner:`` keys.

Each entry is a small factory taking the sweep (anything with its ``seeds``) and returning a
fresh sampler or pruner. Seeds are fixed, so that a rerun samples the same configurations. A
package adds its own under the entry-point groups ``gsil_bench.samplers`` and
``gsil_bench.pruners``, as losses are added (see :mod:`gsil_bench.registry`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import optuna

from gsil_bench.registry import Registry


class SweepSettings(Protocol):
    """What a factory may read of the sweep (its spec satisfies this)."""

    @property
    def seeds(self) -> Sequence[int]: ...


SamplerFactory = Callable[[SweepSettings], optuna.samplers.BaseSampler]
PrunerFactory = Callable[[SweepSettings], optuna.pruners.BasePruner]

SAMPLERS: Registry[SamplerFactory] = Registry(
    "sampler",
    group="gsil_bench.samplers",
    builtins={
        "grid": "gsil_bench.study.samplers:grid",
        "tpe": "gsil_bench.study.samplers:tpe",
        "random": "gsil_bench.study.samplers:random",
    },
)

PRUNERS: Registry[PrunerFactory] = Registry(
    "pruner",
    group="gsil_bench.pruners",
    builtins={
        "none": "gsil_bench.study.samplers:no_pruning",
        "median": "gsil_bench.study.samplers:median",
        "hyperband": "gsil_bench.study.samplers:hyperband",
    },
)


def grid(sweep: SweepSettings) -> optuna.samplers.BaseSampler:
    # Grid trials are enqueued with every parameter fixed, so the sampler never draws; any
    # seeded sampler will do.
    return optuna.samplers.RandomSampler(seed=0)


def tpe(sweep: SweepSettings) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=0)


def random(sweep: SweepSettings) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=0)


def no_pruning(sweep: SweepSettings) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


def median(sweep: SweepSettings) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(n_startup_trials=3)


def hyperband(sweep: SweepSettings) -> optuna.pruners.BasePruner:
    # A trial reports once per seed, so its resource is the number of seeds it has run.
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=len(sweep.seeds))
