"""The mini suite's config sections: strict, frozen, and a leaf module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

from gsil_bench.minisuite import config as config_module
from gsil_bench.minisuite.config import MiniSuiteConfig, TinyModelConfig


def test_config_is_strict_and_frozen():
    with pytest.raises(ValidationError):
        MiniSuiteConfig(n_bse=3)
    with pytest.raises(ValidationError):
        MiniSuiteConfig(domains=["math", "poetry"])
    with pytest.raises(ValidationError):
        MiniSuiteConfig(math_min_steps=5, math_max_steps=3)
    with pytest.raises(ValidationError):
        MiniSuiteConfig().seed = 3


def test_tiny_model_config_is_strict_and_frozen():
    with pytest.raises(ValidationError):
        TinyModelConfig(vocab=3)
    with pytest.raises(ValidationError):
        TinyModelConfig().hidden_size = 3


def test_config_module_imports_nothing_of_gsil_bench():
    # gsil_bench.config imports this module; anything of gsil_bench here could close a cycle.
    tree = ast.parse(Path(config_module.__file__).read_text())
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.append(node.module or "")
        elif isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
    assert not [name for name in imported if name.startswith("gsil_bench")]
