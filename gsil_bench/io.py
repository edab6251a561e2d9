"""Small I/O rules used everywhere: atomic writes, JSONL(.gz) reading, "Hub or local", versions.

One place for each, so that a half-written file, a malformed line or a path that looks like a
Hub name is handled the same way by the data loaders, the benchmarks and the study files.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from gsil_bench.errors import UserError

PACKAGES = ("gsil-bench", "torch", "transformers", "accelerate", "tokenizers", "optuna")


# --------------------------------------------------------------------------- writing


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it into place.

    Readers see the old file or the new one, never half of one (``os.replace`` is atomic on
    one file system), and a crash mid-write leaves the previous version intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, data: Any, *, indent: int | None = 1) -> None:
    """:func:`atomic_write_text` of ``data`` as JSON (numpy/torch scalars written as floats)."""
    atomic_write_text(path, json.dumps(data, indent=indent, default=float))


# --------------------------------------------------------------------------- reading


def iter_jsonl_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, text without its line ending) for each non-blank line of a .jsonl or
    .jsonl.gz file, undecoded: for readers that deal with a broken line on its own (the data
    loaders can skip one). Every way the file itself can be unreadable becomes one
    :class:`UserError` naming it: missing, a directory, not UTF-8, a truncated gzip.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a .jsonl file")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if line.strip():
                    yield line_no, line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise UserError(f"{path}: truncated or corrupt gzip file ({exc})") from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, decoded value) for each non-blank line of a .jsonl or .jsonl.gz file.

    Every way a file can be unreadable becomes one :class:`UserError` naming the file (and the
    line and column for broken JSON): missing, a directory, not UTF-8, a truncated gzip.
    """
    for line_no, line in iter_jsonl_lines(path):
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as exc:
            where = f"{Path(path).expanduser()}:{line_no}"
            raise UserError(f"{where}: not valid JSON ({exc.msg}, column {exc.colno})") from None


def iter_jsonl_objects(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """:func:`iter_jsonl`, requiring every line to be a JSON object."""
    for line_no, value in iter_jsonl(path):
        if not isinstance(value, dict):
            raise UserError(f"{path}:{line_no}: expected a JSON object")
        yield line_no, value


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every object of a .jsonl(.gz) file, in order."""
    return [record for _, record in iter_jsonl_objects(path)]


def read_json(path: str | Path) -> Any:
    """A JSON file, with one clear error when it is missing or broken."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})"
        ) from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason})") from None


# --------------------------------------------------------------------------- Hub or local


def is_local(source: str | Path) -> bool:
    """The one "Hub or local" rule: is ``source`` meant as a path on this machine?

    Anything that exists here is local; so is anything written like a path (``./x``, ``/x``,
    ``~/x``, more than one ``/``, or a data-file suffix), so that a typo in a path gives "no such
    file" rather than a confusing Hub error. Otherwise (``owner/name`` or a bare name) it is a
    Hub name.
    """
    text = str(source)
    if Path(text).expanduser().exists():
        return True
    return (
        text.startswith((".", "/", "~"))
        or text.count("/") > 1
        or text.endswith((".jsonl", ".json", ".gz", ".parquet", ".yaml", ".yml", ".txt"))
    )


# --------------------------------------------------------------------------- environment


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on (absent ones left out)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def git_commit() -> str | None:
    """The checked-out commit of the current directory's repository, if any."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_info() -> dict[str, Any]:
    """Where a run ran: platform, Python, CPUs and the device torch would use."""
    import torch

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }
