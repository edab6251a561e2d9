"""``gsil-bench train --push-to-hub REPO``: the trained model's folder (weights or adapters,
tokenizer, its model card) uploaded to a Hugging Face Hub model repository.

The token comes from ``huggingface_hub``'s usual places (``HF_TOKEN``, ``hf auth login``) and
is never read or written by gsil-bench. A failed upload is one line and leaves the run as it
was: its record, checkpoints and model folder are already on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gsil_bench.errors import UserError


def check_repo_id(repo_id: str) -> None:
    """One line, before any training, when ``repo_id`` is not ``owner/name``."""
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts) or any(c.isspace() for c in repo_id):
        raise UserError(f"--push-to-hub: {repo_id!r} is not a repository name (owner/name)")


def push_model(folder: Path, repo_id: str, *, private: bool = False, api: Any = None) -> str:
    """Create ``repo_id`` (kept when it exists) and upload ``folder`` to it; returns the
    repository's URL. ``api``: an ``HfApi``-like client (tests pass a stub)."""
    check_repo_id(repo_id)
    if not (folder / "config.json").exists() and not (folder / "adapter_config.json").exists():
        raise UserError(f"--push-to-hub: {folder} holds no saved model to upload")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type="model",
            commit_message=f"gsil-bench: upload {folder.name} of {folder.parent.parent.name}",
        )
    except (OSError, ValueError) as exc:  # HTTP errors, no token, offline mode
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"--push-to-hub {repo_id}: the upload failed ({first}); the run is saved and its "
            f"model is at {folder}"
        ) from None
    return str(url)
