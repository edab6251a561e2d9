"""Multi-turn answering for dialogue benchmarks (MT-Bench, the mini suite's dialogue domain).

Turn ``t`` of every conversation is generated in one batched pass, conditioned on the model's
own answers to turns ``1..t-1`` -- never on reference answers -- as MT-Bench prescribes.
"""

from __future__ import annotations

from collections.abc import Sequence

from gsil_bench.backend.chat import Message, render_prompt
from gsil_bench.backend.generation import generate


def answer_messages(
    model,
    tokenizer,
    conversations: Sequence[Sequence[Message]],
    *,
    max_new_tokens: int = 1024,
    batch_size: int = 8,
    progress: bool = True,
    description: str = "generating",
) -> list[str]:
    """One greedy assistant reply per chat conversation (chat template applied), stripped."""
    prompts = [render_prompt(tokenizer, messages) for messages in conversations]
    outputs = generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        description=description,
        progress=progress,
    )
    return [text.strip() for text in outputs]


def answer_conversations(
    model,
    tokenizer,
    conversations_turns: Sequence[Sequence[str]],
    *,
    max_new_tokens: int = 1024,
    batch_size: int = 8,
    progress: bool = True,
    system: str | None = None,
) -> list[list[str]]:
    """Answer each conversation's user turns in order; returns the answers per conversation.

    Conversations may have different numbers of turns; ``system`` is prepended when given.
    """
    answers: list[list[str]] = [[] for _ in conversations_turns]
    depth = max((len(turns) for turns in conversations_turns), default=0)
    for turn in range(depth):
        active = [i for i, turns in enumerate(conversations_turns) if len(turns) > turn]
        histories: list[list[Message]] = []
        for i in active:
            messages: list[Message] = [{"role": "system", "content": system}] if system else []
            for question, answer in zip(conversations_turns[i][:turn], answers[i], strict=True):
                messages += [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": answer},
                ]
            messages.append({"role": "user", "content": conversations_turns[i][turn]})
            histories.append(messages)
        replies = answer_messages(
            model,
            tokenizer,
            histories,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            progress=progress,
            description=f"generating turn {turn + 1}/{depth}",
        )
        for i, reply in zip(active, replies, strict=True):
            answers[i].append(reply)
    return answers
