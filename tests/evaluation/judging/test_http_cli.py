"""A judge that times out, through the real entry point (``gsil_bench.cli.app:main``): one clear
line naming the judge and what failed, exit code 2, and the judgements that did arrive stay in
the cache, so the next run asks the judge only for the rest."""

from __future__ import annotations

import json
import sys
import time
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gsil_bench.cli.app import main
from gsil_bench.evaluation.benchmarks import mtbench

sys.path.insert(0, str(Path(__file__).parents[1]))
from judge_server import DATA, JudgeServer, deterministic_reply, tiny_chat_model  # noqa: E402

MT = DATA / "mt-bench"
TURN_2 = "<|The Start of Assistant A's Conversation with User|>"  # multi-turn judge prompts


def run_main(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """(exit code, stdout and stderr) of ``gsil-bench ARGS`` as a user runs it."""
    monkeypatch.setattr(sys, "argv", ["gsil-bench", *args])
    with CliRunner().isolation() as (_, _, output):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        sys.stdout.flush()
        sys.stderr.flush()
        return code, output.getvalue().decode("utf-8", errors="replace")


@pytest.mark.skipif(not MT.is_dir(), reason=f"MT-Bench data not at {MT}")
def test_a_judge_timing_out_fails_eval_in_one_line_and_keeps_what_arrived(tmp_path, monkeypatch):
    model, tokenizer = tiny_chat_model()
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    # MT-Bench answers with up to 1024 new tokens whatever eval.max_new_tokens says; 8 here.
    monkeypatch.setattr(mtbench, "run_mtbench", partial(mtbench.run_mtbench, max_new_tokens=8))
    slow = True

    def reply(messages: list[dict[str, str]]) -> str:
        # Turn 1 is judged at once; turn 2 takes longer than the judge's timeout while `slow`.
        if slow and TURN_2 in messages[-1]["content"]:
            time.sleep(2.0)
        return deterministic_reply(messages)

    cache = tmp_path / "judge-cache"
    with JudgeServer(reply=reply) as server:
        spec = {"kind": "openai", "model": "slow-judge", "base_url": server.base_url}
        spec |= {"cache_dir": str(cache), "timeout_s": 0.5, "max_retries": 0, "progress": False}
        args = ["eval", str(model_dir), "--suite", "mt-bench", "--limit", "2"]
        args += ["--judge", json.dumps(spec)]
        args += ["--set", f"eval.options.mt-bench.questions={MT}"]

        code, output = run_main(args, monkeypatch)
        assert code == 2 and "Traceback" not in output, output
        errors = [line for line in output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors == output.strip().splitlines()[-1:], output
        assert f"judge 'slow-judge' at {server.base_url}/chat/completions" in errors[0]
        assert "timed out after 0.5 s" in errors[0]
        # Two questions, two turns: four judge prompts; the two turn-1 judgements were kept.
        assert len(server.requests) == 4
        assert len(list(cache.rglob("*.json"))) == 2

        slow = False
        code, output = run_main(args, monkeypatch)
        assert code == 0, output
        assert len(server.requests) == 6  # only the two turn-2 prompts were asked again
        assert all(TURN_2 in r["body"]["messages"][-1]["content"] for r in server.requests[4:])
    assert len(list(cache.rglob("*.json"))) == 4
    record = json.loads((tmp_path / "eval-model.json").read_text())
    details = record["benchmarks"]["mt-bench"]["details"]
    assert details["judge_stats"] == {"requests": 2, "retries": 0, "cache_hits": 2}
