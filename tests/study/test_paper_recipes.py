"""The paper recipes (sweeps/paper-*.yaml) against the releases they reproduce, and their
evaluation checked before any training (a missing FastChat file fails at the start)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gsil_bench.errors import UserError
from gsil_bench.evaluation.preflight import preflight
from gsil_bench.study.spec import load_sweep, run_config_for

REPO = Path(__file__).resolve().parents[2]
SHARED_MT_BENCH = REPO.parent / "shared" / "data" / "mt-bench"
FASTCHAT = Path("FastChat/fastchat/llm_judge/data")


def _configs(name: str):
    spec = load_sweep(REPO / "sweeps" / f"{name}.yaml")
    return {m.loss: run_config_for(spec, m, {}, spec.seeds[0], name) for m in spec.methods}


def test_gsil_recipe_is_the_release_finetune_script():
    # tengxiao1/GSIL scripts/finetune.sh: --alpha 0.01 --beta 2 (alpha scales, beta shifts),
    # --learning_rate 5.0e-7, 4 GPUs x --per_device_train_batch_size 16 x
    # --gradient_accumulation_steps 2, --warmup_steps 30, --num_train_epochs 1, --seed 42,
    # --max_length 1024, --max_prompt_length 512; gsil/generate.py: greedy, 256 new tokens.
    configs = _configs("paper-gsil")
    gsil = configs["gsil-logistic"]
    assert gsil.loss.params == {"beta": 0.01, "shift": 2.0}
    assert (gsil.optim.optimizer, gsil.optim.lr, gsil.optim.warmup_steps) == ("rmsprop", 5e-7, 30)
    assert gsil.optim.for_world(4).batch_size == 16 and gsil.optim.grad_accum == 2
    assert (gsil.optim.epochs, gsil.seed, gsil.iterations) == (1, 42, 1)
    assert (gsil.data.max_length, gsil.data.max_prompt_tokens) == (1024, 512)
    assert (gsil.generation.do_sample, gsil.generation.max_new_tokens) == (False, 256)
    assert gsil.generation.prompt_format == "release"  # gsil/generate.py: no chat template
    # README "Evaluation": lm-evaluation-harness b281b09 (v0.3.1) for GSM8K.
    assert gsil.eval.options["gsm8k"] == {"protocol": "gsil"}
    # The SPIN baseline of the release's trainer (loss_type "spin", beta default 0.1).
    assert configs["spin"].loss.params == {"beta": 0.1}
    assert configs["spin"].optim == gsil.optim and configs["spin"].data == gsil.data


def test_spin_recipe_is_the_release_iteration_0_config():
    # uclaml/SPIN configs/config.yaml and scripts/finetune.sh: revision ac6e600..., beta 0.1,
    # lr 5e-7, 8 processes x per_device_train_batch_size 8, --num_train_epochs=6, seed 42.
    spin = _configs("paper-spin")["spin"]
    assert spin.model.revision == "ac6e600eefcce74f5e8bae1035d4f66019e93190"
    assert (spin.loss.params, spin.optim.lr, spin.optim.epochs) == ({"beta": 0.1}, 5e-7, 6)
    assert spin.optim.for_world(8).batch_size == 8 and spin.seed == 42
    assert spin.iterations == 4 and spin.generation.mix_previous_rounds
    assert spin.generation.max_new_tokens == 256
    assert spin.generation.prompt_format == "release"  # spin/generate.py: no chat template
    # README "Evaluation": lm-evaluation-harness v0.4.0 (46c7966).
    assert spin.eval.options["gsm8k"] == {"protocol": "spin"}
    # scripts/finetune_iter2.sh: --learning_rate=1.0e-7 --beta=0.1; finetune_iter3.sh:
    # --learning_rate=1.0e-7 --beta=5.0; iterations 0 and 1 keep lr 5e-7, beta 0.1.
    schedule = [spin.for_round(r) for r in (1, 2, 3, 4)]
    assert [(c.optim.lr, c.loss.params["beta"]) for c in schedule] == [
        (5e-7, 0.1),
        (5e-7, 0.1),
        (1e-7, 0.1),
        (1e-7, 5.0),
    ]
    assert spin.eval.every_round  # SPIN's per-iteration table


@pytest.mark.parametrize("name", ["paper-gsil", "paper-spin"])
def test_recipe_evaluation_is_checked_before_training(name, tmp_path, monkeypatch):
    config = next(iter(_configs(name).values()))
    monkeypatch.chdir(tmp_path)  # the recipes name FastChat's files relative to the cwd
    with pytest.raises(UserError) as err:
        preflight(config)
    assert str(err.value) == (
        f"eval.options.mt-bench.questions: {FASTCHAT / 'mt_bench' / 'question.jsonl'}: "
        "no such file or folder"
    )
    if not SHARED_MT_BENCH.is_dir():
        pytest.skip("../shared/data/mt-bench (FastChat's files) is not here")
    (tmp_path / FASTCHAT / "mt_bench" / "reference_answer").mkdir(parents=True)
    shutil.copy(SHARED_MT_BENCH / "question.jsonl", FASTCHAT / "mt_bench")
    shutil.copy(SHARED_MT_BENCH / "judge_prompts.jsonl", FASTCHAT)
    shutil.copy(
        SHARED_MT_BENCH / "reference_answer_gpt-4.jsonl",
        FASTCHAT / "mt_bench" / "reference_answer" / "gpt-4.jsonl",
    )
    # Every file in place: the recipe's evaluation can run (the GPT-4 judge is not asked here:
    # no network in tests; tests/evaluation/test_preflight.py asks a local one).
    preflight(config, contact_judge=False)
