"""Benchmark data as files: a local path or a file in a Hub repository, read as JSONL.

Questions, judge templates, reference answers and test sets are data, never pasted into the
code. A benchmark's source is either local (decided by :func:`gsil_bench.io.is_local`, the one
"Hub or local" rule) or a Hub name; a single file may also be written
``hf://datasets|spaces|models/OWNER/NAME/PATH`` and is then fetched from the Hub.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gsil_bench.errors import UserError
from gsil_bench.hub_access import offline_unless_reachable
from gsil_bench.io import checked_file, is_local, iter_jsonl_objects, read_jsonl

HF_PREFIX = "hf://"
HF_REPO_KINDS = {"datasets": "dataset", "spaces": "space", "models": "model"}


def resolve_file(source: str | Path) -> Path:
    """A local path, or ``hf://{datasets,spaces,models}/OWNER/NAME/PATH`` fetched from the Hub."""
    text = str(source)
    if text.startswith(HF_PREFIX):
        parts = text[len(HF_PREFIX) :].split("/", 3)
        if len(parts) < 4 or parts[0] not in HF_REPO_KINDS:
            raise UserError(f"{text}: expected hf://datasets|spaces|models/OWNER/NAME/PATH")
        offline_unless_reachable()
        from huggingface_hub import hf_hub_download

        repo_id = f"{parts[1]}/{parts[2]}"
        try:
            return Path(hf_hub_download(repo_id, parts[3], repo_type=HF_REPO_KINDS[parts[0]]))
        except Exception as exc:  # offline and not cached, no such repo or file
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"{text}: cannot fetch it from the Hugging Face Hub: {detail}"
            ) from None
    return checked_file(text)


def read_jsonl_file(source: str | Path) -> list[dict[str, Any]]:
    """Every object of a local or ``hf://`` .jsonl(.gz) file (errors name file and line)."""
    return read_jsonl(resolve_file(source))


def iter_jsonl_file(source: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``file:line``, object) for each record of a local or ``hf://`` .jsonl(.gz) file, for
    readers whose own errors name the line."""
    path = resolve_file(source)
    for line_no, record in iter_jsonl_objects(path):
        yield f"{path}:{line_no}", record


def find_file(directory: Path, names: Sequence[str]) -> Path | None:
    """The first of ``names`` (relative to ``directory``) that is a file, or None."""
    return next((directory / n for n in names if (directory / n).is_file()), None)


def hub_name(source: str | Path, default: str) -> str | None:
    """The Hub dataset a benchmark source names, or None when it is a local path.

    ``hub`` is the benchmark's ``default`` dataset and ``hub:NAME`` another one; any other
    source is local or a Hub name as :func:`gsil_bench.io.is_local` decides.
    """
    text = str(source)
    if text == "hub":
        return default
    if text.startswith("hub:"):
        return text.partition(":")[2] or default
    return None if is_local(text) else text
