"""``token_noise``: corrupted words at the asked rate, whitespace and layout kept."""

from __future__ import annotations

import random

from gsil_bench.data.quality.token_noise import noisy_text
from gsil_bench.data.transforms import DataQualityConfig


def test_token_noise_corrupts_words_but_keeps_layout(run, make_demos, changed):
    demos = make_demos()
    out, report = run(DataQualityConfig(token_noise=0.5, noise_rate=0.3), demos)
    noisy = changed(demos, out)
    assert report["noised"] == 10 and len(noisy) <= 10 and report["noised_words"] >= 10
    tagged = [d.id for d in out if d.meta.get("transforms") == ["token_noise"]]
    assert len(tagged) == 10 and set(noisy) <= set(tagged)
    assert all(d.response.strip() for d in out)


def test_noisy_text_rate_and_whitespace():
    rng = random.Random(0)
    vocabulary = ["alpha", "beta", "gamma"]
    text = "def f(x):\n    return x + 1"
    noisy, hits = noisy_text(text, 0.0001, vocabulary, rng)
    assert hits == 1 and noisy != text  # a noisy response has at least one corruption
    assert noisy.count("\n") == 1
    words = " ".join(f"w{i}" for i in range(1000))
    _, hits = noisy_text(words, 0.1, vocabulary, random.Random(1))
    assert 60 < hits < 140
    assert noisy_text("x", 1.0, ["y"], random.Random(0))[0].strip()
