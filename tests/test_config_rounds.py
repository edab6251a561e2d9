"""Per-round overrides (``rounds``) and ``eval.every_round``: what each round's config is, and
the errors a bad entry gives at load time."""

from __future__ import annotations

import pytest

from gsil_bench.config import build_config, load_config
from gsil_bench.errors import UserError

# SPIN's schedule (uclaml/SPIN, README "Step 2"): lr 5e-7 and beta 0.1 for iterations 0 and 1,
# lr 1e-7 for iteration 2, lr 1e-7 with beta 5.0 for iteration 3.
SPIN = {
    "iterations": 4,
    "loss": {"name": "spin", "params": {"beta": 0.1}},
    "optim": {"lr": 5e-7},
    "rounds": [{}, {}, {"optim.lr": 1e-7}, {"optim.lr": 1e-7, "loss.params.beta": 5.0}],
}


def _settings(config, index):
    round_config = config.for_round(index)
    return round_config.optim.lr, dict(round_config.loss.params)


def test_spin_schedule_gives_each_round_its_lr_and_beta():
    config = build_config(SPIN, "spin.yaml")
    assert [_settings(config, i) for i in (1, 2, 3, 4)] == [
        (5e-7, {"beta": 0.1}),
        (5e-7, {"beta": 0.1}),
        (1e-7, {"beta": 0.1}),
        (1e-7, {"beta": 5.0}),
    ]
    # Everything else is the run's.
    assert config.for_round(4).loss.name == "spin"
    assert config.for_round(4).iterations == 4


def test_entries_apply_to_the_base_and_the_last_entry_carries_on():
    tree = {
        "iterations": 3,
        "optim": {"lr": 1e-4, "epochs": 2},
        "loss": {"params": {"beta": 0.5}},
        "rounds": [{"optim.lr": 1e-5, "loss.params.beta": 2.0}, {"optim.epochs": 1}],
    }
    config = build_config(tree, "x.yaml")
    # Round 2's entry does not inherit round 1's lr or beta: the base's.
    assert (config.for_round(2).optim.lr, config.for_round(2).loss.params) == (1e-4, {"beta": 0.5})
    assert config.for_round(2).optim.epochs == 1
    # Round 3, past the end of the list, keeps the last entry.
    assert config.for_round(3) == config.for_round(2)
    assert config.for_round(1).optim.epochs == 2


def test_no_rounds_is_the_run_config_itself():
    config = load_config(None, ["iterations=2"])
    assert config.for_round(2) is config


def test_nested_and_dotted_entries_are_the_same():
    dotted = build_config({"rounds": [{"optim.lr": 1e-5, "generation.max_new_tokens": 8}]}, "a")
    nested = build_config(
        {"rounds": [{"optim": {"lr": 1e-5}, "generation": {"max_new_tokens": 8}}]}, "b"
    )
    assert dotted.for_round(1) == nested.for_round(1)
    assert nested.for_round(1).generation.max_new_tokens == 8


def test_rounds_from_the_command_line():
    config = load_config(None, ["iterations=2", "rounds=[{optim.lr: 2.0e-5}, {optim.lr: 1.0e-5}]"])
    assert [config.for_round(i).optim.lr for i in (1, 2)] == [2e-5, 1e-5]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"optim.lrr": 1e-5},
            "x.yaml: rounds[1]: unknown key 'optim.lrr' (did you mean 'optim.lr'?)",
        ),
        (
            {"learning_rate": 1e-5},
            "x.yaml: rounds[1]: unknown key 'learning_rate' (did you mean 'optim.lr'?)",
        ),
        ({"optim.lr": -1}, "x.yaml: rounds[1]: key 'optim.lr': Input should be greater than 0"),
        (
            {"loss.params.btea": 1},
            "x.yaml: rounds[1]: loss 'gsil-logistic' has no hyperparameter 'btea' "
            "(did you mean 'beta'?)",
        ),
        (
            {"model.name": "gpt2"},
            "x.yaml: rounds[1]: key 'model.name' cannot change between rounds",
        ),
        ({"eval.suites": []}, "x.yaml: rounds[1]: key 'eval.suites' cannot change between rounds"),
    ],
)
def test_a_bad_entry_is_one_line_naming_it(entry, message):
    with pytest.raises(UserError) as caught:
        build_config({"iterations": 2, "rounds": [{}, entry]}, "x.yaml")
    assert str(caught.value).startswith(message)


def test_a_bad_entry_past_the_iterations_is_still_refused():
    with pytest.raises(UserError, match=r"rounds\[2\]: unknown key 'optim.lrr'"):
        build_config({"iterations": 1, "rounds": [{}, {}, {"optim.lrr": 1}]}, "x.yaml")


def test_rounds_and_every_round_are_part_of_the_run_identity():
    base = load_config(None, [])
    assert base.eval.every_round is False and base.rounds == []
    # Left out at their defaults: configs written before them keep their hash.
    dumped = base.model_dump()
    assert "rounds" not in dumped and "every_round" not in dumped["eval"]
    scheduled = load_config(None, ["rounds=[{optim.lr: 1.0e-5}]"])
    every = load_config(None, ["eval.every_round=true"])
    assert len({base.fingerprint(), scheduled.fingerprint(), every.fingerprint()}) == 3
