"""One experiment end to end on the tiny model: caches, iterations, resume, the record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gsil_bench.config import load_config
from gsil_bench.experiment.recipe import run_experiment

TINY = str(Path(__file__).parents[1] / "fixtures" / "tiny_run.yaml")


def _config(tmp_path, *overrides):
    return load_config(
        TINY,
        [f"output_dir={tmp_path}/run-{{loss}}-{{seed}}", f"cache_dir={tmp_path}/cache", *overrides],
    )


def _entries(tmp_path, stage):
    folder = tmp_path / "cache" / stage
    return (
        sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        if folder.exists()
        else []
    )


def test_experiment_trains_evaluates_and_records(tmp_path):
    record = run_experiment(_config(tmp_path))
    assert record.status == "ok" and record.loss == "gsil-logistic"
    assert record.hparams == {"beta": 1.0, "shift": 0.0}
    assert record.fingerprints.final_model != record.fingerprints.base_model
    assert {"mini/math", "mini/code", "mini/dialogue", "mini/safety"} <= set(record.benchmarks)
    for result in record.benchmarks.values():
        assert result["items"] and all("id" in i and "score" in i for i in result["items"])
    trajectory = record.trajectory
    assert trajectory and {"loss", "reward/real", "reward/generated"} <= set(trajectory[-1])
    assert set(record.timings) >= {
        "data_s",
        "base_model_s",
        "generation_s",
        "reference_s",
        "training_s",
        "evaluation_s",
    }
    saved = json.loads((Path(record.output_dir) / "result.json").read_text())
    assert saved["fingerprints"] == record.fingerprints.model_dump()
    assert (Path(record.model_path) / "config.json").exists()


def test_generation_and_reference_are_shared_between_losses(tmp_path):
    run_experiment(_config(tmp_path))
    generated, reference = _entries(tmp_path, "generated"), _entries(tmp_path, "reference")
    assert len(generated) == 1 and len(reference) == 1
    record = run_experiment(_config(tmp_path, "loss.name=spin", "loss.params={beta: 1.0}"))
    # Same base model, data and sampling: SPIN reuses both cached stages.
    assert _entries(tmp_path, "generated") == generated
    assert _entries(tmp_path, "reference") == reference
    assert record.timings["generation_s"] < 1.0
    # SFT needs neither stage and must not create entries.
    run_experiment(_config(tmp_path, "loss.name=sft", "loss.params={}"))
    assert _entries(tmp_path, "generated") == generated


def test_iterations_generate_with_the_previous_round(tmp_path):
    record = run_experiment(
        _config(tmp_path, "iterations=2", "loss.name=spin", "loss.params={beta: 1.0}")
    )
    assert len(record.rounds) == 2
    # Round 2 generates with (and is referenced against) round 1's model: new cache entries.
    assert len(_entries(tmp_path, "generated")) == 2
    assert len(_entries(tmp_path, "reference")) == 2
    assert (Path(record.output_dir) / "round-2" / "model" / "COMPLETE").exists()
    # Every round's model folder has a model card; only the final one has results.
    final = (Path(record.output_dir) / "round-2" / "model" / "README.md").read_text()
    first = (Path(record.output_dir) / "round-1" / "model" / "README.md").read_text()
    front = yaml.safe_load(final.split("---")[1])
    # The tiny model and the mini suite are not Hub names: no base_model, no datasets.
    assert front == {
        "library_name": "transformers",
        "tags": ["gsil-bench", "spin", "alignment-from-demonstrations"],
    }
    assert "round 2 of 2" in final and "| beta | 1.0 |" in final
    math = record.benchmarks["mini/math"]["metrics"]["accuracy"]
    assert f"| mini/math | accuracy | {math:.4f} |" in final
    assert "Not evaluated: only the final round is." in first and "round 1 of 2" in first


def test_rerun_of_a_finished_run_returns_its_record(tmp_path):
    first = run_experiment(_config(tmp_path))
    again = run_experiment(_config(tmp_path))
    assert again.fingerprints == first.fingerprints


def test_changed_config_in_same_folder_is_refused(tmp_path):
    from gsil_bench.errors import UserError

    run_experiment(_config(tmp_path, "eval.suites=[]"))
    with pytest.raises(UserError, match="different config"):
        run_experiment(_config(tmp_path, "eval.suites=[]", "optim.lr=0.5"))


def test_rejected_negatives_for_dpo_style_data(tmp_path):
    data = tmp_path / "prefs.jsonl"
    rows = [{"prompt": f"Say {i}", "chosen": f"{i}", "rejected": f"{i + 1}"} for i in range(40)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    record = run_experiment(
        _config(
            tmp_path,
            f"data.source={data}",
            "data.negatives=rejected",
            "loss.name=ipo",
            "loss.params={beta: 0.5}",
            "eval.suites=[]",
        )
    )
    assert record.data["demonstrations"] == 40
    assert _entries(tmp_path, "generated") == []  # negatives came from the data


def test_vllm_backend_without_vllm_is_one_clear_error(tmp_path):
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("vLLM is installed here; this checks the message users without it get")
    from gsil_bench.errors import UserError

    with pytest.raises(UserError, match=r"pip install 'gsil-bench\[vllm\]'"):
        run_experiment(_config(tmp_path, "generation.backend=vllm", "eval.suites=[]"))


def test_a_base_only_run_evaluates_the_base_model_per_seed(tmp_path):
    base_only = [f"output_dir={tmp_path}/base-{{seed}}", "iterations=0"]
    record = run_experiment(_config(tmp_path, *base_only))
    assert record.loss == "gsil-logistic" and record.rounds == [] and record.diagnostics == {}
    assert record.fingerprints.final_model == record.fingerprints.base_model
    assert Path(record.model_path).parent == tmp_path / "cache" / "base"
    assert set(record.timings) == {"data_s", "base_model_s", "evaluation_s", "total_s"}
    assert _entries(tmp_path, "generated") == _entries(tmp_path, "reference") == []
    assert record.benchmarks["mini/math"]["metrics"]["ref_logp"] < 0
    assert len(_entries(tmp_path, "base-eval")) == 1
    # The run seed chooses the base model (model.tiny.seed unset); model.tiny.seed pins it.
    seed1 = run_experiment(_config(tmp_path, *base_only, "seed=1"))
    assert seed1.fingerprints.base_model != record.fingerprints.base_model
    assert seed1.data["base_model"]["seed"] == 1 and len(_entries(tmp_path, "base-eval")) == 2
    pinned = run_experiment(
        _config(tmp_path, "output_dir=" + str(tmp_path / "pinned"), "iterations=0", "seed=1",
                "model.tiny.seed=0")
    )  # fmt: skip
    assert pinned.fingerprints.base_model == record.fingerprints.base_model
    assert pinned.benchmarks == record.benchmarks  # the cached evaluation, reused
    assert len(_entries(tmp_path, "base-eval")) == 2


def test_a_trained_run_reports_how_far_it_moved_from_its_base(tmp_path):
    base = run_experiment(_config(tmp_path, f"output_dir={tmp_path}/base", "iterations=0"))
    record = run_experiment(_config(tmp_path))
    assert len(_entries(tmp_path, "base-eval")) == 1  # the base row's evaluation, reused
    diagnostics, domains = record.diagnostics, list(record.benchmarks)
    for name in domains:  # share of items whose answer hash differs, recomputed here
        before = {i["id"]: i["answer_sha"] for i in base.benchmarks[name]["items"]}
        after = [i["answer_sha"] != before[i["id"]] for i in record.benchmarks[name]["items"]]
        assert diagnostics[f"moved_answers/{name}"] == pytest.approx(sum(after) / len(after))
    deltas = [
        record.benchmarks[n]["metrics"]["ref_logp"] - base.benchmarks[n]["metrics"]["ref_logp"]
        for n in domains
    ]
    assert diagnostics["heldout_logp_delta"] == pytest.approx(sum(deltas) / len(deltas))
    assert record.rounds[0]["pairs"] == 48  # n_align: one pair per demonstration
    share = record.rounds[0]["identical_negatives"] / 48
    assert diagnostics["identical_pairs"] == pytest.approx(share)
    sft = run_experiment(_config(tmp_path, "loss.name=sft", "loss.params={}"))
    assert "identical_pairs" not in sft.diagnostics and "heldout_logp_delta" in sft.diagnostics


def test_the_model_revision_reaches_every_load_of_the_base_model(tmp_path, monkeypatch):
    from gsil_bench.experiment import recipe

    seen = []
    original = recipe.load_pretrained

    def spy(name, **kwargs):
        seen.append(kwargs.get("revision"))
        return original(name, **kwargs)

    monkeypatch.setattr(recipe, "load_pretrained", spy)
    run_experiment(_config(tmp_path, "model.revision=abc123", "optim.max_steps=1"))
    # The run's own model and the base model's evaluation for the movement diagnostics.
    assert seen == ["abc123", "abc123"]


def test_the_reference_pass_shares_prompts_when_training_does(tmp_path, monkeypatch):
    import torch

    from gsil_bench.experiment import reference

    asked: list[bool] = []
    original = reference.reference_logps

    def spy(*args, **kwargs):
        asked.append(kwargs["prefix_sharing"])
        return original(*args, **kwargs)

    monkeypatch.setattr(reference, "reference_logps", spy)
    for sharing in ("false", "true"):
        run_experiment(
            _config(
                tmp_path,
                f"output_dir={tmp_path}/run-{sharing}",
                f"optim.prefix_sharing={sharing}",
                "optim.max_steps=1",
                "eval.suites=[]",
            )
        )
    assert asked == [False, True]
    entries = _entries(tmp_path, "reference")
    assert len(entries) == 2  # keyed apart: the sums agree to 1e-5, not to the bit
    unshared, shared = (
        torch.load(tmp_path / "cache" / "reference" / e / "logps.pt") for e in entries
    )
    for name in ("real", "generated"):
        torch.testing.assert_close(shared[name], unshared[name], atol=1e-4, rtol=1e-5)
