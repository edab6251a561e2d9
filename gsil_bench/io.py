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
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from gsil_bench.errors import UserError

PACKAGES = ("gsil-bench", "torch", "transformers", "accelerate", "tokenizers", "optuna")


# --------------------------------------------------------------------------- writing


def _umask() -> int:
    """The process's umask: from /proc on Linux (reading it with ``os.umask`` means setting
    it for a moment, which a file created by another thread at that moment would see)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it into place.

    Readers see the old file or the new one, never half of one (``os.replace`` is atomic on
    one file system), and a crash mid-write leaves the previous version intact. The file gets
    the permissions a plain ``open`` would give it (``mkstemp`` alone makes it 0600, which
    hid tables and reports from other users and from a web server serving ``results/``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
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
#
# Every input file is read through the functions below, so that each way a file can be
# unreadable is one UserError naming the file (and the line, where there is one): missing, a
# directory, not readable, not UTF-8 (line and column of the bad byte), a truncated or corrupt
# gzip, broken JSON (line and column, counted in characters from the start of the line).


@contextmanager
def file_lock(path: str | Path, *, wait: bool = True) -> Iterator[bool]:
    """An exclusive flock on ``path`` among the processes of this machine, released when the
    block ends or the process dies; yields whether it was taken (always, when ``wait``).
    Without ``fcntl`` (not POSIX) it is taken at once: one process per folder there."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield True
        return
    with Path(path).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def checked_file(path: str | Path, what: str = "file") -> Path:
    """``path`` (``~`` expanded) if it is a file; otherwise one UserError naming it."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a {what}")
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if not path.is_file():
        raise UserError(f"{path}: not a regular file, expected a {what}")
    return path


def _decode(raw: bytes, path: Path, first_line: int = 1) -> str:
    """UTF-8 text of ``raw`` (a BOM at the start of the file dropped); a bad byte is a
    UserError naming its line and column (``raw`` starts at line ``first_line``)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = first_line + before.count(b"\n")
        line_start = before.rfind(b"\n") + 1
        column = len(before[line_start:].decode("utf-8", errors="replace")) + 1
        raise UserError(
            f"{path}:{line}: not UTF-8 text ({exc.reason} at column {column}); "
            "save the file as UTF-8"
        ) from None
    return text.removeprefix("\ufeff") if first_line == 1 else text


def _gzip_error(path: Path, exc: BaseException) -> UserError:
    return UserError(f"{path}: truncated or corrupt gzip file ({exc})")


def _os_error(path: Path, exc: OSError) -> UserError:
    return UserError(f"{path}: cannot read ({exc.strerror or exc})")


def read_text(path: str | Path, what: str = "file") -> str:
    """The whole of a UTF-8 text file (``.gz`` decompressed), with the errors above."""
    path = checked_file(path, what)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise _gzip_error(path, exc) from None
    except OSError as exc:
        raise _os_error(path, exc) from None
    return _decode(raw, path)


def iter_lines(path: str | Path, what: str = "file") -> Iterator[tuple[int, str]]:
    """(line number, text without its line ending) for each non-blank line of a UTF-8 text
    file (``.gz`` decompressed), undecoded as JSON: for readers that deal with a broken line
    on their own (the data loaders can skip one). Lines are decoded one at a time, so a file of
    any size streams and a bad byte names its line."""
    path = checked_file(path, what)
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            for line_no, raw in enumerate(handle, 1):
                line = _decode(raw, path, line_no).rstrip("\r\n")
                if line.strip():
                    yield line_no, line
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise _gzip_error(path, exc) from None
    except OSError as exc:
        raise _os_error(path, exc) from None


def iter_jsonl_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """:func:`iter_lines` of a .jsonl or .jsonl.gz file."""
    return iter_lines(path, ".jsonl file")


def json_error(exc: json.JSONDecodeError, where: str) -> UserError:
    """The one message for broken JSON: ``where`` (``file:line``), what and the column."""
    return UserError(f"{where}: not valid JSON ({exc.msg}, column {exc.colno})")


def decode_json_line(line: str, path: str | Path, line_no: int) -> Any:
    """One JSON value from line ``line_no`` of ``path`` (a UserError naming both if broken)."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise json_error(exc, f"{Path(path).expanduser()}:{line_no}") from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, decoded value) for each non-blank line of a .jsonl or .jsonl.gz file.

    Every way a file can be unreadable becomes one :class:`UserError` naming the file (and the
    line and column for broken JSON): missing, a directory, not UTF-8, a truncated gzip.
    """
    for line_no, line in iter_jsonl_lines(path):
        yield line_no, decode_json_line(line, path, line_no)


def iter_jsonl_objects(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """:func:`iter_jsonl`, requiring every line to be a JSON object."""
    for line_no, value in iter_jsonl(path):
        if not isinstance(value, dict):
            where = f"{Path(path).expanduser()}:{line_no}"
            raise UserError(f"{where}: expected a JSON object, got {_json_type(value)}")
        yield line_no, value


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every object of a .jsonl(.gz) file, in order."""
    return [record for _, record in iter_jsonl_objects(path)]


def read_json(path: str | Path) -> Any:
    """A JSON file, with one clear error when it is missing or broken."""
    path = Path(path).expanduser()
    text = read_text(path, "JSON file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise json_error(exc, f"{path}:{exc.lineno}") from None


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


def cpu_model() -> str:
    """The CPU's model name ("Intel(R) Xeon(R) Processor", "AMD EPYC"): machines of one kind
    can differ threefold in speed (and in the last bits of every result) by it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """Where a run ran: platform, CPU, Python, threads and the device torch would use."""
    import torch

    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }
