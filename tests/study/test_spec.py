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
        (lambda s: s.update(workers=0), r"key 'workers'"),
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


def _space(**dist):
    return {"sampler": "tpe", "trials": 2}, [{"loss": "spin", "space": {"loss.params.beta": dist}}]


@pytest.mark.parametrize(
    ("dist", "message"),
    [
        ({"low": 2.0, "high": 1.0}, r"low 2\.0 > high 1\.0"),
        ({"low": 0.0, "high": 1.0, "log": True}, r"a log scale needs low > 0, got low 0\.0"),
        ({"low": -1.0, "high": 1.0, "log": True}, r"a log scale needs low > 0, got low -1\.0"),
        ({"low": 0.1, "high": 1.0, "step": 0}, r"step must be a positive number, got 0"),
        ({"low": 0.1, "high": 1.0, "step": -0.1}, r"step must be a positive number"),
        ({"low": 0.1, "high": 1.0, "step": 0.1, "log": True}, r"step and log cannot"),
        ({"low": 0.1, "high": float("nan")}, r"low and high must be finite numbers"),
        (
            {"type": "int", "low": 1.5, "high": 4},
            r"an int distribution needs whole numbers, got low 1\.5",
        ),
        ({"type": "categorical", "choices": []}, r"'choices' is empty"),
        (
            {"type": "categorical", "choices": [[1.0]]},
            r"choices must be numbers, strings or booleans",
        ),
        (
            {"type": "categorical", "choices": [1.0], "low": 0},
            r"a categorical distribution takes 'choices' only, not low",
        ),
        ({"low": 0.1, "high": 1.0, "choices": [1.0]}, r"'choices' is for type: categorical"),
    ],
)
def test_search_spaces_are_checked_when_the_file_loads(tiny_sweep, dist, message):
    extra, methods = _space(**dist)
    path = tiny_sweep(methods, **extra)
    key = r"key 'methods\[0\]\.space\.loss\.params\.beta': "
    with pytest.raises(UserError, match=rf"^{path}: {key}{message}"):
        load_sweep(path)


@pytest.mark.parametrize("mode", ["cross", "one-at-a-time"])
def test_an_empty_grid_axis_is_an_error_not_the_default(tiny_sweep, mode):
    grid = {"data.quality.subsample": [1.0, 0.5], "data.quality.duplicate": []}
    path = tiny_sweep([{"loss": "sft"}], grid=grid, grid_mode=mode)
    with pytest.raises(UserError, match=rf"^{path}: grid\.data\.quality\.duplicate: no values"):
        load_sweep(path)


def test_a_stepped_space_samples_on_its_grid(tiny_sweep):
    import optuna

    extra, methods = _space(low=0.5, high=2.0, step=0.5)
    methods.append(
        {
            "loss": "sft",
            "space": {"optim.batch_size": {"type": "int", "low": 2, "high": 8, "step": 3}},
        }
    )
    spec = load_sweep(tiny_sweep(methods, **extra))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    betas, sizes = set(), set()
    for _ in range(40):
        trial = study.ask()
        betas.add(spec.methods[0].space["loss.params.beta"].suggest(trial, "beta"))
        sizes.add(spec.methods[1].space["optim.batch_size"].suggest(trial, "bs"))
        study.tell(trial, 0.0)
    assert betas <= {0.5, 1.0, 1.5, 2.0} and len(betas) > 1  # low + k * step
    assert sizes <= {2, 5, 8} and len(sizes) > 1  # 2, 2 + 3, 2 + 6


def test_workers_say_how_a_study_runs_not_what_it_measures(tiny_sweep):
    from gsil_bench.study.storage import spec_digest

    methods = [{"loss": "sft"}]
    alone = load_sweep(tiny_sweep(methods))
    two = load_sweep(tiny_sweep(methods, workers=2))
    assert (alone.workers, two.workers) == (None, 2)
    assert spec_digest(two) == spec_digest(alone)  # the same study folder takes both
    assert spec_digest(load_sweep(tiny_sweep(methods, seeds=[5]))) != spec_digest(alone)
