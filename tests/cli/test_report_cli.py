"""`gsil-bench report` through Typer's CliRunner, on a fresh app with only this command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gsil_bench.cli.report import register
from gsil_bench.errors import UserError

ITEMS = [f"q{i}" for i in range(10)]


@pytest.fixture
def app(command_app) -> typer.Typer:
    return command_app(register)


def write_study(folder: Path, baseline: str | None = "sft") -> Path:
    """sft solves 5 + seed items, spin 2 + seed, over two seeds."""
    (folder / "records").mkdir(parents=True)
    for method, solved in (("sft", 5), ("spin beta=1", 2)):
        for seed in range(2):
            count = solved + seed
            items = [{"id": q, "score": float(i < count)} for i, q in enumerate(ITEMS)]
            record = {
                "run_id": f"{method}-{seed}",
                "method": method,
                "loss": method.split()[0],
                "seed": seed,
                "benchmarks": {"mini/math": {"metrics": {"accuracy": count / 10}, "items": items}},
                "status": "ok",
            }
            (folder / "records" / f"{method[:4]}-{seed}.json").write_text(json.dumps(record))
    (folder / "study.json").write_text(json.dumps({"baseline": baseline, "knobs": []}))
    return folder


def test_report_by_name_prints_table_and_paths(app: typer.Typer, tmp_path: Path) -> None:
    study = write_study(tmp_path / "results" / "quick")
    args = ["report", "quick", "--results-dir", str(tmp_path / "results")]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "spin beta=1" in result.output and "sft (baseline)" in result.output
    assert "0.550 ± 0.635" in result.output  # 0.5, 0.6: t_{0.975,1} 12.7062 * 0.05 = 0.635
    for name in ("table.md", "table.csv", "table.tex", "manifest.json"):
        assert (study / name).is_file()
        assert f"wrote {study / name}" in result.output
    header = (study / "table.csv").read_text().splitlines()[0].split(",")
    for stat in ("p_value", "p_value_items", "mde", "snr"):  # issue 9's columns
        assert f"mini/math/accuracy:{stat}" in header
    assert "The instrument: signal, noise, power" in result.output


def test_report_by_path_with_baseline_option(app: typer.Typer, tmp_path: Path) -> None:
    study = write_study(tmp_path / "somewhere" / "mine", baseline=None)
    result = CliRunner().invoke(app, ["report", str(study), "--baseline", "spin beta=1"])
    assert result.exit_code == 0, result.output
    assert "baseline (spin beta=1)" in (study / "table.md").read_text()


def test_default_study_is_quickstart(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_study(tmp_path / "results" / "quickstart")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["report"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "results" / "quickstart" / "table.md").is_file()


def test_missing_study_names_path_and_existing_studies(app: typer.Typer, tmp_path: Path) -> None:
    write_study(tmp_path / "results" / "quick")
    write_study(tmp_path / "results" / "dq")
    args = ["report", "nope", "--results-dir", str(tmp_path / "results")]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, UserError)
    message = str(result.exception)
    assert str(tmp_path / "results" / "nope") in message
    assert message.endswith("dq, quick")


def test_unknown_baseline_is_a_user_error(app: typer.Typer, tmp_path: Path) -> None:
    study = write_study(tmp_path / "results" / "quick")
    result = CliRunner().invoke(app, ["report", str(study), "--baseline", "dpo"])
    assert isinstance(result.exception, UserError)
    assert "'dpo' is not a method" in str(result.exception)
