"""One generic registry for every kind of plug-in, and the loss registry built on it.

A :class:`Registry` maps names to objects of one kind (losses, benchmarks, judges, data
transforms, samplers, ...). It finds them in three places:

- **lazy built-in targets**: ``{"name": "module:attr"}``, imported only when the name is used, so
  listing names imports nothing heavy;
- **built-in modules** that register themselves when imported (every module of a package such
  as ``gsil_bench.evaluation.benchmarks``), so adding a built-in is adding one module;
- **entry points** of third-party packages (``[project.entry-points."<group>"]``).

Unknown names raise a :class:`UserError` with close matches ("did you mean") and the full list;
a second object registered under a taken name is an error naming both.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import math
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from gsil_bench.errors import UserError
from gsil_bench.types import LossFn, LossSpec

T = TypeVar("T")


def target_of(obj: Any) -> str:
    """``module:qualname`` of a function or class: where a registered object lives."""
    return f"{obj.__module__}:{obj.__qualname__}"


def import_target(target: str) -> Any:
    """The object a ``module:attr.path`` target names."""
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def did_you_mean(name: str, names: Iterable[str], *, n: int = 3, cutoff: float = 0.5) -> str:
    """`` Did you mean 'a', 'b'?`` for the close matches of ``name``, or an empty string."""
    close = difflib.get_close_matches(name, list(names), n=n, cutoff=cutoff)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


class Registry(Generic[T]):
    """Names -> objects of one ``kind``; see the module docstring for where names come from.

    ``adapt(name, target, obj)`` turns what a lazy target or entry point points at into the
    registered object (e.g. a decorated function into its spec); by default the object itself.
    """

    def __init__(
        self,
        kind: str,
        *,
        group: str,
        builtins: Mapping[str, str] | None = None,
        modules: Iterable[str] = (),
        adapt: Callable[[str, str, Any], T] | None = None,
    ) -> None:
        self.kind = kind
        self.group = group
        self.builtins: dict[str, str] = dict(builtins or {})
        self._modules = tuple(modules)
        self._modules_loaded = False
        self._adapt = adapt
        self._registered: dict[str, tuple[str, T]] = {}

    # ----------------------------------------------------------------- registering

    def register(self, name: str, obj: T, *, target: str) -> None:
        """Register ``obj`` (defined at ``target``) as ``name``; a taken name is an error."""
        builtin = self.builtins.get(name)
        if builtin is not None and builtin != target:
            raise UserError(
                f"{self.kind} name {name!r} is a built-in ({builtin}); {target} cannot reuse it"
            )
        existing = self._registered.get(name)
        if existing is not None and existing[0] != target:
            raise UserError(f"{self.kind} name {name!r} is already registered by {existing[0]}")
        self._registered[name] = (target, obj)

    def forget(self, name: str) -> None:
        """Drop a name registered at run time (tests use it to clean up)."""
        self._registered.pop(name, None)

    def registered(self) -> set[str]:
        """Names registered so far in this process (built-ins only once they were imported)."""
        return set(self._registered)

    # ----------------------------------------------------------------- discovery

    def _load_modules(self) -> None:
        """Import every built-in module (and each module of a built-in package) once."""
        if self._modules_loaded:
            return
        self._modules_loaded = True
        for name in self._modules:
            module = importlib.import_module(name)
            for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{name}.{info.name}")

    def plugin_targets(self) -> dict[str, str]:
        """Entry points of the registry's group; one reusing a built-in name is an error."""
        targets: dict[str, str] = {}
        for ep in entry_points(group=self.group):
            if ep.name in self.builtins:
                raise UserError(
                    f"plugin {self.kind} {ep.name!r} ({ep.value}, package "
                    f"{getattr(ep.dist, 'name', '?')}) reuses a built-in {self.kind} name"
                )
            targets[ep.name] = ep.value
        return targets

    def names(self) -> list[str]:
        """Every name: lazy built-ins first, then the rest (self-registered, plugins) sorted."""
        self._load_modules()
        first = list(self.builtins)
        rest = (set(self._registered) | set(self.plugin_targets())) - set(first)
        return first + sorted(rest)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    # ----------------------------------------------------------------- lookup

    def get(self, name: str) -> T:
        """The object called ``name``; unknown names raise a UserError with close matches."""
        if name in self._registered:
            return self._registered[name][1]
        target = self.builtins.get(name)
        if target is None:
            self._load_modules()
            if name in self._registered:
                return self._registered[name][1]
            target = self.plugin_targets().get(name)
        if target is None:
            names = self.names()
            raise UserError(
                f"unknown {self.kind} {name!r}.{did_you_mean(name, names)} "
                f"Available: {', '.join(names) or 'none'}"
            )
        obj = import_target(target)
        if name in self._registered:  # importing the module registered it
            return self._registered[name][1]
        adapted = self._adapt(name, target, obj) if self._adapt else obj
        self.register(name, adapted, target=target)
        return adapted


# =========================================================================== losses

ENTRY_POINT_GROUP = "gsil_bench.losses"

BUILTINS: dict[str, str] = {
    "sft": "gsil_bench.baselines.sft:sft",
    "spin": "gsil_bench.baselines.spin:spin",
    "spin-hinge": "gsil_bench.baselines.spin:spin_hinge",
    "ipo": "gsil_bench.baselines.dpo_family:ipo",
    "simpo": "gsil_bench.baselines.dpo_family:simpo",
    "gsil-logistic": "gsil_bench.losses.gsil:gsil_logistic",
    "gsil-brier": "gsil_bench.losses.gsil:gsil_brier",
    "gsil-hinge": "gsil_bench.losses.gsil:gsil_hinge",
    "gsil-kliep": "gsil_bench.losses.gsil:gsil_kliep",
    "gsil-lsif": "gsil_bench.losses.gsil:gsil_lsif",
    "gsil-exponential": "gsil_bench.losses.gsil:gsil_exponential",
}


def _loss_spec_of(name: str, target: str, obj: Any) -> LossSpec:
    spec = getattr(obj, "loss_spec", None)
    if not isinstance(spec, LossSpec):
        raise UserError(f"loss {name!r} at {target} is not decorated with @register_loss")
    if spec.name != name:
        raise UserError(f"entry point {name!r} points at {target}, registered as {spec.name!r}")
    return spec


LOSSES: Registry[LossSpec] = Registry(
    "loss", group=ENTRY_POINT_GROUP, builtins=BUILTINS, adapt=_loss_spec_of
)


def _keyword_hparams(name: str, fn: Callable[..., Any]) -> dict[str, Any]:
    params = list(inspect.signature(fn).parameters.values())
    if not params or params[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise TypeError(f"loss {name!r}: the first parameter must be the LogpBatch")
    hparams: dict[str, Any] = {}
    for p in params[1:]:
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.default is inspect.Parameter.empty:
            raise TypeError(
                f"loss {name!r}: hyperparameter {p.name!r} must be keyword-only with a default"
            )
        hparams[p.name] = p.default
    return hparams


def register_loss(
    name: str,
    *,
    needs_reference: bool,
    needs_generated: bool,
    needs_lengths: bool = False,
    family: str | None = None,
) -> Callable[[LossFn], LossFn]:
    """Register ``fn`` as the loss ``name``. The function itself is returned unchanged.

    The metadata says which :class:`LogpBatch` fields the loss reads (``needs_lengths``: the
    response token counts); the spec checks them before every call, so a loss body never
    repeats its own name in a "missing field" error. A name already taken by another function
    (a built-in or an earlier plugin) is an error.
    """

    def decorate(fn: LossFn) -> LossFn:
        target = target_of(fn)
        doc = inspect.getdoc(fn) or ""
        spec = LossSpec(
            name=name,
            fn=fn,
            needs_reference=needs_reference,
            needs_generated=needs_generated,
            needs_lengths=needs_lengths,
            hparams=_keyword_hparams(name, fn),
            family=family or name.split("-")[0],
            target=target,
            summary=doc.splitlines()[0] if doc else "",
        )
        LOSSES.register(name, spec, target=target)
        fn.loss_spec = spec  # type: ignore[attr-defined]
        return fn

    return decorate


def available() -> list[str]:
    """Every loss name: built-ins first, then plugins and losses registered at run time."""
    return LOSSES.names()


def get_loss(name: str) -> LossSpec:
    """The loss called ``name``; unknown names raise a :class:`UserError` with close matches."""
    return LOSSES.get(name)


def validate_hparams(name: str, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults merged with ``hparams``; an unknown key is a UserError naming the accepted ones."""
    spec = get_loss(name)
    unknown = [k for k in hparams if k not in spec.hparams]
    if unknown:
        accepted = ", ".join(spec.hparams) or "none"
        close = difflib.get_close_matches(unknown[0], list(spec.hparams), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(
            f"loss {name!r} has no hyperparameter {unknown[0]!r}{hint}; it accepts: {accepted}"
        )
    for key, value in hparams.items():
        _check_hparam(name, key, value)
    merged = dict(spec.hparams)
    merged.update(hparams)
    return merged


def _check_hparam(loss: str, key: str, value: Any) -> None:
    """Every hyperparameter is a finite number; ``beta``, the scale of the log-ratio in every
    loss here (DESIGN.md §2), is positive: at 0 the loss is constant (or divides by zero, IPO)
    and below 0 it pushes the demonstration's log-probability down."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"loss {loss!r}: hyperparameter {key!r} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise UserError(f"loss {loss!r}: hyperparameter {key!r} must be finite, got {value}")
    if key == "beta" and value <= 0:
        raise UserError(f"loss {loss!r}: hyperparameter 'beta' must be > 0, got {value}")


def describe() -> list[dict[str, Any]]:
    """One row per loss, for ``gsil-bench losses`` and docs."""
    rows = []
    for name in available():
        spec = get_loss(name)
        rows.append(
            {
                "name": spec.name,
                "family": spec.family,
                "needs_reference": spec.needs_reference,
                "needs_generated": spec.needs_generated,
                "hparams": dict(spec.hparams),
                "target": spec.target,
                "summary": spec.summary,
            }
        )
    return rows


__all__ = [
    "BUILTINS",
    "ENTRY_POINT_GROUP",
    "LOSSES",
    "Registry",
    "available",
    "describe",
    "did_you_mean",
    "get_loss",
    "import_target",
    "register_loss",
    "target_of",
    "validate_hparams",
]
