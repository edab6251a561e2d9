"""benchmarks/bench_vs_trl.py: its token arithmetic by hand, and its --quick smoke run (the
gsil-bench side always, TRL's side where TRL is installed) with every reported field checked
against the formulas it claims."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "bench_vs_trl.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_vs_trl", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load()


class CharTokenizer:
    """One token per character (its code point); ``merge`` characters pairs become one token
    (code 1000), as BPE merges across a prompt/response boundary."""

    eos_token = "$"

    def __init__(self, merge: str | None = None):
        self.merge = merge

    def __call__(self, text: str) -> dict[str, list[int]]:
        ids, i = [], 0
        while i < len(text):
            if self.merge and text.startswith(self.merge, i):
                ids.append(1000)
                i += len(self.merge)
            else:
                ids.append(ord(text[i]))
                i += 1
        return {"input_ids": ids}


def test_trl_style_ids_split_at_the_prompt():
    # "ab" + "c$" and "ab" + "de$": a=97, b=98, c=99, d=100, e=101, $=36.
    prompt, chosen, rejected = bench.trl_style_ids(CharTokenizer(), "ab", "c", "de")
    assert prompt == [97, 98]
    assert chosen == [99, 36]
    assert rejected == [100, 101, 36]


def test_trl_style_ids_cut_where_tokens_merge_across_the_boundary():
    # "b"+"c" merges into one token in "abc$": the prompt keeps "a" only, and both responses
    # start where prompt and prompt+response part (TRL's common-prefix rule).
    prompt, chosen, rejected = bench.trl_style_ids(CharTokenizer(merge="bc"), "ab", "c", "d")
    assert prompt == [97]
    assert chosen == [1000, 36]
    assert rejected == [98, 100, 36]


def test_tokens_fed_counts_the_prompt_twice():
    # (2 * 3 + 2 + 1) + (2 * 1 + 4 + 4) = 9 + 10 = 19
    assert bench.tokens_fed([([1, 2, 3], [4, 5], [6]), ([1], [2, 3, 4, 5], [6, 7, 8, 9])]) == 19


def test_common_prefix():
    assert bench.common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert bench.common_prefix([], [1]) == 0
    assert bench.common_prefix([1, 2], [1, 2, 3]) == 2


def test_check_same_work_stops_on_different_counts():
    same = {"tool": "trl", "tokens": 10, "tokens_by_tool": 10}
    bench.check_same_work({"small": {"trl": [same], "gsil": [{**same, "tool": "gsil"}]}})
    # gsil-bench's own count disagrees with the data's.
    off = {"tool": "gsil", "tokens": 10, "tokens_by_tool": 9}
    with pytest.raises(SystemExit, match="small: the tools did not feed the same tokens"):
        bench.check_same_work({"small": {"trl": [same], "gsil": [off]}})
    # Both tools agree with themselves but fed different data.
    other = {"tool": "gsil", "tokens": 11, "tokens_by_tool": 11}
    with pytest.raises(SystemExit, match="did not feed the same tokens"):
        bench.check_same_work({"small": {"trl": [same], "gsil": [other]}})


def test_unknown_tool_is_one_line():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--tools", "gsil,tlr"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2
    assert "--tools: unknown 'tlr'; expected one of trl, gsil" in out.stderr


# The quick model by hand: hidden 64, 2 layers, intermediate 192, vocabulary 512, tied
# embeddings. Embedding 512 * 64 = 32,768; per layer q, k, v, o 4 * 64 * 64 = 16,384, MLP
# 3 * 64 * 192 = 36,864, two norms 128: 53,376; two layers 106,752; final norm 64.
QUICK_PARAMS = 32_768 + 2 * 53_376 + 64


def _quick(tmp_path: Path, tools: str) -> dict:
    out_file = tmp_path / "quick.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--tools", tools]
    out = subprocess.run(
        [*command, "--json", str(out_file)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out_file.read_text())


def _check_tool(tool: dict, params: int, gflops: float) -> None:
    median, (run,) = tool["median"], tool["runs"]  # --quick: one repeat
    # 64 pairs in batches of 16: 4 optimizer steps, every pair once.
    assert run["steps"] == 4
    # The tool's own count (train()'s TrainResult.tokens, TRL's num_tokens metric) is the
    # prompt+chosen+rejected count of the data.
    assert run["tokens"] == run["tokens_by_tool"] > 0
    assert run["tokens_per_s"] == pytest.approx(run["tokens"] / run["train_s"])
    assert median["roofline_fraction"] == pytest.approx(
        median["tokens_per_s"] * 6 * params / (gflops * 1e9)
    )
    assert 0 < median["padded_fraction"] < 1
    assert run["reference_s"] > 0
    assert run["peak_rss_mb"] > 50  # Python and torch alone are more than that
    # Untrained, the DPO-sigmoid loss is about log 2 = 0.693 (policy == reference at first).
    assert run["mean_loss"] == pytest.approx(0.693, abs=0.05)


def test_quick_gsil_side(tmp_path):
    report = _quick(tmp_path, "gsil")
    size = report["sizes"]["quick"]
    assert size["params"] == QUICK_PARAMS
    gflops = max(report["matmul"]["gflops_before"], report["matmul"]["gflops_after"])
    _check_tool(size["tools"]["gsil"], QUICK_PARAMS, gflops)
    assert "ratios_gsil_over_trl" not in size
    assert report["setup"] == {"pairs": 64, "batch": 16, "repeats": 1}


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("trl") is None,
    reason="TRL is not installed (pip install -e '.[bench]')",
)
def test_quick_both_sides(tmp_path):
    report = _quick(tmp_path, "trl,gsil")
    size = report["sizes"]["quick"]
    gflops = max(report["matmul"]["gflops_before"], report["matmul"]["gflops_after"])
    tools = size["tools"]
    for tool in ("trl", "gsil"):
        _check_tool(tools[tool], QUICK_PARAMS, gflops)
    # The same work: TRL's tokenised dataset and gsil-bench's train() count the same tokens.
    assert tools["trl"]["median"]["tokens"] == tools["gsil"]["median"]["tokens"]
    for key, ratio in size["ratios_gsil_over_trl"].items():
        assert ratio == pytest.approx(tools["gsil"]["median"][key] / tools["trl"]["median"][key])
