"""`gsil-bench`: the command-line entry point.

Each command lives in its own module exposing ``register(app)``. A :class:`UserError` anywhere
becomes one red line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from gsil_bench.errors import UserError

COMMAND_MODULES = ("losses", "train", "eval", "score", "sweep", "report")

app = typer.Typer(
    name="gsil-bench",
    help="Align LLMs from demonstrations: GSIL, SPIN, SFT and DPO-family losses on one backend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"gsil_bench.cli.{_name}").register(app)


def fail(message: str) -> None:
    """Print a user error as one line and exit 2. The message is text, not Rich markup: a path
    like ``runs/[draft]`` or a hint like ``gsil-bench[lm-eval]`` must print as it is."""
    console = Console(stderr=True, highlight=False)
    console.print("error:", style="bold red", end=" ")
    console.print(message, markup=False, soft_wrap=True)
    raise SystemExit(2)


def main() -> None:
    try:
        app()
    except UserError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted; completed work is kept")
        sys.exit(130)


if __name__ == "__main__":
    main()
