"""Judges that are local Hugging Face models, loaded from a path or a Hub name or given as objects.

:class:`HFJudge` writes judgements with greedy ``generate`` (no HTTP, no cache);
:func:`load_local_model` is shared with the reward-model judge.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gsil_bench.errors import UserError
from gsil_bench.evaluation.judging.base import Messages, register_judge


def load_local_model(model_or_path: Any, tokenizer: Any, auto_class: str) -> tuple[Any, Any, str]:
    """(model, tokenizer, name) from an object pair or a local path / Hub name."""
    import transformers

    if isinstance(model_or_path, str | Path):
        name = str(model_or_path)
        try:
            tok = tokenizer or transformers.AutoTokenizer.from_pretrained(name)
            model = getattr(transformers, auto_class).from_pretrained(name)
        except (OSError, ValueError) as err:
            raise UserError(f"judge model {name!r} could not be loaded: {err}") from None
        return model, tok, name
    if tokenizer is None:
        raise UserError("a judge given as a model object also needs its tokenizer")
    name = getattr(getattr(model_or_path, "config", None), "_name_or_path", "") or "in-memory"
    return model_or_path, tokenizer, name


@register_judge("hf")
class HFJudge:
    """A local causal LM writing judgements with greedy ``generate`` (no HTTP, no cache)."""

    def __init__(
        self,
        model_or_path: Any,
        tokenizer: Any = None,
        *,
        max_new_tokens: int = 512,
        batch_size: int = 8,
        progress: bool = True,
    ) -> None:
        self.model, self.tokenizer, self.name = load_local_model(
            model_or_path, tokenizer, "AutoModelForCausalLM"
        )
        self.max_new_tokens = max_new_tokens
        self._options: dict[str, Any] = {"max_new_tokens": max_new_tokens}
        self._options |= {"batch_size": batch_size, "progress": progress, "description": "judging"}

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "hf", "model": self.name, "max_new_tokens": self.max_new_tokens}

    def complete(self, prompts: Sequence[Messages]) -> list[str]:
        from gsil_bench.evaluation.chat_generation import answer_messages

        return answer_messages(self.model, self.tokenizer, prompts, **self._options)
