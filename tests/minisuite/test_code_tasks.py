"""Mini-suite code: references pass their hidden tests, flawed twins fail them, and scoring runs
completions in the real sandbox (a child process each, nothing mocked)."""

from __future__ import annotations

import random
from collections import Counter

from gsil_bench.minisuite import code_tasks
from gsil_bench.minisuite.code_tasks import code_of
from gsil_bench.minisuite.scoring import score_items
from gsil_bench.minisuite.task import TestItem


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
            task = code_tasks._task(random.Random(0), family, spec)
            assert run_function(task.references[0], task.check["tests"]), spec.name
            assert not run_function(task.rejected[0], task.check["tests"]), spec.name


def test_code_items(suite):
    items = [item for item in suite.test if item.domain == "code"]
    assert len({item.meta["family"] for item in items}) >= 10
    for item in items:
        assert item.reference.startswith(f"def {item.check['entry_point']}(")
        assert item.check["tests"].count("assert") >= 2


def test_code_families_have_the_same_mix_in_every_split(suite):
    space = {f: len(specs) for f, specs in code_tasks.all_families().items()}
    base = Counter(d.meta["family"] for d in suite.base if d.meta["domain"] == "code")
    for family, size in space.items():
        # 2000 of ~3000 tasks drawn uniformly: each family's share within a few points.
        assert abs(base[family] / 2000 - size / sum(space.values())) < 0.03, family


def test_code_of():
    assert code_of("```python\ndef f():\n    pass\n```") == "def f():\n    pass\n"
    assert code_of("def f():\n    pass") == "def f():\n    pass"
    assert code_of("```\nx = 1\n").strip() == "x = 1"  # an unclosed fence still counts


def test_code_in_a_fence_and_flawed_twins(items):
    code = [item for item in items if item.domain == "code"]
    fenced = [[f"Here it is:\n```python\n{item.reference}\n```\nDone."] for item in code]
    assert score_items(code, fenced)["mini/code"].metrics["pass@1"] == 1.0
    # The suite's flawed functions (the demonstrations' ``rejected``) fail the hidden tests.
    tasks = code_tasks.generate(random.Random(0), 12)
    twins = [TestItem(f"c{i}", "code", list(t.turns), t.references[0], t.check)
             for i, t in enumerate(tasks)]  # fmt: skip
    result = score_items(twins, [[t.rejected[0]] for t in tasks], workers=2)["mini/code"]
    assert result.metrics["pass@1"] == 0.0
    assert {row["status"] for row in result.items} == {"failed"}
