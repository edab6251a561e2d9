"""Fixtures shared by the CLI tests: a runner and an app holding only the command under test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

TINY_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_run.yaml"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def wide() -> dict[str, str]:
    """An environment wide enough that Rich puts each table row on one line."""
    return {"COLUMNS": "200"}


@pytest.fixture
def command_app() -> Callable[[Callable[[typer.Typer], None]], typer.Typer]:
    """``command_app(register)``: a fresh app with only the command ``register`` adds, so a
    test does not depend on the other commands."""

    def build(register: Callable[[typer.Typer], None]) -> typer.Typer:
        app = typer.Typer()

        @app.callback()
        def root() -> None:
            """A callback keeps the command a subcommand, as in the real app."""

        register(app)
        return app

    return build


@pytest.fixture
def tiny_run_config() -> str:
    """The tiny-model run config the end-to-end CLI tests train with."""
    return str(TINY_RUN)
