"""Reaching the Hugging Face Hub without half a minute of retries.

Before a Hub lookup, :func:`offline_unless_reachable` opens one TCP connection to the Hub's
endpoint (2 s timeout, once per process). When that fails, it switches ``huggingface_hub`` and
``datasets`` to offline mode, as ``HF_HUB_OFFLINE=1`` would: their local caches still serve,
and anything not cached fails at once, where the libraries would otherwise retry for about 30
seconds. Behind a proxy (``HTTPS_PROXY``) a direct connection says nothing, so no probe runs.
:func:`load_hub_dataset` wraps ``datasets.load_dataset`` with that and one-line errors.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any
from urllib.parse import urlparse

from gsil_bench.errors import UserError

_TRUE = {"1", "true", "yes", "on"}
_CHECKED: dict[str, bool] = {}
PROBE_TIMEOUT_S = 2.0


def _env_offline() -> bool:
    return any(
        os.environ.get(name, "").strip().lower() in _TRUE
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def offline_unless_reachable() -> bool:
    """Whether Hub lookups run offline (set by the user, or the Hub did not answer)."""
    if _env_offline():
        return True
    if "offline" in _CHECKED:
        return _CHECKED["offline"]
    offline = False
    if not any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")):
        host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
        try:
            socket.create_connection((host or "huggingface.co", 443), PROBE_TIMEOUT_S).close()
        except OSError:
            offline = True
            _go_offline()
    _CHECKED["offline"] = offline
    return offline


def _go_offline() -> None:
    """Offline mode for this process: the variables for libraries not imported yet, their
    module constants for those already imported (they read the variables at import)."""
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[name] = "1"
    for module, names in (
        ("huggingface_hub.constants", ("HF_HUB_OFFLINE",)),
        ("datasets.config", ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")),
    ):
        loaded = sys.modules.get(module)
        for name in names:
            if loaded is not None and hasattr(loaded, name):
                setattr(loaded, name, True)


def load_hub_dataset(path: str, *, what: str, hint: str, **kwargs: Any) -> Any:
    """``datasets.load_dataset(path, **kwargs)``; any failure (offline and not cached, no such
    dataset, config or split) is one line: ``{what}: cannot load ... ; {hint}``."""
    offline = offline_unless_reachable()
    import datasets

    try:
        return datasets.load_dataset(path, **kwargs)
    except Exception as exc:  # network, missing dataset, bad config or split: all user-fixable
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = " (the Hub is unreachable or HF_HUB_OFFLINE is set, and it is not cached)"
        raise UserError(
            f"{what}: cannot load {path!r} from the Hugging Face Hub"
            f"{where if offline else ''}: {detail}; {hint}"
        ) from None
