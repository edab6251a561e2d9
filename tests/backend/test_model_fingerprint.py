"""The weights fingerprint that keys the generation, reference and evaluation caches."""

from __future__ import annotations

import torch

from gsil_bench.backend.model import fingerprint_model


def test_one_ulp_anywhere_changes_the_fingerprint(tiny_model):
    before = fingerprint_model(tiny_model)
    assert fingerprint_model(tiny_model) == before  # deterministic
    # A weight off the strided sample, nudged to the next float: a float sum of a tensor of
    # thousands of values rounds such a change away; the integer checksum cannot.
    weight = tiny_model.model.embed_tokens.weight  # 300 x 32: the sample takes every 2nd value
    assert weight.numel() // 4096 == 2
    with torch.no_grad():
        flat = weight.view(-1)
        flat[1] = torch.nextafter(flat[1], torch.tensor(float("inf")))
    assert fingerprint_model(tiny_model) != before


def test_the_fingerprint_does_not_depend_on_the_thread_count(tiny_model):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fingerprint_model(tiny_model)
        torch.set_num_threads(2)
        two = fingerprint_model(tiny_model)
    finally:
        torch.set_num_threads(threads)
    assert one == two
