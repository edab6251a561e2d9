"""lm-eval bridge, offline: local YAML tasks over a tiny jsonl file, the tiny model in memory."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest
import torch

from gsil_bench.errors import UserError
from gsil_bench.evaluation.lmeval_bridge import require_lm_eval, results_to_benchmarks, run_lmeval

# The judge server helper sits next to these tests; pytest runs in importlib mode.
sys.path.insert(0, str(Path(__file__).parent))
from judge_server import tiny_chat_model  # noqa: E402

DOCS = [
    {"question": "2 + 2 =", "choices": ["4", "5", "22"], "label": 0, "answer": "4"},
    {"question": "The sky is", "choices": ["green", "blue"], "label": 1, "answer": "blue"},
    {"question": "3 + 4 =", "choices": ["34", "7", "1"], "label": 1, "answer": "7"},
    {"question": "Water is", "choices": ["wet", "dry"], "label": 0, "answer": "wet"},
]


@pytest.fixture
def offline(monkeypatch):
    """Nothing may reach the Hub: environment and the already-imported libraries' flags."""
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(name, "1")
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)


@pytest.fixture
def task_dir(tmp_path) -> Path:
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    common = (
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\n"
        'doc_to_text: "Q: {{question}}\\nA:"\n'
    )
    (tasks / "mc.yaml").write_text(
        "task: gsil_tiny_mc\n"
        + common
        + "output_type: multiple_choice\n"
        + 'doc_to_choice: "{{choices}}"\n'
        + "doc_to_target: label\n"
        + "metric_list:\n  - metric: acc\n  - metric: acc_norm\n"
    )
    (tasks / "gen.yaml").write_text(
        "task: gsil_tiny_gen\n"
        + common
        + "output_type: generate_until\n"
        + "doc_to_target: answer\n"
        + 'generation_kwargs:\n  until: ["\\n"]\n  max_gen_toks: 4\n  do_sample: false\n'
        + "metric_list:\n  - metric: exact_match\n"
    )
    return tasks


def test_local_yaml_tasks_with_model_in_memory(task_dir, offline):
    pytest.importorskip("lm_eval", reason="lm-eval not installed (extra 'lm-eval')")
    model, tokenizer = tiny_chat_model()
    torch.manual_seed(123)
    random.seed(123)
    results = run_lmeval(
        model,
        tokenizer,
        ["gsil_tiny_mc", "gsil_tiny_gen"],
        include_path=task_dir,
        include_defaults=False,
        batch_size=2,
        bootstrap_iters=0,
    )
    # The caller's random streams are left as they were (lm-eval reseeds them globally).
    assert random.random() == random.Random(123).random()
    expected = torch.rand(3, generator=torch.Generator().manual_seed(123))
    assert torch.equal(torch.rand(3), expected)
    by_name = {r.benchmark: r for r in results}
    assert set(by_name) == {"lm-eval/gsil_tiny_mc", "lm-eval/gsil_tiny_gen"}

    mc = by_name["lm-eval/gsil_tiny_mc"]
    assert list(mc.metrics)[:2] == ["acc", "acc_norm"] and mc.primary == "acc"
    assert [item["id"] for item in mc.items] == ["0", "1", "2", "3"]
    assert all(item["score"] in (0.0, 1.0) for item in mc.items)
    assert mc.metrics["acc"] == pytest.approx(sum(i["score"] for i in mc.items) / 4)
    assert mc.details["n_samples"]["effective"] == 4

    gen = by_name["lm-eval/gsil_tiny_gen"]
    assert gen.primary == "exact_match"
    assert all(isinstance(item["response"], str) for item in gen.items)
    assert [item["target"] for item in gen.items] == [d["answer"] for d in DOCS]
    assert gen.metrics["exact_match"] == pytest.approx(sum(i["score"] for i in gen.items) / 4)
    json.dumps([r.to_dict() for r in results])


def test_unknown_task_is_a_user_error(task_dir, offline):
    pytest.importorskip("lm_eval", reason="lm-eval not installed (extra 'lm-eval')")
    with pytest.raises(UserError, match="no_such_task.*not found"):
        run_lmeval(None, None, "no_such_task", include_path=task_dir, include_defaults=False)
    with pytest.raises(UserError, match="include_path .* not found"):
        run_lmeval(None, None, "x", include_path=task_dir / "missing")


def test_missing_lm_eval_tells_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # makes `import lm_eval` fail
    with pytest.raises(UserError, match=r"pip install 'gsil-bench\[lm-eval\]'"):
        require_lm_eval()


def test_results_conversion_names_filters_and_stderr():
    output = {
        "results": {
            "t": {
                "alias": "t",
                "exact_match,strict-match": 0.5,
                "exact_match_stderr,strict-match": 0.1,
                "exact_match,flexible-extract": 1.0,
                "exact_match_stderr,flexible-extract": "N/A",
            }
        },
        "samples": {
            "t": [
                {"doc_id": 1, "filter": "strict-match", "metrics": ["exact_match"],
                 "exact_match": 0.0, "target": "2", "filtered_resps": ["1"]},
                {"doc_id": 1, "filter": "flexible-extract", "metrics": ["exact_match"],
                 "exact_match": 1.0, "target": "2", "filtered_resps": ["2"]},
                {"doc_id": 0, "filter": "strict-match", "metrics": ["exact_match"],
                 "exact_match": 1.0, "target": "3", "filtered_resps": ["3"]},
            ]
        },
    }  # fmt: skip
    (result,) = results_to_benchmarks(output)
    assert list(result.metrics) == ["exact_match/strict-match", "exact_match/flexible-extract"]
    assert result.details["stderr"] == {
        "exact_match/strict-match": 0.1,
        "exact_match/flexible-extract": None,
    }
    assert [i["id"] for i in result.items] == ["0", "1"]
    assert result.items[1]["score"] == 0.0
    assert result.items[1]["exact_match/flexible-extract"] == 1.0
    assert result.items[1]["response/flexible-extract"] == "2"
