"""The tiny tokenizer: one token per digit, and a chat template ending turns with EOS."""

from __future__ import annotations


def test_digits_are_single_tokens(tiny_tokenizer):
    pieces = tiny_tokenizer.tokenize("12345")
    assert [tiny_tokenizer.convert_tokens_to_string([p]) for p in pieces] == list("12345")


def test_chat_template(tiny_tokenizer):
    text = tiny_tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|user|>\nHi<eos>\n<|assistant|>\n"


def test_model_size_follows_the_arguments(tiny_model, tiny_tokenizer):
    assert tiny_model.config.vocab_size == len(tiny_tokenizer)
    assert tiny_model.config.num_hidden_layers == 2 and tiny_model.config.hidden_size == 32
