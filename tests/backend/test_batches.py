"""Tokenised pairs: texts far over the token budget are cut before tokenising, and the kept
tokens are those of the whole text."""

from __future__ import annotations

from typing import Any

from gsil_bench.backend.batches import CHARS_PER_TOKEN, fit_lengths, tokenize_pairs
from gsil_bench.backend.chat import encode_prompt, encode_response, render_prompt

QUESTION = [{"role": "user", "content": "Tom has 3 apples and buys 4 more. How many?"}]


class Recording:
    """A tokenizer that remembers the length of every text it was asked to tokenise."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self.lengths: list[int] = []

    def __call__(self, text: str, **kwargs: Any) -> Any:
        self.lengths.append(len(text))
        return self._tokenizer(text, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)


def untruncated(tokenizer, messages, response, *, max_prompt: int, max_length: int):
    """The length policy applied to the whole texts: what tokenize_pairs did before texts
    were cut (and must still do)."""
    prompt = encode_prompt(tokenizer, render_prompt(tokenizer, messages))
    return fit_lengths(
        prompt, encode_response(tokenizer, response), max_prompt=max_prompt, max_length=max_length
    )


def test_a_normal_record_is_tokenised_as_a_whole(tiny_tokenizer):
    response = "3 + 4 = 7. #### 7"
    examples, kept, report = tokenize_pairs(
        tiny_tokenizer, [QUESTION], [response], [response], max_prompt_tokens=64, max_length=128
    )
    p, real, p_cut, r_cut = untruncated(
        tiny_tokenizer, QUESTION, response, max_prompt=64, max_length=128
    )
    assert kept == [0] and not (p_cut or r_cut)
    assert (examples[0].prompt_ids, examples[0].real_ids) == (p, real)
    assert examples[0].real_ids[-1] == tiny_tokenizer.eos_token_id  # a whole response ends
    assert (report.prompts_truncated, report.responses_truncated) == (0, 0)


def test_a_huge_record_is_cut_before_tokenising_and_keeps_the_same_tokens(tiny_tokenizer):
    max_prompt, max_length = 16, 32
    response = "def add_two(x):\n    return x + 2\n" * 20_000  # 660,000 characters
    long_question = [{"role": "user", "content": "Red\nGreen\nBlue " * 5_000}]
    recording = Recording(tiny_tokenizer)
    examples, _, report = tokenize_pairs(
        recording,
        [long_question],
        [response],
        [response[::-1]],
        max_prompt_tokens=max_prompt,
        max_length=max_length,
    )
    # Nothing longer than the bound reached the tokenizer: 16 * 32 = 512 characters.
    assert max(recording.lengths) <= CHARS_PER_TOKEN * max_length == 512
    p, real, _, _ = untruncated(
        tiny_tokenizer, long_question, response, max_prompt=max_prompt, max_length=max_length
    )
    _, generated, _, _ = untruncated(
        tiny_tokenizer, long_question, response[::-1], max_prompt=max_prompt, max_length=max_length
    )
    assert examples[0].prompt_ids == p and len(p) == max_prompt
    assert examples[0].real_ids == real and len(real) == max_length - max_prompt
    assert examples[0].generated_ids == generated
    assert tiny_tokenizer.eos_token_id not in examples[0].real_ids
    assert (report.prompts_truncated, report.responses_truncated) == (1, 1)


class WordTokenizer:
    """One token per word, whatever its length: text with more than CHARS_PER_TOKEN
    characters per token, where the cut text has fewer tokens than the budget."""

    eos_token_id = 1
    bos_token_id = None
    chat_template = None

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [2 + len(word) for word in text.split()]}


def test_a_cut_response_never_ends_with_eos_and_counts_as_truncated():
    word = "x" * 39  # 40 characters per token with its space
    response = (word + " ") * 100  # 100 tokens, 4000 characters
    examples, _, report = tokenize_pairs(
        WordTokenizer(), [QUESTION], [response], None, max_prompt_tokens=4, max_length=10
    )
    # 160 characters kept: 4 whole words (the 5th begins at character 160); no EOS after them.
    assert examples[0].real_ids == [41, 41, 41, 41]
    assert report.responses_truncated == 1
    examples, _, report = tokenize_pairs(
        WordTokenizer(), [QUESTION], [word], None, max_prompt_tokens=4, max_length=10
    )
    assert examples[0].real_ids == [41, 1] and report.responses_truncated == 0


def test_reference_logps_come_back_in_input_order_whatever_the_batching(tiny_model, tiny_tokenizer):
    import torch

    from gsil_bench.backend.batches import TrainExample, collate, sequence_logps
    from gsil_bench.backend.reference import reference_logps

    model = tiny_model
    # Lengths deliberately out of order, so that sorting by length reorders the batches.
    examples = [
        TrainExample([5, 6, 7, 8, 9, 10], [11, 12], [13]),
        TrainExample([5], [11], [14, 15, 16, 17]),
        TrainExample([5, 6, 7], [11, 12, 13, 14, 15], [16, 17]),
        TrainExample([5, 6], [12], [13, 14]),
        TrainExample([5, 6, 7, 8], [11, 12, 13], [18]),
    ]
    pad = tiny_tokenizer.pad_token_id
    got = reference_logps(model, examples, with_generated=True, batch_size=2, pad_id=pad)
    # Each example alone, unpadded: the value sorting and padding must not change.
    for i, example in enumerate(examples):
        alone, _ = sequence_logps(model, collate([example], with_generated=True, pad_id=pad))
        assert torch.allclose(got["real"][i], alone[0], atol=1e-5), i
        assert torch.allclose(got["generated"][i], alone[1], atol=1e-5), i
