"""MT-Bench answers at FastChat's per-category temperatures (or all greedy).

FastChat (lm-sys/FastChat at commit 0e6d3e4beaab66f4d3f93db72541a4abab8af28d) samples each
answer at ``temperature_config[category]`` (``fastchat/llm_judge/common.py``), 0.7 for a category
not in it, with ``do_sample=False`` below 1e-4 (``fastchat/llm_judge/gen_model_answer.py``).
Here the questions of one temperature are answered together, both turns, each turn's pass
seeded from the run's seed, the temperature and the turn: a rerun draws the same answers on the
same machine and batch size. FastChat's own draws (one question at a time after
``torch.manual_seed(0)``) are not reproduced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal, Protocol

from gsil_bench.errors import UserError


class Question(Protocol):
    """What sampling reads of an MT-Bench question (``mtbench.Question``)."""

    @property
    def category(self) -> str: ...

    @property
    def turns(self) -> tuple[str, ...]: ...


# fastchat/llm_judge/common.py ``temperature_config`` (FastChat 0e6d3e4), copied value for value.
FASTCHAT_TEMPERATURES = {
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
    "arena-hard-200": 0.0,
}
FASTCHAT_OTHER_TEMPERATURE = 0.7  # gen_model_answer.py: a category not in the table
GREEDY_BELOW = 1e-4  # gen_model_answer.py: do_sample=False below this temperature
TemperaturePolicy = Literal["fastchat", "greedy"]


def answer_temperature(category: str, policy: TemperaturePolicy = "fastchat") -> float:
    """The temperature a question of ``category`` is answered at (0.0: greedy)."""
    if policy == "greedy":
        return 0.0
    if policy != "fastchat":
        raise UserError(f"MT-Bench temperatures: {policy!r} is not fastchat or greedy")
    return FASTCHAT_TEMPERATURES.get(category, FASTCHAT_OTHER_TEMPERATURE)


def temperature_groups(
    questions: Sequence[Question], policy: TemperaturePolicy = "fastchat"
) -> dict[float, list[int]]:
    """Question indices per answer temperature, temperatures in order of first appearance."""
    groups: dict[float, list[int]] = {}
    for i, q in enumerate(questions):
        groups.setdefault(answer_temperature(q.category, policy), []).append(i)
    return groups


def sampling_seed(run_seed: int, temperature: float, turn: int) -> int:
    """The seed of one temperature group's turn: a function of the run's seed, the temperature
    and the turn only, so a group draws the same whichever other categories are answered."""
    text = f"mt-bench seed={run_seed} temperature={temperature!r} turn={turn}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


def answer_group(
    model,
    tokenizer,
    conversations_turns: Sequence[Sequence[str]],
    *,
    temperature: float,
    run_seed: int,
    max_new_tokens: int,
    batch_size: int,
    progress: bool,
) -> list[list[str]]:
    """Answer each conversation's turns at ``temperature``, turn ``t`` conditioned on the model's
    own earlier answers (as :func:`~gsil_bench.evaluation.chat_generation.answer_conversations`,
    which decodes greedily only); greedy below :data:`GREEDY_BELOW`, as FastChat."""
    from gsil_bench.backend.chat import Message, render_prompt
    from gsil_bench.backend.generation import generate

    sample = temperature >= GREEDY_BELOW
    histories: list[list[Message]] = [[] for _ in conversations_turns]
    answers: list[list[str]] = [[] for _ in conversations_turns]
    depth = max((len(turns) for turns in conversations_turns), default=0)
    for turn in range(depth):
        active = [i for i, turns in enumerate(conversations_turns) if len(turns) > turn]
        for i in active:
            histories[i].append({"role": "user", "content": conversations_turns[i][turn]})
        replies = generate(
            model,
            tokenizer,
            [render_prompt(tokenizer, histories[i]) for i in active],
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            do_sample=sample,
            temperature=temperature if sample else 1.0,
            seed=sampling_seed(run_seed, temperature, turn + 1),
            description=f"mt-bench t={temperature:g} turn {turn + 1}/{depth}",
            progress=progress,
        )
        for i, reply in zip(active, replies, strict=True):
            answers[i].append(reply.strip())
            histories[i].append({"role": "assistant", "content": reply.strip()})
    return answers


def answer_questions(
    model,
    tokenizer,
    questions: Sequence[Question],
    *,
    policy: TemperaturePolicy = "fastchat",
    run_seed: int = 0,
    max_new_tokens: int,
    batch_size: int = 8,
    progress: bool = True,
) -> list[list[str]]:
    """Both turns of every question, one generation pass per temperature group."""
    answers: list[list[str]] = [[] for _ in questions]
    for temperature, indices in temperature_groups(questions, policy).items():
        replies = answer_group(
            model,
            tokenizer,
            [list(questions[i].turns[:2]) for i in indices],
            temperature=temperature,
            run_seed=run_seed,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            progress=progress,
        )
        for i, reply in zip(indices, replies, strict=True):
            answers[i] = reply
    return answers
