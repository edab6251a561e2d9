"""Faults a sweep meets and survives, in process: a study folder of another sweep file, a
configuration error every trial shares, a full disk, failed runs recorded and tried again."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import yaml

import gsil_bench.io
from gsil_bench.errors import UserError
from gsil_bench.record import RunRecord
from gsil_bench.study.driver import run_sweep
from gsil_bench.study.spec import load_sweep
from gsil_bench.study.storage import open_study, paths_for


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (the journal's lock files aside) and its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def _sweep(path: Path, results: Path, runs: Path, **kw) -> Path:
    return run_sweep(path, results_dir=results, runs_dir=runs, **kw)


# --------------------------------------------------------------------------- one spec


def test_a_study_folder_of_another_sweep_file_is_refused(tiny_sweep, tmp_path):
    results, runs = tmp_path / "results", tmp_path / "runs"
    first = tiny_sweep([{"loss": "sft"}], controls={"base": False})
    out = _sweep(first, results, runs)
    before = _files(out)
    assert json.loads((out / "sweep.json").read_text())["sweep_file"] == str(first)

    other = tmp_path / "other.yaml"
    spec = yaml.safe_load(first.read_text())
    other.write_text(yaml.safe_dump({**spec, "seeds": [0, 1]}))  # same study name, more seeds
    with pytest.raises(UserError) as err:
        _sweep(other, results, runs)
    message = str(err.value)
    assert "\n" not in message
    assert f"{out} holds study 'tiny' made from sweep file {first}" in message
    assert f"{other} differs from it" in message
    assert _files(out) == before  # nothing written

    # The same sweep file again: a resume (nothing left to run), not a refusal.
    _sweep(first, results, runs)
    assert (out / "table.csv").read_bytes() == before["table.csv"]


def test_a_folder_from_before_spec_hashes_gets_one(tiny_sweep, tmp_path):
    results, runs = tmp_path / "results", tmp_path / "runs"
    path = tiny_sweep([{"loss": "sft"}], controls={"base": False})
    out = _sweep(path, results, runs)
    (out / "sweep.json").unlink()
    summary = json.loads((out / "study.json").read_text())
    del summary["spec_sha256"]
    (out / "study.json").write_text(json.dumps(summary))
    _sweep(path, results, runs)  # accepted, and the hash stored
    assert json.loads((out / "sweep.json").read_text())["sweep_file"] == str(path)


# --------------------------------------------------------------------------- failed runs


def test_a_failed_run_leaves_a_failed_record_and_is_tried_again(tiny_sweep, tmp_path):
    path = tiny_sweep(
        # exp(z) overflows at this shift: the run fails in training.
        [{"loss": "gsil-exponential", "params": {"loss.params.shift": 1.0e4}}, {"loss": "sft"}],
        controls={"base": False},
    )
    results, runs = tmp_path / "results", tmp_path / "runs"
    _sweep(path, results, runs)
    failed = [RunRecord.read(p) for p in runs.rglob("result.json")]
    failed = [r for r in failed if r.status == "failed"]
    assert len(failed) == 1
    record = failed[0]
    assert record.loss == "gsil-exponential" and record.stage == "training"
    assert record.reason.startswith("NonFiniteLossError: loss 'gsil-exponential'")
    assert not record.benchmarks and "training_s" in record.timings
    result_json = Path(record.output_dir) / "result.json"
    stamp = result_json.stat().st_mtime_ns
    _sweep(path, results, runs)  # the failed run is run again, and fails again
    assert result_json.stat().st_mtime_ns != stamp
    assert RunRecord.read(result_json).status == "failed"


def test_a_failed_record_in_the_study_is_not_a_finished_run(tiny_sweep, tmp_path):
    """A record file with status failed (a control's, or one left by an older version) is run
    again rather than read as a result."""
    from gsil_bench.study.trial import record_path_of, run_or_reuse

    spec = load_sweep(tiny_sweep([{"loss": "sft"}], controls={"base": False}))
    paths = paths_for(spec, tmp_path / "results", tmp_path / "runs")
    from gsil_bench.study.spec import run_config_for

    config = run_config_for(spec, spec.methods[0], {}, 0, "here")
    record_path = record_path_of(config, paths)
    record_path.parent.mkdir(parents=True)
    record_path.write_text(json.dumps({"method": "sft", "seed": 0, "status": "failed"}))
    record = run_or_reuse(config, {"method": "sft"}, paths)
    assert record.status == "ok" and record.benchmarks
    assert RunRecord.read(record_path).status == "ok"


# --------------------------------------------------------------------------- config errors


def test_a_configuration_error_every_trial_meets_stops_the_sweep(tiny_sweep, tmp_path):
    """The base data file is missing: the controls (base config) fail on it, the sft trial
    (data.source: mini) completes, the first trial that meets the missing file stops the
    sweep; the others stay queued, and the report of an earlier sweep is untouched."""
    missing = tmp_path / "gone" / "demos.jsonl"
    path = tiny_sweep(
        [
            {"loss": "sft", "label": "sft-mini", "params": {"data.source": "mini"}},
            {"loss": "sft"},
            {"loss": "spin", "params": {"loss.params.beta": 1.0}},
            {"loss": "gsil-logistic", "params": {"loss.params.beta": 1.0}},
        ]
    )
    spec = yaml.safe_load(path.read_text())
    spec["base"]["data"]["source"] = str(missing)
    path.write_text(yaml.safe_dump(spec))
    results, runs = tmp_path / "results", tmp_path / "runs"
    earlier = results / "tiny"
    earlier.mkdir(parents=True)
    report = {"table.csv": "method,seeds\nsft,0\n", "table.md": "| sft |\n"}
    for name, text in report.items():
        (earlier / name).write_text(text)

    with pytest.raises(UserError) as err:
        _sweep(path, results, runs)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("study 'tiny': stopped after trial 1: ")
    assert f"{missing}" in message and "every trial fails with this same configuration error"
    for name, text in report.items():
        assert (earlier / name).read_text() == text
    assert not (earlier / "study.json").exists()
    loaded = load_sweep(path)
    study = open_study(loaded, paths_for(loaded, results, runs), None)
    states = [(t.params.get("point"), t.state.name) for t in study.trials]
    assert states[:2] == [(0, "COMPLETE"), (1, "FAIL")]
    assert [s for _, s in states[2:]] == ["WAITING", "WAITING"]  # never run
    records = [json.loads(p.read_text()) for p in (earlier / "records").glob("*.json")]
    assert sorted(r["method"] for r in records) == ["base", "sft-mini"]
    assert [r["status"] for r in records if r["method"] == "base"] == ["failed"]


# --------------------------------------------------------------------------- a full disk


class _DiskFullUnder:
    """Stands in for ``os`` inside gsil_bench.io: a file opened under ``root`` takes half of
    what is written to it, then the disk is full (ENOSPC), as a real full disk behaves."""

    def __init__(self, root: Path) -> None:
        self.root = str(root.resolve())

    def __getattr__(self, name: str):
        return getattr(os, name)

    def fdopen(self, fd: int, *args, **kwargs):
        handle = os.fdopen(fd, *args, **kwargs)
        if not os.readlink(f"/proc/self/fd/{fd}").startswith(self.root):
            return handle
        real_write = handle.write

        def write(text):
            real_write(text[: len(text) // 2])
            handle.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        handle.write = write
        return handle


needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")


@needs_proc
def test_a_full_disk_while_writing_the_report_is_one_line(tiny_sweep, tmp_path, monkeypatch):
    results, runs = tmp_path / "results", tmp_path / "runs"
    path = tiny_sweep([{"loss": "sft"}], controls={"base": False})
    out = _sweep(path, results, runs)
    before = _files(out)
    monkeypatch.setattr(gsil_bench.io, "os", _DiskFullUnder(results))
    with pytest.raises(UserError) as err:
        _sweep(path, results, runs)  # nothing to run: the summary is the first write
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{out}: no space left on device")
    assert "run the sweep again" in message
    after = _files(out)
    # The journal is Optuna's append-only log (each start appends to it); every other file is
    # as it was, and no partial or temporary file was left.
    assert after.pop("study.journal").startswith(before.pop("study.journal"))
    assert after == before


@needs_proc
def test_a_full_disk_during_a_sweep_stops_it_and_a_rerun_resumes(tiny_sweep, tmp_path, monkeypatch):
    results, runs = tmp_path / "results", tmp_path / "runs"
    path = tiny_sweep(
        [{"loss": "sft"}, {"loss": "spin", "params": {"loss.params.beta": 1.0}}],
        controls={"base": False},
    )
    (results / "tiny").mkdir(parents=True)
    # The first sweep writes sweep.json, then fills the disk with the first run record.
    original = gsil_bench.io.atomic_write_text

    def full_after_sweep_json(target, text):
        if Path(target).parent.name == "records":
            monkeypatch.setattr(gsil_bench.io, "os", _DiskFullUnder(results))
        original(target, text)

    monkeypatch.setattr(gsil_bench.io, "atomic_write_text", full_after_sweep_json)
    with pytest.raises(UserError, match=r"no space left on device.*run the sweep again"):
        _sweep(path, results, runs)
    records = results / "tiny" / "records"
    assert list(records.iterdir()) == []  # no partial record, no temporary file
    spec = load_sweep(path)
    study = open_study(spec, paths_for(spec, results, runs), None)
    assert [t.state.name for t in study.trials] == ["FAIL", "WAITING"]  # stopped at once

    monkeypatch.undo()  # space freed
    out = _sweep(path, results, runs)
    assert sorted(RunRecord.read(p).method for p in records.glob("*.json")) == [
        "sft",
        "spin beta=1",
    ]
    assert json.loads((out / "study.json").read_text())["failures"] == []
