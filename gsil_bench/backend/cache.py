"""A content-keyed disk cache for the costly stages (base model, generations, reference
log-probs, the base model's evaluation). Keys hash everything the output depends on, including
a per-stage code version; entries are written to a temporary folder and renamed into place, so
a half-written entry is never read, and concurrent writers of the same key simply race to an
identical result."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import gsil_bench
from gsil_bench.io import file_lock

# Bump a stage's version when its code changes what it produces (base-eval 2: results name
# their continuous metric; generated 2 and reference 2: keys name dtype, precision, versions).
STAGE_VERSIONS = {"base": 1, "generated": 2, "reference": 2, "base-eval": 2}


def code_versions(*packages: str) -> dict[str, str]:
    """The versions of the code that computes a model's outputs: gsil-bench, torch,
    transformers and ``packages`` (e.g. vllm), "absent" for one not installed. A new kernel
    or a changed default changes generations and log-probs, so cache keys include them."""
    versions = {"gsil-bench": gsil_bench.__version__}
    for name in ("torch", "transformers", *packages):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "absent"
    return versions


def content_key(stage: str, inputs: dict[str, Any]) -> str:
    payload = json.dumps(
        {"stage": stage, "version": STAGE_VERSIONS.get(stage, 1), "inputs": inputs},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


class DiskCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def lock(self, stage: str, key: str) -> contextlib.AbstractContextManager[bool]:
        """Held while one process of this machine computes the entry of ``key``: the others
        wait for it and then read its entry (two sweep workers that need the same negatives
        would otherwise both generate them)."""
        return file_lock(self.root / ".locks" / stage / f"{key}.lock")

    def get(self, stage: str, key: str) -> Path | None:
        path = self.path(stage, key)
        return path if (path / "COMPLETE").exists() else None

    def put(self, stage: str, key: str, write: Callable[[Path], None], meta: dict) -> Path:
        """Run ``write(tmp_dir)`` and atomically publish the folder as the entry."""
        final = self.path(stage, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
        try:
            write(tmp)
            (tmp / "COMPLETE").write_text(json.dumps(meta, sort_keys=True, default=str))
            try:
                os.replace(tmp, final)
            except OSError:  # another writer got there first; its entry is identical
                if self.get(stage, key) is None:
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final
