"""Finding and loading study folders: records read as RunRecords, malformed ones named."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from gsil_bench.errors import UserError
from gsil_bench.report.study import find_study, list_studies, load_study, stage_seconds


def test_bad_record_names_file(tmp_path: Path, kit: SimpleNamespace) -> None:
    folder = kit.write(tmp_path / "s", [], {})
    (folder / "records" / "broken.json").write_text("{not json")
    with pytest.raises(UserError, match=r"broken\.json:1: not valid JSON"):
        load_study(folder)
    record = {"run_id": "sft-0", "method": "sft", "seed": 0}
    (folder / "records" / "broken.json").write_text(json.dumps(record))
    with pytest.raises(UserError, match=r"broken\.json: missing key 'loss'"):
        load_study(folder)
    (folder / "records" / "broken.json").write_text(json.dumps([record]))
    with pytest.raises(UserError, match=r"broken\.json: expected a JSON object"):
        load_study(folder)
    record = kit.record("sft", "sft", 0, set())
    record["benchmarks"]["mini/math"].pop("metrics")
    (folder / "records" / "broken.json").write_text(json.dumps(record))
    with pytest.raises(UserError, match=r"benchmarks\['mini/math'\] has no 'metrics' mapping"):
        load_study(folder)
    (folder / "records" / "broken.json").unlink()
    with pytest.raises(UserError, match="no run records yet"):
        load_study(folder)


def test_failed_run_record_needs_only_method_and_seed(study_dir: Path) -> None:
    study = load_study(study_dir)
    assert len(study.records) == 12
    assert study.failures[-1] == {
        "method": "spin beta=5",
        "seed": 1,
        "reason": "out of memory",
        "status": "failed",
        "record": "012.json",
    }
    (study_dir / "records" / "012.json").write_text(json.dumps({"status": "failed", "seed": 1}))
    with pytest.raises(UserError, match=r"012\.json: missing key 'method'"):
        load_study(study_dir)


def test_records_keep_their_files_in_name_order(study_dir: Path) -> None:
    study = load_study(study_dir)
    assert [path.name for path, _ in study.record_files] == [f"{i:03d}.json" for i in range(12)]
    assert study.records[3].method == "gsil-logistic beta=1" and study.records[3].seed == 0


def test_stage_seconds_sum_over_runs(study_dir: Path) -> None:
    """12 finished runs x (1.5, 2.0, 0.25) s; keys sorted."""
    assert stage_seconds(load_study(study_dir).records) == {
        "evaluation_s": 3.0,
        "generation_s": 18.0,
        "training_s": 24.0,
    }


def test_find_study_by_name_or_path(study_dir: Path, knob_dir: Path) -> None:
    results = study_dir.parent
    assert find_study("quick", results) == results / "quick"
    assert find_study(str(knob_dir), Path("/nonexistent")) == knob_dir
    assert list_studies(results) == ["dq", "quick"]
    with pytest.raises(
        UserError, match=r"no study folder at .*missing; studies under .*: dq, quick"
    ):
        find_study("missing", results)
