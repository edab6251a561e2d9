"""A tiny sweep file builder shared by the study tests (the tiny run config as its base)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_run.yaml"


@pytest.fixture
def tiny_sweep(tmp_path: Path) -> Callable[..., Path]:
    """``tiny_sweep(methods, **extra)``: a one-seed sweep file over the tiny run config, with
    its cache under the test's tmp_path."""

    def write(methods: list[dict[str, Any]], **extra: Any) -> Path:
        base = {**yaml.safe_load(TINY.read_text()), "cache_dir": str(tmp_path / "cache")}
        spec = {"study": "tiny", "base": base, "methods": methods, "seeds": [0], **extra}
        path = tmp_path / "tiny.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path

    return write
