"""The loss registry: built-in losses, ``@register_loss`` and third-party entry points.

Built-ins are named by lazy "module:function" targets so that listing them imports nothing
heavy; plugins declare ``NAME = "module:function"`` in the ``gsil_bench.losses`` entry-point
group. Every loss function is decorated with :func:`register_loss`, which reads its
keyword-only hyperparameters (and their defaults) from the signature.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from gsil_bench.errors import UserError
from gsil_bench.types import LossFn, LossSpec

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

_REGISTERED: dict[str, LossSpec] = {}


def _target_of(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}:{fn.__qualname__}"


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
    family: str | None = None,
) -> Callable[[LossFn], LossFn]:
    """Register ``fn`` as the loss ``name``. The function itself is returned unchanged.

    A name already taken by another function (a built-in or an earlier plugin) is an error.
    """

    def decorate(fn: LossFn) -> LossFn:
        target = _target_of(fn)
        builtin_target = BUILTINS.get(name)
        if builtin_target is not None and builtin_target != target:
            raise UserError(
                f"loss name {name!r} is a built-in ({builtin_target}); {target} cannot reuse it"
            )
        existing = _REGISTERED.get(name)
        if existing is not None and existing.target != target:
            raise UserError(f"loss name {name!r} is already registered by {existing.target}")
        doc = inspect.getdoc(fn) or ""
        spec = LossSpec(
            name=name,
            fn=fn,
            needs_reference=needs_reference,
            needs_generated=needs_generated,
            hparams=_keyword_hparams(name, fn),
            family=family or name.split("-")[0],
            target=target,
            summary=doc.splitlines()[0] if doc else "",
        )
        _REGISTERED[name] = spec
        fn.loss_spec = spec  # type: ignore[attr-defined]
        return fn

    return decorate


def _plugin_targets() -> dict[str, str]:
    targets: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in BUILTINS:
            raise UserError(
                f"plugin loss {ep.name!r} ({ep.value}, package "
                f"{getattr(ep.dist, 'name', '?')}) reuses a built-in loss name"
            )
        targets[ep.name] = ep.value
    return targets


def available() -> list[str]:
    """Every loss name: built-ins first, then plugins and losses registered at run time."""
    names = list(BUILTINS)
    extra = set(_plugin_targets()) | set(_REGISTERED)
    return names + sorted(extra - set(BUILTINS))


def _load_target(name: str, target: str) -> LossSpec:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    spec = getattr(obj, "loss_spec", None)
    if not isinstance(spec, LossSpec):
        raise UserError(f"loss {name!r} at {target} is not decorated with @register_loss")
    if spec.name != name:
        raise UserError(f"entry point {name!r} points at {target}, registered as {spec.name!r}")
    return spec


def get_loss(name: str) -> LossSpec:
    """The loss called ``name``; unknown names raise a :class:`UserError` with close matches."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    target = BUILTINS.get(name) or _plugin_targets().get(name)
    if target is None:
        names = available()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UserError(f"unknown loss {name!r}.{hint} Available: {', '.join(names)}")
    return _load_target(name, target)


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
    merged = dict(spec.hparams)
    merged.update(hparams)
    return merged


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
