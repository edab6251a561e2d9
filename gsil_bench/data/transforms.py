"""Data-quality ablations: degrade the demonstrations in controlled, seeded, recorded ways.

GSIL's claim is that it imitates demonstrations better than SFT and SPIN; these transforms ask
how each method copes when the demonstrations are fewer, noisier, cut short, mismatched,
worse or repeated. They run in a fixed order, each on the output of the one before:

1. ``subsample``: keep a random fraction (original order kept).
2. ``swap_rejected``: replace the demonstration by its lower-quality ``rejected`` response
   where one exists (the two swap places, so a pair's preference is flipped too).
3. ``shuffle_responses``: give a fraction of prompts the response of another prompt.
4. ``truncate_responses``: cut a fraction of responses to ``truncate_keep`` of their words.
5. ``token_noise``: in a fraction of responses, corrupt each word with probability
   ``noise_rate`` (replaced by a corpus word, deleted, or two letters swapped).
6. ``duplicate``: repeat a fraction of the records, each copy right after its original.

Every transform picks exactly round(fraction * n) records with its own random stream, so
turning one knob does not change which records another one picks. Changed records get the
transform's name appended to ``meta["transforms"]``.

Each transform is one module of :mod:`gsil_bench.data.quality` that registers itself with
:func:`register_transform` (its name, its place in the order, the knobs of
:class:`DataQualityConfig` it reads); :data:`TRANSFORMS` finds them, and third-party packages
add theirs through the ``gsil_bench.transforms`` entry points.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gsil_bench.data.records import Demonstration
from gsil_bench.errors import UserError
from gsil_bench.registry import Registry, target_of

Report = dict[str, int]
# (records, the transform's random stream, the report to add counts to, **knobs) -> records.
# A transform may change the list in place and return it, or return a new one.
TransformFn = Callable[..., list[Demonstration]]


class DataQualityConfig(BaseModel):
    """Fractions of the data each transform touches; the defaults change nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subsample: float = Field(default=1.0, gt=0.0, le=1.0, description="fraction of records kept")
    shuffle_responses: float = Field(default=0.0, ge=0.0, le=1.0)
    truncate_responses: float = Field(default=0.0, ge=0.0, le=1.0)
    truncate_keep: float = Field(default=0.5, gt=0.0, lt=1.0, description="fraction of words kept")
    token_noise: float = Field(default=0.0, ge=0.0, le=1.0)
    noise_rate: float = Field(default=0.1, gt=0.0, le=1.0, description="per-word corruption rate")
    swap_rejected: float = Field(default=0.0, ge=0.0, le=1.0)
    duplicate: float = Field(default=0.0, ge=0.0, le=1.0)


@dataclass(frozen=True)
class Transform:
    """One step of the chain. ``order`` places it (lower runs first); ``reads`` maps the
    function's keyword arguments to the ``DataQualityConfig`` fields they come from;
    ``stream`` names its random stream (kept apart so knobs do not disturb each other)."""

    name: str
    order: int
    reads: Mapping[str, str]
    apply: TransformFn
    stream: str


def _transform_of(name: str, target: str, obj: Any) -> Transform:
    """What an entry point names: a Transform, or a function decorated with register_transform."""
    transform = obj if isinstance(obj, Transform) else getattr(obj, "transform", None)
    if not isinstance(transform, Transform):
        raise UserError(f"data transform {name!r} at {target} is not a registered transform")
    return transform


TRANSFORMS: Registry[Transform] = Registry(
    "data transform",
    group="gsil_bench.transforms",
    modules=("gsil_bench.data.quality",),
    adapt=_transform_of,
)


def register_transform(
    name: str, *, order: int, reads: Mapping[str, str] | None = None, stream: str | None = None
) -> Callable[[TransformFn], TransformFn]:
    """Decorator: register ``fn`` as the transform ``name`` (``stream`` defaults to ``name``)."""
    knobs = dict(reads or {})
    unknown = sorted(set(knobs.values()) - set(DataQualityConfig.model_fields))
    if unknown:
        raise UserError(
            f"data transform {name!r} reads data.quality.{unknown[0]}, which DataQualityConfig "
            "does not have; add the knob there (with a default that changes nothing)"
        )

    def decorate(fn: TransformFn) -> TransformFn:
        transform = Transform(name, order, knobs, fn, stream or name)
        TRANSFORMS.register(name, transform, target=target_of(fn))
        fn.transform = transform  # type: ignore[attr-defined]  # found again by entry points
        return fn

    return decorate


def transform_chain() -> list[Transform]:
    """Every registered transform, in the order they run."""
    transforms = [TRANSFORMS.get(name) for name in TRANSFORMS.names()]
    return sorted(transforms, key=lambda t: (t.order, t.name))


def apply_transforms(
    demos: list[Demonstration], config: DataQualityConfig, *, seed: int
) -> tuple[list[Demonstration], Report]:
    """The transformed copy of ``demos`` and counts of what each transform did.

    Deterministic for a seed; ``demos`` is never modified (the output holds new records).
    """
    out = [copy_record(demo) for demo in demos]
    report: Report = {"input": len(out)}
    for transform in transform_chain():
        knobs = {arg: getattr(config, field) for arg, field in transform.reads.items()}
        out = transform.apply(out, _rng(seed, transform.stream), report, **knobs)
    report["output"] = len(out)
    return out, report


# ---------------------------------------------------------------- helpers for transforms


def _rng(seed: int, stream: str) -> random.Random:
    return random.Random(f"gsil-bench-transform:{seed}:{stream}")


def pick(rng: random.Random, indices: list[int], fraction: float) -> list[int]:
    """Exactly round(fraction * len(indices)) of ``indices`` (half rounds up), sorted."""
    count = int(fraction * len(indices) + 0.5)  # round half up, unlike round()
    return sorted(rng.sample(indices, count))


def copy_record(demo: Demonstration) -> Demonstration:
    """A copy that shares no mutable state (prompt messages, meta) with ``demo``."""
    return replace(demo, prompt=[dict(m) for m in demo.prompt], meta=dict(demo.meta))


def tagged(demo: Demonstration, tag: str, **changes: Any) -> Demonstration:
    """``demo`` with ``changes`` applied and ``tag`` appended to ``meta["transforms"]``."""
    meta = {**demo.meta, "transforms": [*demo.meta.get("transforms", []), tag]}
    return replace(demo, meta=meta, **changes)
