"""Mini-suite code: one-line Python functions from a one-sentence description, HumanEval-like.

Each family (add a constant, clamp to a range, count a letter, ...) is parametrised by its
constants, and the constants are in the function's name, so there are thousands of distinct
tasks and no function appears in two splits. Hidden tests are asserts whose expected values
come from running the reference; the flawed ("rejected") function is a typical slip (an
off-by-one bound, ``>=`` for ``>``, a missed edge case) that fails at least one of them.

The alignment skill is a set of families (``SKILL_FAMILIES``) that the base split holds few of;
held-out tasks are worded with a phrasing no training split uses.

Scoring (``mini/code``): pass@1 of one greedy completion; the completion (the code of its first
fenced block, if it has one) followed by the hidden asserts runs in the sandbox.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import random
import re
import string
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gsil_bench.errors import UserError
from gsil_bench.minisuite.task import (
    Draw,
    Scored,
    Split,
    Task,
    TestItem,
    mean,
    phrase,
    skill_draws,
    unique_tasks,
)

PHRASINGS = (
    "Write a Python function {signature} that returns {description}.",
    "Define {signature} so that it returns {description}.",
)
HELDOUT_PHRASINGS = ("Implement {signature}, which returns {description}.",)
# The alignment skill: families the base split holds few of (comparisons with a constant,
# multiples and remainders), so the base model has rarely seen how to write them.
SKILL_FAMILIES = frozenset(
    {"times", "multiple", "mod", "at_least", "at_most", "keep_above", "count_above"}
)
LETTERS = string.ascii_lowercase


@dataclass(frozen=True)
class CodeSpec:
    """A function whose body is one ``return`` expression, and a subtly wrong twin."""

    name: str
    arg: str
    description: str
    body: str
    wrong: str
    inputs: tuple[Any, ...]

    def source(self, body: str | None = None) -> str:
        return f"def {self.name}({self.arg}):\n    return {body or self.body}"


def _other(*letters: str) -> str:
    return next(c for c in "qxzab" if c not in letters)


def _family(
    params: list[dict[str, Any]],
    name: str,
    arg: str,
    description: str,
    body: str,
    wrong: str,
    inputs: Callable[[dict[str, Any]], tuple[Any, ...]],
) -> list[CodeSpec]:
    """One spec per parameter dict; the text fields are ``str.format`` templates over it."""
    return [
        CodeSpec(
            name.format(**p), arg, description.format(**p), body.format(**p), wrong.format(**p),
            inputs(p),
        )
        for p in params
    ]  # fmt: skip


def _constants(low: int, high: int) -> list[dict[str, Any]]:
    return [{"k": k, "k1": k + 1, "k_1": k - 1} for k in range(low, high)]


# A table reads best one family per entry, so the formatter is kept out of it.
# fmt: off
def all_families() -> dict[str, list[CodeSpec]]:
    """Every code task the suite can draw, by family (about 3,000)."""
    spans = [(lo, hi) for lo in range(16) for hi in range(lo + 2, lo + 21)]
    bounds = [{"lo": lo, "hi": hi, "hi1": hi - 1} for lo, hi in spans]
    letters = [{"c": c, "o": _other(c)} for c in LETTERS]
    pairs = [{"a": a, "b": b, "o": _other(a, b)} for a in LETTERS for b in "aeioust" if a != b]
    linear = [{"a": a, "b": b} for a in range(2, 10) for b in range(1, 31)]
    sample = [4, 11, 7, 2, 9]
    fixed = [
        CodeSpec("largest", "xs", "the largest number in xs", "max(xs)", "xs[-1]",
                 (sample, [-3, -8], [5])),
        CodeSpec("smallest", "xs", "the smallest number in xs", "min(xs)", "xs[0]",
                 (sample, [3, 1, 2], [5])),
        CodeSpec("total", "xs", "the sum of the numbers in xs", "sum(xs)", "sum(xs[1:])",
                 (sample, [], [5])),
        CodeSpec("sum_of_squares", "xs", "the sum of the squares of the numbers in xs",
                 "sum(x * x for x in xs)", "sum(xs) ** 2", (sample, [], [3])),
        CodeSpec("reverse_list", "xs", "the items of xs in reverse order", "xs[::-1]",
                 "sorted(xs, reverse=True)", (sample, [], [1, 2])),
        CodeSpec("reverse_string", "s", "the string s reversed", "s[::-1]", "s[1:][::-1]",
                 ("abc", "")),
        CodeSpec("is_even", "x", "True if x is even, else False", "x % 2 == 0",
                 "x % 2 == 0 and x != 0", (0, 3, 4)),
        CodeSpec("absolute", "x", "the absolute value of x", "abs(x)", "max(x, 0)", (-3, 0, 4)),
    ]
    return {
        "add": _family(_constants(1, 300), "add_{k}", "x", "x plus {k}", "x + {k}", "x + {k1}",
                       lambda p: (0, 5, -3)),
        "subtract": _family(_constants(1, 300), "subtract_{k}", "x", "x minus {k}", "x - {k}",
                            "{k} - x", lambda p: (0, 7, 20)),
        "times": _family(_constants(2, 61), "times_{k}", "x", "x times {k}", "x * {k}",
                         "x + {k}", lambda p: (0, 3, -2)),
        "multiple": _family(_constants(2, 61), "is_multiple_of_{k}", "x",
                            "True if x is a multiple of {k}, else False", "x % {k} == 0",
                            "x % {k} == 0 and x > 0", lambda p: (0, p["k"], 3 * p["k"], p["k1"])),
        "mod": _family(_constants(2, 61), "mod_{k}", "x", "the remainder of x divided by {k}",
                       "x % {k}", "x // {k}", lambda p: (p["k1"], 3 * p["k"] + 2, 7)),
        "power": _family(_constants(2, 10), "power_{k}", "x", "x to the power {k}", "x ** {k}",
                         "x * {k}", lambda p: (0, 1, 3)),
        "linear": _family(linear, "linear_{a}_{b}", "x", "{a} times x plus {b}", "{a} * x + {b}",
                          "{a} * (x + {b})", lambda p: (0, 1, 4)),
        "at_least": _family(_constants(0, 201), "at_least_{k}", "x", "the larger of x and {k}",
                            "max(x, {k})", "min(x, {k})", lambda p: (p["k"] - 5, p["k"] + 3)),
        "at_most": _family(_constants(0, 201), "at_most_{k}", "x", "the smaller of x and {k}",
                           "min(x, {k})", "max(x, {k})", lambda p: (p["k"] - 5, p["k"] + 3)),
        "clamp": _family(bounds, "clamp_{lo}_{hi}", "x", "x limited to the range {lo} to {hi}",
                         "max({lo}, min({hi}, x))", "max({lo}, min({hi1}, x))",
                         lambda p: (p["lo"] - 3, p["lo"], (p["lo"] + p["hi"]) // 2, p["hi"],
                                    p["hi"] + 4)),
        "between": _family(bounds, "between_{lo}_{hi}", "x",
                           "True if x is between {lo} and {hi} inclusive, else False",
                           "{lo} <= x <= {hi}", "{lo} < x <= {hi}",
                           lambda p: (p["lo"] - 1, p["lo"], (p["lo"] + p["hi"]) // 2, p["hi"] + 1)),
        "count": _family(letters, "count_{c}", "s", "how many times the letter '{c}' appears in s",
                         "s.count('{c}')", "int('{c}' in s)",
                         lambda p: ("", p["c"] + p["o"] + p["c"] * 2, p["c"])),
        "starts": _family(letters, "starts_with_{c}", "s",
                          "True if s starts with the letter '{c}', else False",
                          "s.startswith('{c}')", "'{c}' in s",
                          lambda p: ("", p["c"] + "at", p["o"] + p["c"])),
        "ends": _family(letters, "ends_with_{c}", "s",
                        "True if s ends with the letter '{c}', else False",
                        "s.endswith('{c}')", "s[-1] == '{c}'",
                        lambda p: (p["o"] + p["c"], p["c"] + p["o"], "")),
        "longer": _family(_constants(0, 31), "longer_than_{k}", "s",
                          "True if s has more than {k} characters, else False", "len(s) > {k}",
                          "len(s) >= {k}", lambda p: ("a" * p["k"], "a" * p["k1"], "")),
        "contains": _family(letters, "contains_{c}", "s",
                            "True if the letter '{c}' appears in s, else False", "'{c}' in s",
                            "s.startswith('{c}')", lambda p: ("", p["o"] + p["c"], p["c"])),
        "replace": _family(pairs, "replace_{a}_with_{b}", "s",
                           "s with every '{a}' replaced by '{b}'", "s.replace('{a}', '{b}')",
                           "s.replace('{a}', '{b}', 1)",
                           lambda p: ("", p["a"] * 2 + p["o"], (p["o"] + p["a"]) * 2)),
        "repeat": _family(_constants(2, 10), "repeat_{k}", "s", "the string s repeated {k} times",
                          "s * {k}", "s * {k_1}", lambda p: ("ab", "")),
        "add_each": _family(_constants(1, 201), "add_{k}_to_each", "xs",
                            "a new list with {k} added to each number in xs",
                            "[x + {k} for x in xs]", "[x + {k} for x in xs[1:]]",
                            lambda p: ([], [1, 2, 3])),
        "keep_above": _family(_constants(0, 201), "keep_above_{k}", "xs",
                              "a list of the numbers in xs that are greater than {k}",
                              "[x for x in xs if x > {k}]", "[x for x in xs if x >= {k}]",
                              lambda p: ([], [p["k"], p["k1"], p["k_1"], p["k"] + 5])),
        "count_above": _family(_constants(0, 201), "count_above_{k}", "xs",
                               "how many numbers in xs are greater than {k}",
                               "sum(1 for x in xs if x > {k})", "sum(1 for x in xs if x >= {k})",
                               lambda p: ([], [p["k"], p["k"] + 2, p["k"] - 3])),
        "slice": [
            *_family(_constants(1, 10), "first_{k}", "xs", "the first {k} items of xs",
                     "xs[:{k}]", "xs[1:{k1}]", lambda p: ([], list(range(10, 22)))),
            *_family(_constants(1, 10), "last_{k}", "xs", "the last {k} items of xs",
                     "xs[-{k}:]", "xs[-{k}:-1]", lambda p: ([], list(range(10, 22)))),
        ],
        "fixed": fixed,
    }
# fmt: on


def generate(rng: random.Random, n: int, split: Split, seen: set[str]) -> list[Task]:
    """``n`` tasks new to ``seen``, each drawn uniformly from the skill families' tasks or from
    the others' (as the split's skill share asks).

    Uniformly over tasks, not family by family: every split then has the same family mix in
    expectation; taking families in turn would exhaust the small ones first. The families'
    parameter ranges are sized so that no family dominates the space.
    """
    pools: dict[bool, list[tuple[str, CodeSpec]]] = {True: [], False: []}
    for family, specs in all_families().items():
        pools[family in SKILL_FAMILIES] += [(family, spec) for spec in specs]
    skill_tasks = skill_draws(n, split.skill_share)
    wanted = {True: skill_tasks, False: n - skill_tasks}
    for skill, pool in pools.items():
        left = sum(spec.name not in seen for _, spec in pool)
        if wanted[skill] > left:
            kind = "skill" if skill else "non-skill"
            raise UserError(
                f"mini suite: the 'code' domain has {left} {kind} tasks left for its {split.name}"
                f" split, {wanted[skill]} were asked for; lower n_base/n_align/n_test"
            )

    def sample(rng: random.Random, draw: Draw) -> Task:
        family, spec = rng.choice(pools[draw.skill])
        while spec.name in seen:  # cheaper than building a task unique_tasks would reject
            family, spec = rng.choice(pools[draw.skill])
        return _task(rng, draw, family, spec)

    return unique_tasks(sample, n, rng, "code", split, seen)


def _task(rng: random.Random, draw: Draw, family: str, spec: CodeSpec) -> Task:
    signature = f"{spec.name}({spec.arg})"
    wording = phrase(rng, draw, PHRASINGS, HELDOUT_PHRASINGS)
    prompt = wording.format(signature=signature, description=spec.description)
    reference = spec.source()
    function = _compile(reference, spec.name)
    # Each input is deep-copied so that a reference that mutated it could not skew the next.
    tests = "\n".join(
        f"assert {spec.name}({value!r}) == {function(copy.deepcopy(value))!r}"
        for value in spec.inputs
    )
    return Task(
        key=spec.name,
        turns=(prompt,),
        references=(reference,),
        rejected=(spec.source(spec.wrong),),
        check={"entry_point": spec.name, "tests": tests},
        meta={"family": family},
    )


def _compile(source: str, name: str) -> Callable[..., Any]:
    # Only the suite's own reference code runs here, never model output (that goes to the
    # sandbox), so an in-process exec is safe.
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<mini-code {name}>", "exec"), namespace)
    return namespace[name]


# ---------------------------------------------------------------- scoring

_FENCE = re.compile(r"```[A-Za-z0-9_+-]*\n(.*?)(?:```|$)", re.DOTALL)
CODE_TIMEOUT_S = 5.0


def code_of(completion: str) -> str:
    """The code in a completion: its first fenced block if it has one, else all of it."""
    fenced = _FENCE.search(completion)
    return fenced.group(1) if fenced else completion


def score(items: list[TestItem], answers: list[list[str]], workers: int) -> Scored:
    """pass@1: each completion and its item's hidden asserts run in the sandbox, ``workers``
    programs at a time; a program already checked in this process is not run again."""

    def run(pair: tuple[TestItem, list[str]]) -> dict[str, Any]:
        item, (completion,) = pair
        if not completion.strip():
            return {"id": item.id, "score": 0.0, "status": "empty"}
        program = code_of(completion) + "\n\n" + item.check["tests"] + "\n"
        status = checked_status(program)
        return {"id": item.id, "score": float(status == "passed"), "status": status}

    # Threads suffice: each check is a child process, the threads only wait on it.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        rows = list(pool.map(run, zip(items, answers, strict=True)))
    return {"pass@1": mean([r["score"] for r in rows])}, rows


# Verdicts of programs already checked, by sha256 of the program. The methods of a study
# answer many items alike (as their base model did), so a sweep's runs would run the same
# programs again and again. Only "passed" and "failed" are kept: a timeout or a sandbox error
# may not recur. The hidden asserts are deterministic; a program that draws random numbers or
# reads the clock keeps the verdict of its first run. Within ``verdict_store(path)`` the
# verdicts are also appended to a file that every process of a sweep shares (one short line
# per verdict, written in one append, so concurrent writers do not interleave).
_VERDICTS: dict[str, str] = {}
_VERDICTS_CAP = 100_000
_STORE: dict[str, Any] = {"path": None, "read": {}}


@contextlib.contextmanager
def verdict_store(path: Path) -> Iterator[None]:
    """Share verdicts through ``path`` (JSON lines ``{"sha": ..., "status": ...}``): the
    lines other processes added since this one last read it are loaded first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    offset = _STORE["read"].get(str(path), 0)
    if path.exists():
        if offset > path.stat().st_size:  # the file was cleared and started again
            offset = 0
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
        whole = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
        for line in whole.decode("utf-8", "replace").splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                if entry["status"] in ("passed", "failed") and len(_VERDICTS) < _VERDICTS_CAP:
                    _VERDICTS[str(entry["sha"])] = entry["status"]
        _STORE["read"][str(path)] = offset + len(whole)
    _STORE["path"] = path
    try:
        yield
    finally:
        _STORE["path"] = None


def checked_status(program: str) -> str:
    """The sandbox's verdict on ``program`` ("passed", "failed", "timeout" or "error")."""
    # Imported here: the sandbox probes the OS once, which the other domains do not need.
    from gsil_bench.evaluation.sandbox import run_check

    key = hashlib.sha256(program.encode("utf-8", "surrogatepass")).hexdigest()
    known = _VERDICTS.get(key)
    if known is not None:
        return known
    status = str(run_check(program, timeout_s=CODE_TIMEOUT_S).status)
    if status in ("passed", "failed") and len(_VERDICTS) < _VERDICTS_CAP:
        _VERDICTS[key] = status
        store = _STORE["path"]
        if store is not None:
            line = json.dumps({"sha": key, "status": status}) + "\n"
            fd = os.open(store, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
    return status
