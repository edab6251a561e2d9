"""The mini suite's two config sections: the suite (``data.mini``) and the tiny model
(``model.tiny``).

A leaf on purpose: pydantic only, nothing else of gsil_bench, because ``gsil_bench.config``
imports it to build the run config and everything else of the mini suite imports the run config.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Domain = Literal["math", "code", "dialogue", "safety"]
DOMAINS: tuple[Domain, ...] = ("math", "code", "dialogue", "safety")


class MiniSuiteConfig(BaseModel):
    """Sizes and difficulty of the mini suite. Sizes are totals over ``domains``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    n_base: int = Field(default=6000, ge=0)
    n_align: int = Field(default=1000, ge=0)
    n_test: int = Field(default=2000, ge=0)
    domains: tuple[Domain, ...] = DOMAINS
    # Each domain has an alignment skill (multiplication, a set of function families, the
    # comma format, refusing harmful requests): the test and align splits hold ``skill_share``
    # of skill tasks, the base split only ``<domain>_base_skill_share``, so that aligning
    # teaches the base model something it rarely saw. The base shares differ because the
    # skills generalise differently: a handful of refusals teach the tiny model to refuse most
    # harmful requests, a few dozen products do not teach it to multiply. They are set so
    # that the base model scores between 0.25 and 0.75 in every domain. Safety's share (18
    # harmful requests of 1,500) leaves the base model refusing about a quarter of harmful
    # test requests (0.24-0.28 over seeds 0-3) rather than almost none (0.03-0.11 at 0.005):
    # aligning then strengthens a skill the model has, and how much a weak method picks up
    # depends less on whether one base model happened to pick up the first refusals.
    # ``heldout_share`` of the test items are worded with templates that no training split uses.
    skill_share: float = Field(default=0.5, ge=0.0, le=1.0)
    math_base_skill_share: float = Field(default=0.06, ge=0.0, le=1.0)
    code_base_skill_share: float = Field(default=0.03, ge=0.0, le=1.0)
    dialogue_base_skill_share: float = Field(default=0.08, ge=0.0, le=1.0)
    safety_base_skill_share: float = Field(default=0.012, ge=0.0, le=1.0)
    heldout_share: float = Field(default=0.25, ge=0.0, le=1.0)
    math_min_steps: int = Field(default=1, ge=1)
    math_max_steps: int = Field(default=2, ge=1)
    math_max_number: int = Field(default=10, ge=5, description="largest start value and operand")
    math_max_value: int = Field(default=50, ge=10, description="largest intermediate result")
    dialogue_min_items: int = Field(default=2, ge=2)
    dialogue_max_items: int = Field(default=3, ge=2, le=7)

    def base_skill_share(self, domain: Domain) -> float:
        """The share of skill tasks in ``domain``'s base split."""
        return float(getattr(self, f"{domain}_base_skill_share"))

    @model_validator(mode="after")
    def _check_ranges(self) -> MiniSuiteConfig:
        if not self.domains or len(set(self.domains)) != len(self.domains):
            raise ValueError("domains must be a non-empty list without repeats")
        if self.math_min_steps > self.math_max_steps:
            raise ValueError("math_min_steps must be <= math_max_steps")
        if self.dialogue_min_items > self.dialogue_max_items:
            raise ValueError("dialogue_min_items must be <= dialogue_max_items")
        return self


class TinyModelConfig(BaseModel):
    """The in-process base model: a tokenizer trained on the mini suite and a small Llama,
    first trained by SFT on the base split (it plays zephyr-7b-sft-full's role)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vocab_size: int = 512
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 384
    max_positions: int = 512
    base_steps: int = 1000
    base_decay_steps: int = 250  # linear decay at the end: an un-annealed base swamps any loss
    base_lr: float = 2e-3
    base_batch_size: int = 32
    # The seed of the base model's init and of its SFT data order. None follows the run seed
    # (``RunConfig.seed``), so that seeds vary the base model too and a study's intervals cover
    # it (issue 9); an int pins one base model for every run seed (0 is the historical one).
    seed: int | None = None

    def effective_seed(self, run_seed: int) -> int:
        """The seed the base model is built with for a run of seed ``run_seed``."""
        return run_seed if self.seed is None else self.seed
