"""Sweep files: schema, validation against the registries and the run config, enumeration.

A sweep file declares the base experiment (a run config), the methods (a loss with fixed
settings and/or a search space over any run-config key), a grid of extra knobs (data
quality, for instance), seeds, the objective, sampler, pruner and trial budget. Every
configuration it can produce is validated when the file is loaded, so a typo fails before
any trial runs, with the file and the key named.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gsil_bench.config import (
    RunConfig,
    build_config,
    format_validation_error,
    read_yaml,
    set_dotted,
)
from gsil_bench.errors import UserError
from gsil_bench.registry import Registry, did_you_mean
from gsil_bench.report.objective import Objective
from gsil_bench.study.samplers import PRUNERS, SAMPLERS


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Distribution(_Strict):
    """One searched parameter (TPE/random): a float or int range, or categorical choices.

    Checked when the sweep file loads, so a bad range fails before any trial: ``low <= high``,
    ``low > 0`` on a log scale, a positive ``step`` (not with ``log``), whole-number bounds
    for ``int``, at least one choice.
    """

    type: Literal["float", "int", "categorical"] = "float"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None  # float: a grid of low + k*step; int: every step-th integer
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Distribution:
        if self.type == "categorical":
            if self.choices is None:
                raise ValueError("a categorical distribution needs 'choices'")
            if not self.choices:
                raise ValueError("'choices' is empty: list at least one value")
            scalar = (str, int, float, bool, type(None))  # what Optuna stores
            nested = [c for c in self.choices if not isinstance(c, scalar)]
            if nested:
                raise ValueError(f"choices must be numbers, strings or booleans, got {nested[0]!r}")
            ranged = [k for k in ("low", "high", "step") if getattr(self, k) is not None]
            if ranged or self.log:
                raise ValueError(
                    f"a categorical distribution takes 'choices' only, not "
                    f"{', '.join(ranged or ['log'])}"
                )
            return self
        if self.choices is not None:
            raise ValueError(f"'choices' is for type: categorical, not {self.type}")
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} distribution needs 'low' and 'high'")
        low, high = self.low, self.high
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"low and high must be finite numbers, got low {low} high {high}")
        if low > high:
            raise ValueError(f"low {low} > high {high}")
        if self.log and low <= 0:
            raise ValueError(f"a log scale needs low > 0, got low {low}")
        if self.step is not None:
            if not (math.isfinite(self.step) and self.step > 0):
                raise ValueError(f"step must be a positive number, got {self.step:g}")
            if self.log:
                raise ValueError("step and log cannot be combined (Optuna samples one or other)")
        if self.type == "int":
            bounds = {"low": low, "high": high, "step": self.step}
            odd = [f"{k} {v:g}" for k, v in bounds.items() if v is not None and v != int(v)]
            if odd:
                raise ValueError(f"an int distribution needs whole numbers, got {', '.join(odd)}")
        return self

    def suggest(self, trial, name: str) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(name, self.choices)
        low, high = float(self.low or 0.0), float(self.high or 0.0)  # set, by _complete
        if self.type == "int":
            step = int(self.step or 1)
            return trial.suggest_int(name, int(low), int(high), step=step, log=self.log)
        return trial.suggest_float(name, low, high, step=self.step, log=self.log)

    def corners(self) -> list[Any]:
        if self.type == "categorical":
            return list(self.choices or [])
        low, high = float(self.low or 0.0), float(self.high or 0.0)
        return [int(low), int(high)] if self.type == "int" else [low, high]


class Method(_Strict):
    """A loss with fixed run-config settings (dotted keys) and an optional search space."""

    loss: str
    label: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    space: dict[str, Distribution] = Field(default_factory=dict)


class Controls(_Strict):
    """Runs a study makes besides its methods. ``base``: evaluate the untrained base model
    once per seed (a run with ``iterations: 0``), the ``base`` row of the report."""

    base: bool = True


CONTROL_LABEL = "base"  # the method label of the base-model control runs


# A study name becomes a folder under results/ and runs/: a name, never a path.
STUDY_NAME = re.compile(r"[A-Za-z0-9._-]+")


class SweepSpec(_Strict):
    study: str
    description: str = ""
    base: dict[str, Any] = Field(default_factory=dict)
    methods: list[Method]
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    # "cross": every combination of grid values; "one-at-a-time": each knob varied alone, the
    # others at their first (reference) value: a curve per knob at a fraction of the cost.
    grid_mode: Literal["cross", "one-at-a-time"] = "cross"
    seeds: list[int] = Field(default_factory=lambda: [0])
    objective: Objective = Objective()
    sampler: str = "grid"  # a name in study.samplers.SAMPLERS
    pruner: str = "none"  # a name in study.samplers.PRUNERS
    trials: int | None = Field(default=None, ge=1)
    baseline: str | None = None
    knobs: list[str] = Field(default_factory=list)  # grid keys plotted as data-quality curves
    controls: Controls = Controls()
    # Local worker processes when the command line does not say (`--workers`); each gets
    # cores / workers threads. How a sweep runs, not what it measures: not in the spec hash.
    workers: int | None = Field(default=None, ge=1)

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, name: str) -> str:
        return _known(SAMPLERS, name)

    @field_validator("pruner")
    @classmethod
    def _known_pruner(cls, name: str) -> str:
        return _known(PRUNERS, name)

    @field_validator("grid")
    @classmethod
    def _axes_have_values(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        # An empty axis would make the cross product empty, and the sweep silently run the
        # base config alone.
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid.{key}: no values; list at least one (or drop the key)")
        return grid

    @field_validator("study")
    @classmethod
    def _study_is_a_name(cls, value: str) -> str:
        if not STUDY_NAME.fullmatch(value) or value in (".", ".."):
            raise ValueError(
                f"{value!r} is not a study name: use letters, digits, '.', '_' or '-' "
                "(it names the folder under results/)"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        if not self.methods:
            raise ValueError("at least one method is needed")
        if self.sampler == "grid" and any(m.space for m in self.methods):
            raise ValueError("sampler 'grid' takes fixed methods; use tpe/random with 'space'")
        if self.sampler != "grid" and self.trials is None:
            raise ValueError(f"sampler {self.sampler!r} needs a trial budget ('trials')")
        if not self.seeds:
            raise ValueError("'seeds' must list at least one seed")
        return self


def _known(registry: Registry[Any], name: str) -> str:
    # A ValueError, so that the load error names the file and the key like any other.
    if name not in registry:
        names = registry.names()
        raise ValueError(
            f"unknown {registry.kind} {name!r}.{did_you_mean(name, names)} "
            f"Available: {', '.join(names)}"
        )
    return name


# --------------------------------------------------------------------------- configurations


def short_key(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def method_label(method: Method, values: dict[str, Any], *, hidden: Collection[str] = ()) -> str:
    """``loss k=v ...`` over the method's settings and ``values`` (or the method's own label).

    ``hidden`` keys are left out: the label without the data-quality knobs names the series
    a run belongs to, one curve of a knob plot.
    """
    if method.label:
        return method.label
    shown = {**method.params, **values}
    parts = [f"{short_key(k)}={_fmt(v)}" for k, v in shown.items() if k not in hidden]
    return " ".join([method.loss, *parts])


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def run_config_for(
    spec: SweepSpec, method: Method, values: dict[str, Any], seed: int, source: str
) -> RunConfig:
    """The run config of one (method, values, seed); validation errors name the file."""
    tree = copy.deepcopy(spec.base)
    base_loss = tree.get("loss") or {}
    if base_loss.get("name", method.loss) != method.loss:
        # The base's loss hyperparameters belong to the base's loss, not to this method's.
        tree["loss"] = {}
    set_dotted(tree, "loss.name", method.loss)
    for key, value in {**method.params, **values}.items():
        set_dotted(tree, key, value)
    set_dotted(tree, "seed", seed)
    return build_config(tree, source)


def control_config(spec: SweepSpec, seed: int, source: str) -> RunConfig:
    """The base-model control of one seed: the sweep's base config, no training.

    The data-quality knobs are not applied: they change only the alignment data, not the base
    model, so one control per seed serves every data setting.
    """
    tree = copy.deepcopy(spec.base)
    set_dotted(tree, "iterations", 0)
    set_dotted(tree, "seed", seed)
    return build_config(tree, source)


def config_id(config: RunConfig) -> str:
    """Identity of a configuration across seeds (and across trials that sample it again)."""
    payload = config.model_dump(mode="json", exclude={"output_dir", "cache_dir", "seed"})
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def grid_points(spec: SweepSpec) -> list[tuple[int, dict[str, Any]]]:
    """(method index, knob values) for every fixed configuration of a grid sweep."""
    keys = list(spec.grid)
    if spec.grid_mode == "one-at-a-time":
        reference = {k: values[0] for k, values in spec.grid.items()}
        settings = [reference] + [
            {**reference, key: value} for key in keys for value in spec.grid[key][1:]
        ]
    else:
        combos = itertools.product(*(spec.grid[k] for k in keys))
        settings = [dict(zip(keys, combo, strict=True)) for combo in combos] or [{}]
    return [(m, values) for m in range(len(spec.methods)) for values in settings]


def load_sweep(path: str | Path) -> SweepSpec:
    """Load and fully validate a sweep file (every configuration it can produce)."""
    path = Path(path)
    raw = read_yaml(path)
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, str(path), SweepSpec)) from None
    for knob in spec.knobs:
        if knob not in spec.grid:
            raise UserError(f"{path}: knobs: {knob!r} is not a key of 'grid'")
    for index, method in enumerate(spec.methods):
        where = f"{path}: methods[{index}] ({method.loss})"
        corners = [
            dict(zip(method.space, c, strict=True))
            for c in itertools.product(*(d.corners() for d in method.space.values()))
        ] or [{}]
        grid = [values for m, values in grid_points(spec) if m == index] or [{}]
        for values in (corners[0], corners[-1]):
            for knobs in (grid[0], grid[-1]):
                run_config_for(spec, method, {**values, **knobs}, spec.seeds[0], where)
    labels = [method_label(m, {}) for m in spec.methods]
    if CONTROL_LABEL in labels:
        raise UserError(
            f"{path}: methods: the label {CONTROL_LABEL!r} is reserved for the base-model "
            "control (controls: {base: true}); choose another label"
        )
    if spec.controls.base:
        control_config(spec, spec.seeds[0], f"{path}: controls.base")
    if spec.baseline and not any(lbl.startswith(spec.baseline) for lbl in labels):
        raise UserError(f"{path}: baseline {spec.baseline!r} matches no method ({labels})")
    return spec
