"""A local sequence-classification reward model as a judge: it scores replies, it has no positions.

Used by HH safety (higher reward wins); built from the spec ``reward:PATH_OR_NAME``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gsil_bench.errors import UserError
from gsil_bench.evaluation.judging.base import Messages, register_judge
from gsil_bench.evaluation.judging.local import load_local_model


@register_judge("reward")
class RewardModelJudge:
    """A local sequence-classification reward model scoring (conversation, response) pairs.

    Conversations are rendered with the tokenizer's chat template when it has one, otherwise in
    the ``\\n\\nHuman: ... \\n\\nAssistant: ...`` form HH reward models are trained on.
    """

    def __init__(
        self,
        model_or_path: Any,
        tokenizer: Any = None,
        *,
        label: int | None = None,
        batch_size: int = 8,
        max_length: int = 2048,
    ) -> None:
        self.model, self.tokenizer, self.name = load_local_model(
            model_or_path, tokenizer, "AutoModelForSequenceClassification"
        )
        num_labels = int(getattr(self.model.config, "num_labels", 1))
        if label is None and num_labels != 1:
            raise UserError(
                f"reward model {self.name!r} has {num_labels} labels; pass label=INDEX of the "
                "class whose logit is the reward"
            )
        self.label = 0 if label is None else label
        self.batch_size = batch_size
        self.max_length = max_length

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "reward", "model": self.name, "label": self.label}

    def _text(self, messages: Messages, response: str) -> str:
        conversation = [*messages, {"role": "assistant", "content": response}]
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(conversation, tokenize=False)
        names = {"user": "Human", "assistant": "Assistant"}
        return "".join(
            f"\n\n{names.get(m['role'], m['role'].title())}: {m['content']}" for m in conversation
        )

    def score(self, prompts: Sequence[Messages], responses: Sequence[str]) -> list[float]:
        import torch

        texts = [self._text(p, r) for p, r in zip(prompts, responses, strict=True)]
        unique = list(dict.fromkeys(texts))  # identical texts get identical rewards, once
        tok = self.tokenizer
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        # Right padding keeps every text's positions at 0..n (left padding would shift them
        # without position ids); cutting from the left keeps the response.
        saved = tok.padding_side, tok.truncation_side
        tok.padding_side, tok.truncation_side = "right", "left"
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()
        rewards: dict[str, float] = {}
        try:
            with torch.no_grad():
                for start in range(0, len(unique), self.batch_size):
                    chunk = unique[start : start + self.batch_size]
                    batch = tok(
                        chunk,
                        return_tensors="pt",
                        padding=True,
                        truncation=True,
                        max_length=self.max_length,
                        add_special_tokens=False,
                    ).to(device)
                    logits = self.model(**batch).logits[:, self.label].float().cpu().tolist()
                    rewards.update(zip(chunk, logits, strict=True))
        finally:
            tok.padding_side, tok.truncation_side = saved
            self.model.train(was_training)
        return [rewards[t] for t in texts]
