"""The CLI test fixtures (tests/cli/conftest.py), shared with the bad-inputs corpus."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "gsil_bench_tests_cli_conftest", Path(__file__).resolve().parents[1] / "cli" / "conftest.py"
)
assert _SPEC is not None and _SPEC.loader is not None
_CLI = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_CLI)

runner = _CLI.runner
tiny_run_config = _CLI.tiny_run_config
