"""Model cards: Hub-format front matter and what made the model, from the run's record."""

from __future__ import annotations

import yaml

from gsil_bench.config import RunConfig
from gsil_bench.experiment.card import model_card
from gsil_bench.record import RunRecord


def test_hub_names_go_to_the_front_matter_and_transforms_to_the_body():
    config = RunConfig.model_validate(
        {
            "model": {"name": "Qwen/Qwen2.5-0.5B-Instruct"},
            "data": {"source": "HuggingFaceH4/ultrachat_200k", "quality": {"swap_rejected": 0.5}},
            "loss": {"name": "gsil-hinge", "params": {"beta": 0.5}},
            "iterations": 1,
        }
    )
    record = RunRecord(
        run_id="r",
        loss="gsil-hinge",
        hparams={"beta": 0.5, "shift": 0.0},
        seed=0,
        data={"demonstrations": 1234},
        benchmarks={"gsm8k": {"metrics": {"exact_match": 0.25}, "items": [{}, {}, {}, {}]}},
        versions={"gsil-bench": "0.1.0"},
    )
    card = model_card(record, config, 1)
    front = yaml.safe_load(card.split("---")[1])
    assert front["base_model"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert front["datasets"] == ["HuggingFaceH4/ultrachat_200k"]
    assert front["tags"][:2] == ["gsil-bench", "gsil-hinge"]
    assert "| data transforms | swap_rejected=0.5 |" in card
    assert "1234 demonstrations" in card and "| shift | 0.0 |" in card
    assert "| gsm8k | exact_match | 0.2500 | 4 |" in card
    assert "gsil-bench 0.1.0" in card
    # The full config, as YAML, closes the card.
    config_yaml = card.split("```yaml\n")[1].split("```")[0]
    assert yaml.safe_load(config_yaml)["loss"] == {"name": "gsil-hinge", "params": {"beta": 0.5}}
