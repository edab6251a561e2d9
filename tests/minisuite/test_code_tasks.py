"""Mini-suite code: references pass their hidden tests, flawed twins fail them, and scoring runs
completions in the real sandbox (a child process each, nothing mocked)."""

from __future__ import annotations

import json
import random
from collections import Counter

from gsil_bench.minisuite import code_tasks
from gsil_bench.minisuite.code_tasks import code_of
from gsil_bench.minisuite.scoring import score_items
from gsil_bench.minisuite.task import Draw, Split, TestItem

PLAIN = Draw(index=0, skill=False, heldout=False)


def run_function(source: str, tests: str) -> bool:
    """Our own generated code only (references and their flawed twins), so exec is fine."""
    try:
        exec(source + "\n" + tests, {})
    except Exception:
        return False
    return True


def test_code_references_pass_and_every_flawed_twin_fails():
    # Over the whole task space, not a sample: a twin that passes would be a silent bug.
    for family, specs in code_tasks.all_families().items():
        for spec in specs:
            task = code_tasks._task(random.Random(0), PLAIN, family, spec)
            assert run_function(task.references[0], task.check["tests"]), spec.name
            assert not run_function(task.rejected[0], task.check["tests"]), spec.name


def test_code_items(suite):
    items = [item for item in suite.test if item.domain == "code"]
    assert len({item.meta["family"] for item in items}) >= 10
    for item in items:
        assert item.reference.startswith(f"def {item.check['entry_point']}(")
        assert item.check["tests"].count("assert") >= 2


def test_code_skill_families_are_rare_in_base_and_others_drawn_uniformly(suite):
    families = code_tasks.all_families()
    plain = {f: len(specs) for f, specs in families.items() if f not in code_tasks.SKILL_FAMILIES}
    base = Counter(d.meta["family"] for d in suite.base if d.meta["domain"] == "code")
    # 3% of the 1,500 base tasks are skill tasks (45), the rest drawn uniformly from the others.
    assert sum(base[f] for f in code_tasks.SKILL_FAMILIES) == 45
    for family, size in plain.items():
        assert abs(base[family] / 1455 - size / sum(plain.values())) < 0.03, family
    test = [item for item in suite.test if item.domain == "code"]
    assert all(
        (item.meta["family"] in code_tasks.SKILL_FAMILIES) == item.meta["skill"] for item in test
    )


def test_code_of():
    assert code_of("```python\ndef f():\n    pass\n```") == "def f():\n    pass\n"
    assert code_of("def f():\n    pass") == "def f():\n    pass"
    assert code_of("```\nx = 1\n").strip() == "x = 1"  # an unclosed fence still counts


def test_code_in_a_fence_and_flawed_twins(items):
    code = [item for item in items if item.domain == "code"]
    fenced = [[f"Here it is:\n```python\n{item.reference}\n```\nDone."] for item in code]
    assert score_items(code, fenced)["mini/code"].metrics["pass@1"] == 1.0
    # The suite's flawed functions (the demonstrations' ``rejected``) fail the hidden tests.
    tasks = code_tasks.generate(random.Random(0), 12, Split("test", 0.5), set())
    twins = [TestItem(f"c{i}", "code", list(t.turns), t.references[0], t.check)
             for i, t in enumerate(tasks)]  # fmt: skip
    result = score_items(twins, [[t.rejected[0]] for t in tasks], workers=2)["mini/code"]
    assert result.metrics["pass@1"] == 0.0
    assert {row["status"] for row in result.items} == {"failed"}


def test_verdicts_are_reused_within_a_process_but_timeouts_are_not(monkeypatch):
    from gsil_bench.evaluation import sandbox

    calls: list[str] = []

    def fake_run_check(program: str, **_):
        calls.append(program)
        status = "timeout" if "slow" in program else ("passed" if "good" in program else "failed")
        return sandbox.CheckResult(status == "passed", status, "", 0.0)

    monkeypatch.setattr(sandbox, "run_check", fake_run_check)
    monkeypatch.setattr(code_tasks, "_VERDICTS", {})
    programs = ["# good 1", "# bad 2", "# good 1", "# slow 3", "# slow 3", "# bad 2"]
    assert [code_tasks.checked_status(p) for p in programs] == [
        "passed", "failed", "passed", "timeout", "timeout", "failed"
    ]  # fmt: skip
    # The good and bad programs ran once each, the timing-out one both times.
    assert calls == ["# good 1", "# bad 2", "# slow 3", "# slow 3"]


def test_verdicts_are_shared_between_processes_through_the_store(monkeypatch, tmp_path):
    from gsil_bench.evaluation import sandbox

    calls: list[str] = []

    def fake_run_check(program: str, **_):
        calls.append(program)
        status = "timeout" if "slow" in program else ("passed" if "good" in program else "failed")
        return sandbox.CheckResult(status == "passed", status, "", 0.0)

    monkeypatch.setattr(sandbox, "run_check", fake_run_check)
    monkeypatch.setattr(code_tasks, "_STORE", {"path": None, "read": {}})
    store = tmp_path / "cache" / "code-verdicts.jsonl"
    monkeypatch.setattr(code_tasks, "_VERDICTS", {})
    with code_tasks.verdict_store(store):
        first = [code_tasks.checked_status(p) for p in ["# good 1", "# bad 2", "# slow 3"]]
    lines = [json.loads(line) for line in store.read_text().splitlines()]
    assert [line["status"] for line in lines] == ["passed", "failed"]  # no timeout stored
    # Another process: an empty memo, the same store. Only the timed-out program runs again.
    monkeypatch.setattr(code_tasks, "_VERDICTS", {})
    monkeypatch.setattr(code_tasks, "_STORE", {"path": None, "read": {}})
    with code_tasks.verdict_store(store):
        second = [code_tasks.checked_status(p) for p in ["# good 1", "# bad 2", "# slow 3"]]
    assert first == second == ["passed", "failed", "timeout"]
    assert calls == ["# good 1", "# bad 2", "# slow 3", "# slow 3"]
    # Outside the store nothing is written; a half-written last line is left for later.
    code_tasks.checked_status("# good 4")
    assert len(store.read_text().splitlines()) == 2
    with store.open("a") as handle:
        handle.write('{"sha": "x", "sta')
    monkeypatch.setattr(code_tasks, "_VERDICTS", {})
    monkeypatch.setattr(code_tasks, "_STORE", {"path": None, "read": {}})
    with code_tasks.verdict_store(store):
        assert len(code_tasks._VERDICTS) == 2
