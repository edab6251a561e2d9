"""Bad inputs never give a traceback and never touch results.

Every case runs the real entry point (``gsil_bench.cli.app:main``, which turns a UserError into
one line and exit code 2) inside the CLI runner's isolation, from a folder holding a
``results/`` tree. Each must exit 2 with exactly one line naming the offending file, line or
key, and leave ``results/`` byte for byte as it was. Every case fails before a model is built.

A case is (id, files to write, command line, a fragment the one line must hold). ``{tiny}`` in
a command line is the tiny run config of the CLI tests.
"""

from __future__ import annotations

import gzip
import json
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest
import yaml

from gsil_bench.cli.app import main

TINY = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "fixtures" / "tiny_run.yaml").read_text()
)
GOOD = {"prompt": "What is 2 + 2?", "response": "4"}
GOOD_LINE = json.dumps(GOOD) + "\n"
WHOLE_GZ = gzip.compress(GOOD_LINE.encode() * 200, mtime=0)


def sweep(**fields: Any) -> str:
    """A valid grid sweep over the tiny run config, with ``fields`` replaced."""
    spec = {"study": "bad", "base": TINY, "methods": [{"loss": "sft"}], "seeds": [0], **fields}
    return yaml.safe_dump(spec, sort_keys=False)


def tpe(dist: dict[str, Any]) -> str:
    """A TPE sweep searching loss.params.beta of spin over ``dist``."""
    method = {"loss": "spin", "space": {"loss.params.beta": dist}}
    return sweep(sampler="tpe", trials=2, methods=[method])


def train(source: str) -> list[str]:
    return ["train", "{tiny}", "--set", f"data.source={source}"]


def run_yaml(text: str) -> dict[str, str | bytes]:
    return {"run.yaml": text}


SPACE = "key 'methods[0].space.loss.params.beta'"

CASES: list[tuple[str, dict[str, str | bytes], list[str], str]] = [
    # ---------------------------------------------------------------- data files
    (
        "jsonl-malformed-line",
        {"data/bad.jsonl": GOOD_LINE + '{"prompt": "a", "response": "b",}\n'},
        train("data/bad.jsonl"),
        # The closing brace after the trailing comma is the 33rd character of line 2.
        "data/bad.jsonl:2: not valid JSON (Expecting property name enclosed in double quotes, "
        "column 33)",
    ),
    (
        "jsonl-gz-truncated",
        {"data/t.jsonl.gz": WHOLE_GZ[: len(WHOLE_GZ) // 2]},
        train("data/t.jsonl.gz"),
        "data/t.jsonl.gz: truncated or corrupt gzip file",
    ),
    (
        "jsonl-gz-not-gzip",
        {"data/plain.jsonl.gz": GOOD_LINE},
        train("data/plain.jsonl.gz"),
        "data/plain.jsonl.gz: truncated or corrupt gzip file",
    ),
    (
        "jsonl-not-utf8",
        # Latin-1 e-acute after '{"prompt": "caf' (15 characters): column 16 of line 2.
        {"data/latin.jsonl": GOOD_LINE.encode() + b'{"prompt": "caf\xe9", "response": "b"}\n'},
        train("data/latin.jsonl"),
        "data/latin.jsonl:2: not UTF-8 text (invalid continuation byte at column 16)",
    ),
    (
        "json-not-utf8",
        {"data/latin.json": b'[\n {"prompt": "caf\xe9", "response": "b"}\n]\n'},
        train("data/latin.json"),
        "data/latin.json:2: not UTF-8 text",
    ),
    (
        "json-broken",
        {"data/broken.json": '[\n {"prompt": "a", "response": "b"},\n {"prompt" "a"}\n]\n'},
        train("data/broken.json"),
        # ' {"prompt" "a"}': the missing colon is at column 12.
        "data/broken.json:3: not valid JSON (Expecting ':' delimiter, column 12)",
    ),
    (
        "data-directory-without-files",
        {"data/folder.jsonl/notes.txt": "not data"},
        train("data/folder.jsonl"),
        "data/folder.jsonl: no .jsonl, .jsonl.gz, .json, .parquet files in this directory",
    ),
    ("data-missing", {}, train("data/missing.jsonl"), "data/missing.jsonl: no such file"),
    (
        "data-path-with-brackets",
        {},
        train("data/[draft]/x.jsonl"),
        "data/[draft]/x.jsonl: no such file",
    ),
    (
        "data-unsupported-suffix",
        {"data/d.csv": "prompt,response\na,b\n"},
        train("data/d.csv"),
        "data/d.csv: unsupported file type",
    ),
    (
        "data-record-not-an-object",
        {"data/list.jsonl": GOOD_LINE + "[1, 2]\n"},
        train("data/list.jsonl"),
        "data/list.jsonl:2: expected an object with fields, got list",
    ),
    (
        "data-record-unknown-format",
        {"data/odd.jsonl": '{"text": "hello"}\n'},
        train("data/odd.jsonl"),
        "data/odd.jsonl:1: unrecognised record (fields: text)",
    ),
    (
        "data-empty-response",
        {"data/empty.jsonl": GOOD_LINE + '{"prompt": "a", "response": "  "}\n'},
        train("data/empty.jsonl"),
        "data/empty.jsonl:2: field 'response': empty",
    ),
    (
        "data-bad-role",
        {"data/chat.jsonl": '{"messages": [{"role": "human", "content": "hi"}]}\n'},
        train("data/chat.jsonl"),
        "data/chat.jsonl:1: field 'messages[0].role'",
    ),
    (
        "data-corrupt-parquet",
        {"data/d.parquet": b"PAR1 this is not parquet"},
        train("data/d.parquet"),
        "data/d.parquet: not a readable parquet file",
    ),
    (
        "data-empty-file",
        {"data/none.jsonl": "\n\n"},
        train("data/none.jsonl"),
        "no demonstrations left from 'data/none.jsonl'",
    ),
    # ---------------------------------------------------------------- run configs
    (
        "loss-unknown",
        {},
        ["train", "{tiny}", "--set", "loss.name=nope"],
        "unknown loss 'nope'",
    ),
    (
        "loss-typo",
        {},
        ["train", "{tiny}", "--set", "loss.name=gsil-logistc"],
        "unknown loss 'gsil-logistc'. Did you mean 'gsil-logistic'",
    ),
    (
        "loss-hyperparameter-typo",
        {},
        ["train", "{tiny}", "--set", "loss.params.bta=1"],
        "loss 'gsil-logistic' has no hyperparameter 'bta'",
    ),
    (
        "config-key-from-another-trainer",
        run_yaml("learning_rate: 1.0e-4\n"),
        ["train", "run.yaml"],
        "run.yaml: unknown key 'learning_rate' (did you mean 'optim.lr'?)",
    ),
    (
        "config-key-in-section-from-another-trainer",
        {},
        ["train", "{tiny}", "--set", "optim.per_device_train_batch_size=8"],
        "unknown key 'optim.per_device_train_batch_size' (did you mean 'optim.batch_size'?)",
    ),
    (
        "config-key-typo",
        run_yaml("optim: {lrr: 0.001}\n"),
        ["train", "run.yaml"],
        "run.yaml: unknown key 'optim.lrr' (did you mean 'optim.lr'?)",
    ),
    (
        "beta-zero",
        {},
        ["train", "{tiny}", "--set", "loss.params.beta=0"],
        "hyperparameter 'beta' must be > 0, got 0.0",
    ),
    (
        "beta-nan",
        {},
        ["train", "{tiny}", "--set", "loss.params.beta=.nan"],
        "hyperparameter 'beta' must be finite, got nan",
    ),
    (
        "lr-negative",
        {},
        ["train", "{tiny}", "--set", "optim.lr=-1e-4"],
        "key 'optim.lr': Input should be greater than 0",
    ),
    (
        "max-prompt-tokens-not-below-max-length",
        run_yaml("data: {max_prompt_tokens: 512, max_length: 512}\n"),
        ["train", "run.yaml"],
        "run.yaml: data.max_prompt_tokens (512) must be less than data.max_length (512)",
    ),
    (
        "batch-size-not-a-number",
        {},
        ["train", "{tiny}", "--set", "optim.batch_size=many"],
        "key 'optim.batch_size'",
    ),
    (
        "iterations-negative",
        {},
        ["train", "{tiny}", "--set", "iterations=-1"],
        "key 'iterations'",
    ),
    ("config-invalid-yaml", run_yaml("optim:\n  lr: [1\n"), ["train", "run.yaml"], "run.yaml:"),
    (
        "config-not-a-mapping",
        run_yaml("- a\n- b\n"),
        ["train", "run.yaml"],
        "run.yaml: expected a mapping of config sections",
    ),
    (
        "config-not-utf8",
        {"run.yaml": b"seed: 1\n# caf\xe9\n"},
        ["train", "run.yaml"],
        "run.yaml:2: not UTF-8 text (invalid continuation byte at column 6)",
    ),
    (
        "config-is-a-directory",
        {"conf.yaml/readme.txt": "x"},
        ["train", "conf.yaml"],
        "conf.yaml: is a directory, expected a YAML file",
    ),
    ("config-missing", {}, ["train", "nope.yaml"], "nope.yaml: no such file"),
    (
        "set-without-value",
        {},
        ["train", "{tiny}", "--set", "optim.lr"],
        "--set 'optim.lr': expected key=value",
    ),
    (
        "eval-suite-typo-in-config",
        {},
        ["train", "{tiny}", "--set", "eval.suites=[gsm8kk]"],
        "eval.suites: 'gsm8kk' is not a gsil-bench benchmark. Did you mean 'gsm8k'?",
    ),
    (
        "eval-option-typo",
        {},
        ["train", "{tiny}", "--set", "eval.options={gsm8k: {sourc: x}}"],
        "eval.options.gsm8k.sourc: benchmark 'gsm8k' has no option 'sourc'",
    ),
    # ---------------------------------------------------------------- sweep files
    (
        "sweep-low-above-high",
        {"s.yaml": tpe({"low": 2.0, "high": 1.0})},
        ["sweep", "s.yaml"],
        f"s.yaml: {SPACE}: low 2.0 > high 1.0",
    ),
    (
        "sweep-log-low-not-positive",
        {"s.yaml": tpe({"low": 0.0, "high": 1.0, "log": True})},
        ["sweep", "s.yaml"],
        f"s.yaml: {SPACE}: a log scale needs low > 0, got low 0.0",
    ),
    (
        "sweep-step-zero",
        {"s.yaml": tpe({"low": 0.1, "high": 1.0, "step": 0})},
        ["sweep", "s.yaml"],
        f"s.yaml: {SPACE}: step must be a positive number",
    ),
    (
        "sweep-empty-choices",
        {"s.yaml": tpe({"type": "categorical", "choices": []})},
        ["sweep", "s.yaml"],
        f"s.yaml: {SPACE}: 'choices' is empty",
    ),
    (
        "sweep-empty-grid-axis",
        {"s.yaml": sweep(grid={"data.quality.subsample": []})},
        ["sweep", "s.yaml"],
        "s.yaml: grid.data.quality.subsample: no values",
    ),
    (
        "sweep-unknown-sampler",
        {"s.yaml": sweep(sampler="tpee", trials=2)},
        ["sweep", "s.yaml"],
        "s.yaml: key 'sampler': unknown sampler 'tpee'. Did you mean 'tpe'?",
    ),
    (
        "sweep-study-name-with-slash",
        {"s.yaml": sweep(study="../bad")},
        ["sweep", "s.yaml"],
        "s.yaml: key 'study': '../bad' is not a study name",
    ),
    (
        "sweep-file-is-a-directory",
        {"drafts/s.yaml": sweep()},
        ["sweep", "drafts"],
        "drafts: is a directory, expected a sweep YAML file",
    ),
    (
        "sweep-unknown-key",
        {"s.yaml": sweep(seed=[0])},
        ["sweep", "s.yaml"],
        "s.yaml: unknown key 'seed' (did you mean 'seeds'?)",
    ),
    (
        "sweep-unknown-loss-in-method",
        {"s.yaml": sweep(methods=[{"loss": "sft"}, {"loss": "gsil-logistc"}])},
        ["sweep", "s.yaml"],
        "s.yaml: methods[1] (gsil-logistc)",
    ),
    (
        "sweep-base-key-from-another-trainer",
        {"s.yaml": sweep(base={**TINY, "learning_rate": 1e-4})},
        ["sweep", "s.yaml"],
        "unknown key 'learning_rate' (did you mean 'optim.lr'?)",
    ),
    (
        "sweep-knob-not-in-grid",
        {"s.yaml": sweep(knobs=["data.quality.noise"])},
        ["sweep", "s.yaml"],
        "s.yaml: knobs: 'data.quality.noise' is not a key of 'grid'",
    ),
    (
        "sweep-baseline-matches-nothing",
        {"s.yaml": sweep(baseline="dpo")},
        ["sweep", "s.yaml"],
        "s.yaml: baseline 'dpo' matches no method",
    ),
    (
        "sweep-file-missing",
        {},
        ["sweep", "sweeps/nope.yaml"],
        "sweep file sweeps/nope.yaml not found",
    ),
    ("sweep-invalid-yaml", {"s.yaml": "study: [x\n"}, ["sweep", "s.yaml"], "s.yaml:"),
    (
        "sweep-not-utf8",
        {"s.yaml": b"study: caf\xe9\n"},
        ["sweep", "s.yaml"],
        "s.yaml:1: not UTF-8 text",
    ),
    # ---------------------------------------------------------------- score files
    (
        "score-gsm8k-malformed-line",
        {"g.jsonl": '{"answer": "#### 4", "completion": "4"}\n{"answer": \n'},
        ["score", "gsm8k", "g.jsonl"],
        "g.jsonl:2: not valid JSON (Expecting value, column 12)",
    ),
    (
        "score-gsm8k-missing-field",
        {"g.jsonl": '{"answer": "#### 4"}\n'},
        ["score", "gsm8k", "g.jsonl"],
        "g.jsonl:1: field 'completion' missing or not a string",
    ),
    (
        "score-gsm8k-truncated-gzip",
        {"g.jsonl.gz": WHOLE_GZ[:40]},
        ["score", "gsm8k", "g.jsonl.gz"],
        "g.jsonl.gz: truncated or corrupt gzip file",
    ),
    (
        "score-gsm8k-not-utf8",
        {"g.jsonl": b'{"answer": "#### 4", "completion": "\xff"}\n'},
        ["score", "gsm8k", "g.jsonl"],
        "g.jsonl:1: not UTF-8 text (invalid start byte at column 37)",
    ),
    (
        "score-directory",
        {"out/x.txt": "x"},
        ["score", "gsm8k", "out"],
        "out: is a directory",
    ),
    ("score-missing-file", {}, ["score", "humaneval", "gen.jsonl"], "gen.jsonl: no such file"),
    (
        "score-humaneval-not-an-object",
        {"h.jsonl": '"HumanEval/0"\n'},
        ["score", "humaneval", "h.jsonl"],
        "h.jsonl:1: expected a JSON object, got a string",
    ),
    (
        "score-humaneval-unknown-task",
        {"h.jsonl": '{"task_id": "HumanEval/9999", "completion": "pass"}\n'},
        ["score", "humaneval", "h.jsonl"],
        "h.jsonl:1: unknown task_id 'HumanEval/9999'",
    ),
    (
        "score-mini-unknown-id",
        {"m.jsonl": '{"id": "nope", "responses": ["1"]}\n'},
        ["score", "mini", "m.jsonl"],
        "m.jsonl:1: unknown mini-suite item id 'nope'",
    ),
    (
        "score-path-with-brackets",
        {},
        ["score", "gsm8k", "runs/[v2]/gen.jsonl"],
        "runs/[v2]/gen.jsonl: no such file",
    ),
    # ---------------------------------------------------------------- eval and report
    (
        "eval-unknown-benchmark",
        {"ckpt/config.json": "{}"},
        ["eval", "ckpt", "--suite", "gsm8kk"],
        "'gsm8kk' is not a gsil-bench benchmark. Did you mean 'gsm8k'?",
    ),
    (
        "eval-target-with-brackets",
        {},
        ["eval", "runs/[draft]/model"],
        "evaluation target runs/[draft]/model does not exist",
    ),
    (
        "eval-folder-that-is-not-a-model",
        {"ckpt/config.json": "{}"},
        ["eval", "ckpt"],
        "cannot load model 'ckpt'",
    ),
    (
        "eval-missing-target",
        {},
        ["eval", "./no-such-model"],
        "evaluation target ./no-such-model does not exist",
    ),
    (
        "report-unknown-study",
        {},
        ["report", "nope", "--results-dir", "results"],
        "no study folder at results/nope; studies under results: broken, quick",
    ),
    (
        "report-broken-record",
        {},
        ["report", "broken", "--results-dir", "results"],
        "results/broken/records/bad.json:1: not valid JSON",
    ),
    (
        "report-unknown-baseline",
        {},
        ["report", "quick", "--results-dir", "results", "--baseline", "dpo"],
        "'dpo' is not a method",
    ),
]


def write_results(root: Path) -> None:
    """A results tree a bad input must not touch: a finished study and a damaged one."""
    quick = root / "results" / "quick"
    (quick / "records").mkdir(parents=True)
    for method, solved in (("sft", 5), ("spin beta=1", 2)):
        items = [{"id": f"q{i}", "score": float(i < solved)} for i in range(4)]
        record = {
            "run_id": f"{method}-0",
            "method": method,
            "loss": method.split()[0],
            "seed": 0,
            "benchmarks": {"mini/math": {"metrics": {"accuracy": solved / 4}, "items": items}},
            "status": "ok",
        }
        (quick / "records" / f"{method[:4]}-0.json").write_text(json.dumps(record))
    (quick / "study.json").write_text(json.dumps({"baseline": "sft", "knobs": []}))
    (quick / "table.md").write_text("| method | accuracy |\n| sft | 0.5 |\n")
    broken = root / "results" / "broken"
    (broken / "records").mkdir(parents=True)
    (broken / "records" / "bad.json").write_text('{"run_id": ')
    (broken / "study.json").write_text("{}")


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {
        p.relative_to(folder).as_posix(): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


def run_main(runner, args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """(exit code, stdout and stderr) of ``gsil-bench ARGS`` as a user runs it. The runner's
    ``invoke`` would hand back the UserError itself; ``main`` is what prints it."""
    monkeypatch.setattr(sys, "argv", ["gsil-bench", *args])
    with runner.isolation() as (_, _, output):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception:  # the corpus exists to find these: show them, do not crash
            code = -1
            sys.stderr.write(traceback.format_exc())
        sys.stdout.flush()
        sys.stderr.flush()
        return code, output.getvalue().decode("utf-8", errors="replace")


def test_the_corpus_is_large_and_its_ids_unique():
    ids = [case[0] for case in CASES]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)


@pytest.mark.parametrize(("name", "files", "args", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_results_untouched(
    name, files, args, expected, runner, tiny_run_config, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    write_results(tmp_path)
    for relative, content in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    before = snapshot(tmp_path / "results")

    code, output = run_main(
        runner, [a.replace("{tiny}", tiny_run_config) for a in args], monkeypatch
    )

    assert "Traceback" not in output, output
    lines = output.strip().splitlines()
    assert code == 2 and len(lines) == 1, (code, output)
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert snapshot(tmp_path / "results") == before
