"""Prompt rendering and prompt/response tokenisation shared by training, generation and eval."""

from __future__ import annotations

from collections.abc import Sequence

Message = dict[str, str]


def render_prompt(tokenizer, messages: Sequence[Message]) -> str:
    """The prompt text the model continues: the chat template with the generation prompt.

    Tokenizers without a chat template (base models) get the turns joined plainly.
    """
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=False
        )
    return "\n\n".join(m["content"] for m in messages) + "\n\n"


# The template both releases generate negatives from (GSIL gsil/generate.py, SPIN
# spin/generate.py): no chat template, the instruction then an empty response.
RELEASE_TEMPLATE = "### Instruction: {prompt}\n\n### Response: "


def render_release_prompt(messages: Sequence[Message]) -> str:
    """The releases' generation prompt for ``messages``: their last user message (the
    instruction the response answers) in :data:`RELEASE_TEMPLATE`."""
    users = [m["content"] for m in messages if m["role"] == "user"]
    return RELEASE_TEMPLATE.format(prompt=users[-1] if users else "")


def encode_prompt(tokenizer, prompt_text: str) -> list[int]:
    ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    # Templates of real chat models already start with BOS; plain prompts get one if defined.
    if (
        bos is not None
        and (not ids or ids[0] != bos)
        and not getattr(tokenizer, "chat_template", None)
    ):
        ids = [bos, *ids]
    return ids


def encode_response(tokenizer, response: str) -> list[int]:
    """Response ids followed by EOS. Tokenised apart from the prompt, as in the DPO reference
    code, so that the prompt/response boundary is exact and the mask is never off by one."""
    ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        ids = [*ids, tokenizer.eos_token_id]
    return ids
