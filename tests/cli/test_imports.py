"""Start-up cost: the CLI imports each command's heavy stack only when that command runs.

Each check runs in a fresh interpreter (the test process itself has long imported torch) and
reads ``sys.modules`` after the import or the command. Speed itself is measured by hand (see the
README's development section), never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from gsil_bench.registry import BUILTINS, get_loss

# What `gsil-bench --help` and `gsil-bench losses` used to pay for: torch (~0.8 s), the model
# stack, the sweep library and the report stack (plots, statistics).
HEAVY = ("torch", "transformers", "accelerate", "optuna", "matplotlib", "scipy")

# The built-in losses, as documented in DESIGN.md section 2 and the README.
DOCUMENTED_LOSSES = {
    "sft",
    "spin",
    "spin-hinge",
    "ipo",
    "simpo",
    "gsil-logistic",
    "gsil-brier",
    "gsil-hinge",
    "gsil-kliep",
    "gsil-lsif",
    "gsil-exponential",
}

# Runs the real entry point with the argv given as JSON in argv[1], then reports on stderr
# (stdout is the command's own output) its exit code and which HEAVY modules it imported.
RUN_MAIN = textwrap.dedent(
    f"""
    import json, sys
    from gsil_bench.cli.app import main
    sys.argv = ["gsil-bench", *json.loads(sys.argv[1])]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    heavy = [name for name in {list(HEAVY)!r} if name in sys.modules]
    print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
    """
)


def _run_cli(args: list[str]) -> tuple[str, dict]:
    """stdout of ``gsil-bench ARGS`` and the report (exit code, heavy modules imported)."""
    done = subprocess.run(
        [sys.executable, "-c", RUN_MAIN, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = done.stderr.strip().splitlines()
    try:
        return done.stdout, json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise AssertionError(f"no report from the subprocess; stderr:\n{done.stderr}") from None


def test_importing_the_cli_imports_no_heavy_stack():
    script = (
        "import json, sys\nimport gsil_bench.cli.app\n"
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout) == []


def test_help_imports_no_heavy_stack():
    stdout, report = _run_cli(["--help"])
    assert report == {"code": 0, "heavy": []}
    for command in ("losses", "train", "eval", "score", "sweep", "report"):
        assert command in stdout


def test_losses_lists_every_loss_without_torch():
    """The listing is what the registry says once every loss module is imported the ordinary
    way (here, in the test process, with torch): names, metadata and defaults."""
    stdout, report = _run_cli(["losses", "--json"])
    assert report == {"code": 0, "heavy": []}
    rows = json.loads(stdout)
    names = [row["name"] for row in rows]
    assert names[: len(BUILTINS)] == list(BUILTINS)
    assert set(names) >= DOCUMENTED_LOSSES
    for row in rows:
        spec = get_loss(row["name"])
        assert row == {
            "name": spec.name,
            "family": spec.family,
            "needs_reference": spec.needs_reference,
            "needs_generated": spec.needs_generated,
            "hparams": json.loads(json.dumps(dict(spec.hparams))),
            "target": spec.target,
            "summary": spec.summary,
        }
    # Spot checks against DESIGN.md section 2, not against the code.
    by_name = {row["name"]: row for row in rows}
    assert by_name["simpo"]["hparams"] == {"beta": 2.0, "gamma": 1.0}
    assert by_name["simpo"]["needs_reference"] is False
    assert by_name["gsil-logistic"]["hparams"] == {"beta": 0.1, "shift": 0.0}
    assert by_name["sft"]["needs_generated"] is False


def _problem(task_id: str, name: str, body: str, test: str) -> dict:
    return {
        "task_id": task_id,
        "prompt": f"def {name}(a, b):\n",
        "canonical_solution": body,
        "test": test,
        "entry_point": name,
    }


def test_score_humaneval_imports_no_torch(tmp_path: Path):
    """`score humaneval` end to end on two hand-written problems: one right, one wrong
    completion, so pass@1 is 1/2."""
    problems = [
        _problem("T/0", "add", "    return a + b\n", "def check(f):\n    assert f(2, 3) == 5\n"),
        _problem("T/1", "mul", "    return a * b\n", "def check(f):\n    assert f(2, 3) == 6\n"),
    ]
    samples = [
        {"task_id": "T/0", "completion": "    return a + b\n"},
        {"task_id": "T/1", "completion": "    return a + b\n"},  # 2 + 3 != 6
    ]
    problems_path = tmp_path / "problems.jsonl"
    problems_path.write_text("".join(json.dumps(p) + "\n" for p in problems))
    samples_path = tmp_path / "samples.jsonl"
    samples_path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    args = ["score", "humaneval", str(samples_path), "--problems", str(problems_path), "--json"]
    stdout, report = _run_cli(args)
    assert report == {"code": 0, "heavy": []}
    assert json.loads(stdout)["pass@1"] == 0.5


def test_score_help_imports_every_benchmark_without_torch():
    """Listing `score`'s subcommands imports every benchmark module, the mini suite's too."""
    stdout, report = _run_cli(["score", "--help"])
    assert report == {"code": 0, "heavy": []}
    for benchmark in ("gsm8k", "humaneval", "mini"):
        assert benchmark in stdout
