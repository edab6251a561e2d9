"""Judge specs: strings and mappings to judges through the JUDGES registry, and their errors."""

from __future__ import annotations

import pytest

from gsil_bench.errors import UserError
from gsil_bench.evaluation.judging.base import JUDGES, Judge, make_judge
from gsil_bench.evaluation.judging.http import OpenAIJudge
from gsil_bench.registry import target_of


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("openai:gpt-4o", {"model": "gpt-4o", "base_url": "https://api.openai.com/v1"}),
        (
            "openai:gpt-4o@https://api.openai.com/v1",
            {"model": "gpt-4o", "base_url": "https://api.openai.com/v1"},
        ),
        (
            "openai:org@name@http://127.0.0.1:8000/v1/",
            {"model": "org@name", "base_url": "http://127.0.0.1:8000/v1"},
        ),
        (
            "http://127.0.0.1:8000/v1#Qwen/Qwen2.5-7B-Instruct",
            {"model": "Qwen/Qwen2.5-7B-Instruct", "base_url": "http://127.0.0.1:8000/v1"},
        ),
        (
            {"kind": "openai", "model": "m", "base_url": "http://h:1/v1", "max_tokens": 9},
            {"model": "m", "base_url": "http://h:1/v1", "max_tokens": 9},
        ),
        (
            '{"kind": "openai", "model": "m", "temperature": 0.5}',
            {"model": "m", "temperature": 0.5},
        ),
    ],
)
def test_make_judge_specs(spec, expected):
    judge = make_judge(spec)
    assert isinstance(judge, OpenAIJudge)
    assert judge.identity["kind"] == "openai"
    for key, value in expected.items():
        assert judge.identity[key] == value


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gpt-4o", "not understood"),
        ("http://127.0.0.1:8000/v1", "model after '#'"),
        ("openai:", "names no model"),
        ({"kind": "bard", "model": "x"}, "unknown"),
        ({"kind": "openai", "model": "m", "colour": "red"}, "unknown option.*colour"),
        ("{not json", "not valid JSON"),
    ],
)
def test_make_judge_rejects_bad_specs(spec, message):
    with pytest.raises(UserError, match=message):
        make_judge(spec)


class EchoJudge:
    """A toy judge kind: rates every conversation with the same fixed text."""

    def __init__(self, model: str, *, verdict: str = "[[5]]") -> None:
        self.model, self.verdict = model, verdict

    @property
    def identity(self) -> dict[str, str]:
        return {"kind": "echo", "model": self.model}

    def complete(self, prompts):
        return [self.verdict for _ in prompts]


def test_a_judge_kind_is_a_registered_class():
    JUDGES.register("echo", EchoJudge, target=target_of(EchoJudge))
    try:
        judge = make_judge("echo:any-name", verdict="[[7]]")
        assert isinstance(judge, Judge) and judge.identity == {"kind": "echo", "model": "any-name"}
        assert judge.complete([[{"role": "user", "content": "hi"}]] * 2) == ["[[7]]", "[[7]]"]
        mapped = make_judge({"kind": "echo", "model": "m"})
        assert mapped.complete([[]]) == ["[[5]]"]
        with pytest.raises(UserError, match="unknown option.*colour"):
            make_judge({"kind": "echo", "model": "m", "colour": "red"})
    finally:
        JUDGES.forget("echo")
    with pytest.raises(UserError, match="not understood"):
        make_judge("echo:any-name")
