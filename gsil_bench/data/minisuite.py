"""The mini suite: four small programmatic domains mirroring the GSIL paper's benchmarks.

math ~ GSM8K, code ~ HumanEval, dialogue ~ MT-Bench, safety ~ Anthropic-HH, all generated
offline from a seed and short enough that a 0.9M-parameter model learns them on a laptop CPU.
The tiny base model trains on ``base``, the losses align on ``align``, ``test`` is scored by
``gsil_bench.evaluation.mini.score_items``.

Sizes (``n_base``, ``n_align``, ``n_test``) are totals over the chosen domains, split evenly
(the first domains take the remainder). Per domain the tasks are drawn once, all distinct,
and cut in order into test, align and base: no prompt (no first user turn, no code function)
is in two splits, every split has the same mix of task kinds, and changing ``n_base`` leaves
the test items as they were. Every demonstration also carries a flawed ``rejected`` response,
so the ``swap_rejected`` data-quality ablation works here as on preference data.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gsil_bench.data import minisuite_code, minisuite_dialogue, minisuite_math, minisuite_safety
from gsil_bench.data.minisuite_task import Task
from gsil_bench.data.records import Demonstration, Message, demonstrations_fingerprint

Domain = Literal["math", "code", "dialogue", "safety"]
DOMAINS: tuple[Domain, ...] = ("math", "code", "dialogue", "safety")


class MiniSuiteConfig(BaseModel):
    """Sizes and difficulty of the mini suite. Sizes are totals over ``domains``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    n_base: int = Field(default=8000, ge=0)
    n_align: int = Field(default=1000, ge=0)
    n_test: int = Field(default=200, ge=0)
    domains: tuple[Domain, ...] = DOMAINS
    math_min_steps: int = Field(default=2, ge=1)
    math_max_steps: int = Field(default=3, ge=1)
    math_max_number: int = Field(default=20, ge=2, description="largest start value and operand")
    math_max_value: int = Field(default=100, ge=4, description="largest intermediate result")
    dialogue_min_items: int = Field(default=2, ge=2)
    dialogue_max_items: int = Field(default=5, ge=2, le=7)
    safety_harmful_fraction: float = Field(default=0.5, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check_ranges(self) -> MiniSuiteConfig:
        if not self.domains or len(set(self.domains)) != len(self.domains):
            raise ValueError("domains must be a non-empty list without repeats")
        if self.math_min_steps > self.math_max_steps:
            raise ValueError("math_min_steps must be <= math_max_steps")
        if self.dialogue_min_items > self.dialogue_max_items:
            raise ValueError("dialogue_min_items must be <= dialogue_max_items")
        return self


@dataclass
class TestItem:
    """One test question. ``turns`` are the user turns (dialogue has two, the second asked
    after the model's own first answer); ``reference`` is a correct final-turn answer and
    ``turn_references`` one per turn; ``check`` is what scoring needs:
    math ``{"answer": int}``, code ``{"entry_point", "tests"}``, dialogue
    ``{"constraints": [[...] per turn]}``, safety ``{"harmful": bool}``."""

    __test__ = False  # not a pytest test class, despite the name

    id: str
    domain: str
    turns: list[str]
    reference: str
    check: dict[str, Any]
    turn_references: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def messages(self, answers: Sequence[str]) -> list[Message]:
        """The conversation to send for turn ``len(answers)``, given the model's earlier answers."""
        turn = len(answers)
        if turn >= len(self.turns):
            raise ValueError(f"{self.id}: has {len(self.turns)} turns, got {turn} answers")
        messages: list[Message] = []
        for question, answer in zip(self.turns, answers, strict=False):
            messages += [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
        return [*messages, {"role": "user", "content": self.turns[turn]}]


@dataclass
class MiniSuite:
    config: MiniSuiteConfig
    base: list[Demonstration]
    align: list[Demonstration]
    test: list[TestItem]

    def fingerprint(self) -> str:
        """sha256 of the content (demonstrations and test items), not of the config."""
        digest = hashlib.sha256()
        digest.update(demonstrations_fingerprint(self.base).encode())
        digest.update(demonstrations_fingerprint(self.align).encode())
        for item in self.test:
            digest.update(json.dumps(asdict(item), sort_keys=True).encode())
        return digest.hexdigest()


def build_suite(config: MiniSuiteConfig | None = None) -> MiniSuite:
    """Generate the suite; the same config always gives the same suite (and fingerprint)."""
    config = config or MiniSuiteConfig()
    sizes = {
        name: _shares(getattr(config, f"n_{name}"), len(config.domains))
        for name in ("base", "align", "test")
    }
    base: list[Demonstration] = []
    align: list[Demonstration] = []
    test: list[TestItem] = []
    for position, domain in enumerate(config.domains):
        n_test, n_align, n_base = (sizes[s][position] for s in ("test", "align", "base"))
        tasks = _generate(domain, config, n_test + n_align + n_base)
        test += [_test_item(domain, i, task) for i, task in enumerate(tasks[:n_test])]
        align += _demonstrations(domain, "align", tasks[n_test : n_test + n_align])
        base += _demonstrations(domain, "base", tasks[n_test + n_align :])
    # Mix the domains so that every training batch sees all of them.
    shuffler = random.Random(f"gsil-bench-mini:{config.seed}:shuffle")
    shuffler.shuffle(base)
    shuffler.shuffle(align)
    return MiniSuite(config, base, align, test)


def all_text(suite: MiniSuite) -> Iterator[str]:
    """Text to train the tokenizer on: training prompts, responses (and flawed responses,
    which the swap_rejected ablation trains on) and test questions, never test answers."""
    for demo in [*suite.base, *suite.align]:
        yield from (message["content"] for message in demo.prompt)
        yield demo.response
        if demo.rejected is not None:
            yield demo.rejected
    for item in suite.test:
        yield from item.turns


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _generate(domain: str, config: MiniSuiteConfig, n: int) -> list[Task]:
    # One random stream per domain, so that adding a domain leaves the others unchanged.
    rng = random.Random(f"gsil-bench-mini:{config.seed}:{domain}")
    if domain == "math":
        return minisuite_math.generate(
            rng,
            n,
            min_steps=config.math_min_steps,
            max_steps=config.math_max_steps,
            max_number=config.math_max_number,
            max_value=config.math_max_value,
        )
    if domain == "code":
        return minisuite_code.generate(rng, n)
    if domain == "dialogue":
        return minisuite_dialogue.generate(
            rng, n, min_items=config.dialogue_min_items, max_items=config.dialogue_max_items
        )
    return minisuite_safety.generate(rng, n, harmful_fraction=config.safety_harmful_fraction)


def _test_item(domain: str, index: int, task: Task) -> TestItem:
    return TestItem(
        id=f"mini-{domain}-{index:04d}",
        domain=domain,
        turns=list(task.turns),
        reference=task.references[-1],
        check=task.check,
        turn_references=list(task.references),
        meta=dict(task.meta),
    )


def _demonstrations(domain: str, split: str, tasks: list[Task]) -> list[Demonstration]:
    """One demonstration per task. A two-turn task alternates between its first turn and its
    second (the first answered by the reference), so both skills get trained."""
    demos = []
    for index, task in enumerate(tasks):
        turn = (len(task.turns) - 1) * (index % 2)
        prompt: list[Message] = []
        for question, answer in zip(task.turns[:turn], task.references[:turn], strict=True):
            prompt += [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
        prompt.append({"role": "user", "content": task.turns[turn]})
        meta = {"domain": domain, "split": split, "source": "minisuite", **task.meta}
        demo_id = f"mini-{domain}-{split}-{index:05d}"
        demos.append(
            Demonstration(prompt, task.references[turn], task.rejected[turn], demo_id, meta)
        )
    return demos
