"""resolve_target: a run folder, a model folder or a Hub name, and where the record goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gsil_bench.config import RunConfig, config_to_yaml
from gsil_bench.errors import UserError
from gsil_bench.evaluation.target import resolve_target
from gsil_bench.record import RunDir


def test_run_folder_gives_its_final_model_and_config(tmp_path):
    run_dir = RunDir(tmp_path / "run")
    config = RunConfig.model_validate({"iterations": 2, "seed": 3})
    run_dir.claim(config.fingerprint(), config_to_yaml(config))
    with pytest.raises(UserError, match="has no finished model yet"):
        resolve_target(str(run_dir.path))
    run_dir.model_dir(2).mkdir(parents=True)
    run_dir.mark_round_complete(2, {})
    model_path, run_config, out = resolve_target(str(run_dir.path))
    assert model_path == str(run_dir.model_dir(2))
    assert run_config == config
    assert out == run_dir.path / "eval.json"


def test_model_folder_writes_beside_itself(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    with pytest.raises(UserError, match="neither a run folder nor a model folder"):
        resolve_target(str(folder))
    (folder / "config.json").write_text("{}")
    assert resolve_target(str(folder)) == (str(folder), None, tmp_path / "eval-ckpt.json")


def test_missing_paths_and_hub_names(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        resolve_target(str(tmp_path / "missing"))
    with pytest.raises(UserError, match="does not exist"):
        resolve_target("./nothing-here")
    assert resolve_target("gpt2") == ("gpt2", None, Path("eval-gpt2.json"))
    name = "Qwen/Qwen2.5-0.5B-Instruct"  # a dot in a Hub name does not make it a path
    assert resolve_target(name) == (name, None, Path("eval-Qwen_Qwen2.5-0.5B-Instruct.json"))


def test_a_failed_base_only_run_is_refused(tmp_path):
    from gsil_bench.record import RunRecord

    run_dir = RunDir(tmp_path / "base")
    config = RunConfig.model_validate({"iterations": 0})
    run_dir.claim(config.fingerprint(), config_to_yaml(config))
    record = RunRecord(
        run_id="base", loss="sft", seed=0, status="failed", reason="UserError: no such model"
    )
    run_dir.write_result(record)
    with pytest.raises(UserError, match=r"failed \(UserError: no such model\).*run it again"):
        resolve_target(str(run_dir.path))


def test_eval_settings_layer_run_then_set_then_flags():
    from gsil_bench.evaluation.target import eval_settings

    run = RunConfig.model_validate({"eval": {"suites": ["gsm8k"], "max_new_tokens": 64}})
    # Nothing given: the run's own settings.
    assert eval_settings(run, None, None, None, []).suites == ["gsm8k"]
    cfg = eval_settings(
        run,
        None,
        None,
        None,
        ["eval.options.gsm8k.source=/data/gsm8k.jsonl", "eval.max_new_tokens=256"],
    )
    assert cfg.options == {"gsm8k": {"source": "/data/gsm8k.jsonl"}}
    assert (cfg.max_new_tokens, cfg.suites) == (256, ["gsm8k"])
    # Flags given on the command line win over the run and --set.
    cfg = eval_settings(run, ["mini"], 5, None, ["eval.suites=[humaneval]", "eval.limit=9"])
    assert (cfg.suites, cfg.limit) == (["mini"], 5)


def test_eval_settings_refuse_other_sections_and_bad_values():
    from gsil_bench.evaluation.target import eval_settings

    with pytest.raises(UserError, match=r"--set optim.lr: eval sets eval\.\* keys only"):
        eval_settings(RunConfig(), None, None, None, ["optim.lr=1e-3"])
    with pytest.raises(UserError, match="gsm8k.*has no option 'sourc'"):
        eval_settings(RunConfig(), None, None, None, ["eval.options.gsm8k.sourc=x"])


def test_eval_settings_from_a_config_file_come_before_set(tmp_path):
    from gsil_bench.evaluation.target import eval_settings

    run = RunConfig.model_validate({"eval": {"suites": ["gsm8k"], "max_new_tokens": 64}})
    file = tmp_path / "eval.yaml"
    file.write_text(
        "eval:\n  judge: hf:judge\n  options:\n    gsm8k: {source: /data/a.jsonl}\n"
        "    mt-bench: {questions: /data/q.jsonl}\n"
    )
    cfg = eval_settings(run, None, None, None, ["eval.options.gsm8k.source=/data/b.jsonl"], file)
    assert cfg.judge == "hf:judge" and cfg.max_new_tokens == 64  # the run's own, kept
    assert cfg.options == {
        "gsm8k": {"source": "/data/b.jsonl"},  # --set wins over the file
        "mt-bench": {"questions": "/data/q.jsonl"},
    }
    file.write_text("optim: {lr: 1.0e-3}\neval: {limit: 3}\n")
    with pytest.raises(
        UserError, match=r"eval\.yaml: eval reads only an eval: section; found optim"
    ):
        eval_settings(run, None, None, None, [], file)
    file.write_text("eval: {limt: 3}\n")
    with pytest.raises(UserError, match=r"eval\.yaml.*limt"):
        eval_settings(run, None, None, None, [], file)
