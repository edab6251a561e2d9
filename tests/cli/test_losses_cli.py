"""`gsil-bench losses`: the table and the JSON listing of the registry."""

from __future__ import annotations

import importlib
import json

import pytest

from gsil_bench import registry
from gsil_bench.cli.losses import register
from gsil_bench.registry import available, describe
from gsil_bench.types import LogpBatch, LossOutput


def test_table_lists_every_loss(runner, command_app, wide):
    result = runner.invoke(command_app(register), ["losses"], env=wide)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for name in available():
        assert any(f" {name} " in line for line in lines), name
    logistic = next(line for line in lines if " gsil-logistic " in line)
    assert "beta=0.1, shift=0.0" in logistic
    assert "yes" in logistic
    sft = next(line for line in lines if " sft " in line)
    assert " no " in sft


def test_table_fits_a_narrow_terminal(runner, command_app, wide):
    result = runner.invoke(command_app(register), ["losses"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    # Names never wrap, whatever the width.
    assert "gsil-exponential" in result.output


def test_piped_output_keeps_each_loss_on_one_line(runner, command_app, monkeypatch):
    # CliRunner's stdout is not a terminal: as when piped to grep or a file.
    monkeypatch.delenv("COLUMNS", raising=False)
    result = runner.invoke(command_app(register), ["losses"])
    assert result.exit_code == 0, result.output
    ipo = [line for line in result.output.splitlines() if " ipo " in line]
    # The whole formula of IPO (as in its docstring) on its one row.
    assert len(ipo) == 1 and "(r_w - r_l - 1/(2*beta))**2" in ipo[0]


def test_json_is_the_registry_description(runner, command_app, wide):
    result = runner.invoke(command_app(register), ["losses", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows == json.loads(json.dumps(describe()))
    assert [row["name"] for row in rows] == available()
    simpo = next(row for row in rows if row["name"] == "simpo")
    assert simpo["hparams"] == {"beta": 2.0, "gamma": 1.0}
    assert simpo["needs_reference"] is False
    assert simpo["needs_generated"] is True


@pytest.fixture
def runtime_loss():
    """A loss registered at run time, as a plugin would be; removed afterwards."""

    def margin_nll(batch: LogpBatch, *, margin: tuple[float, float] = (0.0, 1.0)) -> LossOutput:
        """Test loss with a non-JSON default."""
        return LossOutput(-batch.policy_real)

    registry.register_loss("test-cli-plugin", needs_reference=False, needs_generated=False)(
        margin_nll
    )
    yield "test-cli-plugin"
    registry.LOSSES.forget("test-cli-plugin")


def test_plugins_are_listed(runner, command_app, wide, runtime_loss):
    table = runner.invoke(command_app(register), ["losses"], env=wide)
    assert runtime_loss in table.output
    listing = runner.invoke(command_app(register), ["losses", "--json"])
    assert listing.exit_code == 0, listing.output
    row = next(r for r in json.loads(listing.output) if r["name"] == runtime_loss)
    # Tuples are valid JSON lists; the listing must never crash on a plugin's default.
    assert row["hparams"] == {"margin": [0.0, 1.0]}


def test_through_the_real_app_when_all_commands_exist(runner, command_app, wide):
    try:
        app = importlib.import_module("gsil_bench.cli.app").app
    except ModuleNotFoundError as exc:  # another command's module is not written yet
        if not (exc.name or "").startswith("gsil_bench.cli."):
            raise
        pytest.skip(f"gsil_bench.cli.app cannot import yet: {exc.name} is missing")
    result = runner.invoke(app, ["losses", "--json"])
    assert result.exit_code == 0, result.output
    assert [row["name"] for row in json.loads(result.output)] == available()
