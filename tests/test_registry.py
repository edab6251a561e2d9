"""The loss registry: the contract every loss (built-in or plugin) keeps, names, hparams, plugins.

The contract tests are parametrized over ``available()`` at collection time, so an installed
plugin is checked with the built-ins without anyone writing a test for it.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from gsil_bench import registry
from gsil_bench.errors import UserError
from gsil_bench.registry import BUILTINS, available, describe, get_loss, validate_hparams
from gsil_bench.types import LogpBatch, LossOutput

ALL_LOSSES = available()
REFERENCE_FREE = [n for n in ALL_LOSSES if not get_loss(n).needs_reference]
NO_GENERATED = [n for n in ALL_LOSSES if not get_loss(n).needs_generated]
BATCH = 8


class Untouchable(torch.Tensor):
    """A tensor that fails on any use: stands in for a field a loss declared it does not need."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        raise AssertionError(f"the loss used a field it declared it does not need ({func})")


def contract_batch(name: str, absent: str = "none") -> tuple[LogpBatch, torch.Tensor]:
    """Random float64 batch, log-ratios near 0, with the fields ``name`` does not need absent.

    ``absent`` is "none" (the field is None) or "sentinel" (an :class:`Untouchable`).
    """
    spec = get_loss(name)
    rng = np.random.default_rng(0)

    def logps(centre: float) -> torch.Tensor:
        return torch.tensor(centre + rng.uniform(-0.2, 0.2, BATCH))

    def unneeded() -> torch.Tensor | None:
        return torch.zeros(BATCH).as_subclass(Untouchable) if absent == "sentinel" else None

    policy_real = logps(-10.0).requires_grad_()
    fields: dict[str, torch.Tensor | None] = {
        "policy_real": policy_real,
        "policy_generated": logps(-12.0).requires_grad_(),
        "ref_real": torch.full((BATCH,), -10.0, dtype=torch.float64),
        "ref_generated": torch.full((BATCH,), -12.0, dtype=torch.float64),
        "real_tokens": torch.tensor(rng.integers(1, 50, BATCH)),
        "generated_tokens": torch.tensor(rng.integers(1, 50, BATCH)),
    }
    if not spec.needs_reference:
        fields["ref_real"] = unneeded()
        fields["ref_generated"] = unneeded()
    if not spec.needs_generated:
        for key in ("policy_generated", "ref_generated", "generated_tokens"):
            fields[key] = unneeded()
    return LogpBatch(**fields), policy_real


def assert_loss_contract(name: str) -> None:
    """Per-example (B,) finite loss, detached (B,) metrics, and descent raises policy_real."""
    batch, policy_real = contract_batch(name)
    out = get_loss(name)(batch)

    assert isinstance(out, LossOutput)
    assert out.loss.shape == (BATCH,), "a loss must not reduce over the batch"
    assert torch.isfinite(out.loss).all()
    for key, value in out.metrics.items():
        assert value.shape == (BATCH,), key
        assert not value.requires_grad, f"metric {key} must be detached"

    out.loss.sum().backward()
    assert policy_real.grad is not None
    assert torch.isfinite(policy_real.grad).all()
    assert (policy_real.grad < 0).all(), "gradient descent must raise the demonstration log-prob"


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_loss_contract(name):
    assert_loss_contract(name)


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_finite_on_random_inputs(name):
    spec = get_loss(name)
    rng = np.random.default_rng(ALL_LOSSES.index(name))
    ref_real, ref_generated = -rng.uniform(5, 80, 64), -rng.uniform(5, 80, 64)
    batch = LogpBatch(
        policy_real=torch.tensor(ref_real + rng.normal(0, 3, 64)),
        policy_generated=torch.tensor(ref_generated + rng.normal(0, 3, 64)),
        ref_real=torch.tensor(ref_real),
        ref_generated=torch.tensor(ref_generated),
        real_tokens=torch.tensor(rng.integers(1, 200, 64)),
        generated_tokens=torch.tensor(rng.integers(1, 200, 64)),
    )
    out = spec(batch)
    assert out.loss.shape == (64,)
    assert torch.isfinite(out.loss).all()


@pytest.mark.parametrize("absent", ["none", "sentinel"])
@pytest.mark.parametrize("name", REFERENCE_FREE)
def test_reference_free_losses_never_touch_reference(name, absent):
    batch, _ = contract_batch(name, absent)
    assert torch.isfinite(get_loss(name)(batch).loss).all()


@pytest.mark.parametrize("absent", ["none", "sentinel"])
@pytest.mark.parametrize("name", NO_GENERATED)
def test_losses_without_generated_never_touch_it(name, absent):
    batch, _ = contract_batch(name, absent)
    assert torch.isfinite(get_loss(name)(batch).loss).all()


@pytest.mark.parametrize("name", [n for n in ALL_LOSSES if get_loss(n).needs_reference])
def test_reward_metrics_mean_the_same_everywhere(name):
    """``reward/real`` and ``reward/generated`` are beta * log-ratio for every loss with a
    reference (built-ins must report them; a plugin that reports them must agree)."""
    spec = get_loss(name)
    batch, _ = contract_batch(name)
    beta = 0.5 if "beta" in spec.hparams else 1.0
    metrics = spec(batch, **({"beta": beta} if "beta" in spec.hparams else {})).metrics
    r_w = (batch.policy_real - batch.ref_real).detach()
    r_l = (batch.policy_generated - batch.ref_generated).detach()
    if name in BUILTINS:
        assert {"reward/real", "reward/generated", "reward/accuracy"} <= set(metrics)
    if "reward/real" in metrics:
        torch.testing.assert_close(metrics["reward/real"], beta * r_w)
        torch.testing.assert_close(metrics["reward/generated"], beta * r_l)
    if "reward/accuracy" in metrics:
        torch.testing.assert_close(metrics["reward/accuracy"], (r_w > r_l).to(r_w.dtype))


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_hparams_are_read_from_signature(name):
    spec = get_loss(name)
    params = inspect.signature(spec.fn).parameters.values()
    expected = {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert dict(spec.hparams) == expected
    assert validate_hparams(name, {}) == expected


@pytest.mark.parametrize("name", list(BUILTINS))
def test_builtin_targets_match_the_map(name):
    spec = get_loss(name)
    assert spec.name == name
    assert spec.target == BUILTINS[name]
    assert spec.summary, "the first docstring line is the summary `gsil-bench losses` shows"


def test_available_lists_builtins_first():
    assert ALL_LOSSES[: len(BUILTINS)] == list(BUILTINS)
    assert [row["name"] for row in describe()] == available()


def test_unknown_loss_suggests_close_matches():
    expected = r"unknown loss 'gsil-logistc'\. Did you mean 'gsil-logistic'"
    with pytest.raises(UserError, match=expected):
        get_loss("gsil-logistc")
    with pytest.raises(UserError, match=r"Available: sft, spin"):
        get_loss("nothing-like-it")


def test_validate_hparams_rejects_unknown_names():
    with pytest.raises(UserError) as info:
        validate_hparams("gsil-hinge", {"beta": 1.0, "betaa": 2.0})
    message = str(info.value)
    assert "'gsil-hinge'" in message
    assert "'betaa'" in message
    assert "did you mean 'beta'" in message
    assert "accepts: beta, shift" in message


def test_validate_hparams_merges_defaults():
    assert validate_hparams("simpo", {"gamma": 0.5}) == {"beta": 2.0, "gamma": 0.5}


@pytest.fixture
def clean_registry():
    """Forget losses and plugin modules a test registers, so later tests see the built-ins only."""
    before = registry.LOSSES.registered()
    modules_before = set(sys.modules)
    yield
    for name in registry.LOSSES.registered() - before - set(BUILTINS):
        registry.LOSSES.forget(name)
    for module in set(sys.modules) - modules_before:
        if module.startswith(("my_plugin_loss", "clashing_plugin")):
            del sys.modules[module]


def _register_as(name: str):
    def loss(batch: LogpBatch, *, scale: float = 1.0) -> LossOutput:
        return LossOutput(-scale * batch.policy_real)

    return registry.register_loss(name, needs_reference=False, needs_generated=False)(loss)


def test_plugin_cannot_reuse_a_builtin_name(clean_registry):
    with pytest.raises(UserError, match="'spin' is a built-in"):
        _register_as("spin")
    assert get_loss("spin").target == BUILTINS["spin"]


def test_plugin_cannot_take_a_name_registered_elsewhere(clean_registry):
    _register_as("test-plugin-taken")

    def other(batch: LogpBatch) -> LossOutput:
        return LossOutput(-batch.policy_real)

    register = registry.register_loss(
        "test-plugin-taken", needs_reference=False, needs_generated=False
    )
    with pytest.raises(UserError, match="already registered"):
        register(other)


def test_hyperparameters_must_be_keyword_only_with_defaults(clean_registry):
    def positional(batch: LogpBatch, beta: float = 0.1) -> LossOutput:
        return LossOutput(-batch.policy_real)

    def no_default(batch: LogpBatch, *, beta: float) -> LossOutput:
        return LossOutput(-batch.policy_real)

    register = registry.register_loss("test-bad-sig", needs_reference=False, needs_generated=False)
    for fn in (positional, no_default):
        with pytest.raises(TypeError, match="keyword-only with a default"):
            register(fn)


PLUGIN_SOURCE = '''
"""A third-party loss, discovered through the gsil_bench.losses entry-point group."""

from gsil_bench.registry import register_loss
from gsil_bench.types import LogpBatch, LossOutput


@register_loss("test-plugin-sq", needs_reference=False, needs_generated=False)
def squared_nll(batch: LogpBatch, *, scale: float = 1.0) -> LossOutput:
    """Test plugin: scale * (policy_real / real_tokens)**2."""
    logp = batch.policy_real / batch.real_tokens
    return LossOutput(scale * logp**2, {"logp/real": logp.detach()})
'''


def write_distribution(root: Path, dist: str, module_source: str, entry_points: str) -> None:
    """An installed-looking distribution: a module plus ``<dist>-0.1.dist-info``."""
    (root / f"{dist}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    name = dist.replace("_", "-")
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[gsil_bench.losses]\n{entry_points}\n")


def test_plugin_discovered_through_entry_points(tmp_path, monkeypatch, clean_registry):
    write_distribution(
        tmp_path, "my_plugin_loss", PLUGIN_SOURCE, "test-plugin-sq = my_plugin_loss:squared_nll"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()

    assert "test-plugin-sq" in available()
    assert available()[: len(BUILTINS)] == list(BUILTINS)
    spec = get_loss("test-plugin-sq")
    assert spec.target == "my_plugin_loss:squared_nll"
    assert dict(spec.hparams) == {"scale": 1.0}

    # policy_real = -6 over 3 tokens: logp = -2, scale 0.5 * (-2)**2 = 2.
    batch = LogpBatch(policy_real=torch.tensor([-6.0]), real_tokens=torch.tensor([3]))
    assert spec(batch, scale=0.5).loss.item() == pytest.approx(2.0)
    assert any(row["name"] == "test-plugin-sq" for row in describe())
    # The plugin is held to the same contract as the built-ins.
    assert_loss_contract("test-plugin-sq")


def test_plugin_entry_point_reusing_builtin_name_is_an_error(tmp_path, monkeypatch):
    write_distribution(tmp_path, "clashing_plugin", "", "spin = clashing_plugin:spin")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()

    with pytest.raises(UserError, match=r"plugin loss 'spin'.*clashing-plugin.*built-in"):
        available()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"beta": 0.0}, r"'ipo': hyperparameter 'beta' must be > 0, got 0\.0"),
        ({"beta": -1.0}, r"'beta' must be > 0, got -1\.0"),
        ({"beta": float("nan")}, r"'beta' must be finite, got nan"),
        ({"beta": float("inf")}, r"'beta' must be finite, got inf"),
        ({"beta": "big"}, r"'beta' must be a number, got 'big'"),
    ],
)
def test_hyperparameters_are_finite_numbers_and_beta_positive(params, message):
    with pytest.raises(UserError, match=message):
        validate_hparams("ipo", params)
