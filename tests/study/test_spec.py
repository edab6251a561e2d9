"""Sweep files: validation at load time (file and key named), labels, grid enumeration."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gsil_bench.errors import UserError
from gsil_bench.study.samplers import PRUNERS, SAMPLERS
from gsil_bench.study.spec import Method, grid_points, load_sweep, method_label

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "sweeps").glob("*.yaml")))
def test_shipped_sweeps_validate(name):
    spec = load_sweep(REPO / "sweeps" / f"{name}.yaml")
    assert spec.study == name and spec.methods


def test_quickstart_compares_the_papers_losses():
    spec = load_sweep(REPO / "sweeps" / "quickstart.yaml")
    losses = {m.loss for m in spec.methods}
    assert {
        "sft",
        "spin",
        "gsil-logistic",
        "gsil-brier",
        "gsil-hinge",
        "gsil-kliep",
        "gsil-lsif",
    } <= losses
    assert len(spec.seeds) >= 2


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.update(seed=[0]), r"unknown key 'seed' \(did you mean 'seeds'\?\)"),
        (
            lambda s: s["methods"].append({"loss": "gsil-logistc"}),
            r"methods\[1\].*(?i:did you mean)",
        ),
        (
            lambda s: s["methods"].append({"loss": "spin", "params": {"loss.params.bta": 1}}),
            r"methods\[1\] \(spin\).*no hyperparameter 'bta'",
        ),
        (lambda s: s["base"]["optim"].update(lrr=1), r"unknown key 'optim\.lrr'"),
        (lambda s: s.update(sampler="tpe"), r"trial budget"),
        (
            lambda s: s.update(sampler="tpee", trials=2),
            r"key 'sampler': unknown sampler 'tpee'\. Did you mean 'tpe'\?",
        ),
        (lambda s: s.update(pruner="medain"), r"key 'pruner': unknown pruner 'medain'.*'median'"),
        (lambda s: s.update(objective={"direction": "up"}), r"key 'objective\.direction'"),
    ],
)
def test_typos_name_the_file_and_key(tiny_sweep, tmp_path, mutate, message):
    path = tiny_sweep([{"loss": "sft"}])
    spec = yaml.safe_load(path.read_text())
    mutate(spec)
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(UserError, match=r"tiny\.yaml.*" + message):
        load_sweep(path)


def test_samplers_and_pruners_are_registered_by_name():
    assert SAMPLERS.names()[:3] == ["grid", "tpe", "random"]
    assert PRUNERS.names()[:3] == ["none", "median", "hyperband"]
    seeds = type("Sweep", (), {"seeds": [0, 1, 2]})()
    assert type(SAMPLERS.get("tpe")(seeds)).__name__ == "TPESampler"
    assert PRUNERS.get("hyperband")(seeds)._max_resource == 3  # one step per seed


def test_method_label_with_and_without_knobs():
    method = Method(loss="gsil-logistic", params={"loss.params.beta": 1.0})
    values = {"data.quality.subsample": 0.5, "optim.lr": 1e-4}
    assert method_label(method, values) == "gsil-logistic beta=1 subsample=0.5 lr=0.0001"
    hidden = ["data.quality.subsample"]
    assert method_label(method, values, hidden=hidden) == "gsil-logistic beta=1 lr=0.0001"
    named = Method(loss="sft", label="my sft")
    assert method_label(named, values, hidden=hidden) == "my sft"


def test_one_at_a_time_grid_varies_each_knob_alone(tiny_sweep, tmp_path):
    path = tiny_sweep(
        [{"loss": "sft"}],
        grid={"data.quality.subsample": [1.0, 0.5, 0.25], "data.quality.duplicate": [0.0, 0.5]},
        grid_mode="one-at-a-time",
    )
    settings = [values for _, values in grid_points(load_sweep(path))]
    clean = {"data.quality.subsample": 1.0, "data.quality.duplicate": 0.0}
    # The reference setting, then 2 more subsample values and 1 more duplicate value: 4, not 6.
    assert settings == [
        clean,
        {**clean, "data.quality.subsample": 0.5},
        {**clean, "data.quality.subsample": 0.25},
        {**clean, "data.quality.duplicate": 0.5},
    ]
