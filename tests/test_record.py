"""The typed run record and the run folder."""

from __future__ import annotations

import json

import pytest

from gsil_bench.errors import UserError
from gsil_bench.record import SCHEMA_VERSION, RunDir, RunRecord


def _record(**extra):
    return RunRecord(run_id="r1", loss="spin", seed=3, **extra)


def test_round_trip_keeps_every_field(tmp_path):
    record = _record(
        method="spin beta=1 subsample=0.5",
        series="spin beta=1",
        knobs={"data.quality.subsample": 0.5},
        benchmarks={"mini/math": {"metrics": {"accuracy": 0.25}, "items": []}},
        timings={"training_s": 1.5},
    )
    record.write(tmp_path / "r.json")
    again = RunRecord.read(tmp_path / "r.json")
    assert again == record
    assert json.loads((tmp_path / "r.json").read_text())["schema_version"] == SCHEMA_VERSION


def test_method_and_series_default_to_the_loss():
    record = _record()
    assert (record.method, record.series) == ("spin", "spin")
    assert _record(method="spin beta=1").series == "spin beta=1"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "expected a JSON object"),
        ({"run_id": "x", "loss": "sft"}, "missing key 'seed'"),
        (
            {"run_id": "x", "loss": "sft", "seed": 0, "benchmarks": {"b": {"items": []}}},
            r"benchmarks\['b'\] has no 'metrics' mapping",
        ),
        ({"run_id": "x", "loss": "sft", "seed": "zero"}, "key 'seed'"),
    ],
)
def test_malformed_records_name_the_file_and_key(data, message):
    with pytest.raises(UserError, match=message) as caught:
        RunRecord.parse(data, "records/r.json")
    assert str(caught.value).startswith("records/r.json: ")


def test_run_dir_claims_a_folder_for_one_config(tmp_path):
    run_dir = RunDir(tmp_path / "run")
    run_dir.claim("fp-a", "seed: 0\n")
    run_dir.claim("fp-a", "seed: 0\n")  # the same config may come back (resume)
    assert run_dir.config_yaml.read_text() == "seed: 0\n"
    with pytest.raises(UserError, match="different config"):
        run_dir.claim("fp-b", "seed: 1\n")


def test_round_is_complete_only_once_marked(tmp_path):
    run_dir = RunDir(tmp_path)
    run_dir.model_dir(1).mkdir(parents=True)
    assert not run_dir.round_complete(1)
    run_dir.mark_round_complete(1, {"steps": 7})
    assert run_dir.round_complete(1) and run_dir.round_facts(1) == {"steps": 7}
    assert run_dir.model_dir(2) == tmp_path / "round-2" / "model"


def test_finished_result_only_for_the_same_config(tmp_path):
    run_dir = RunDir(tmp_path)
    assert run_dir.finished_result("fp") is None
    run_dir.write_result(_record(fingerprints={"config": "fp"}))
    assert run_dir.finished_result("fp") is not None
    assert run_dir.finished_result("other") is None
