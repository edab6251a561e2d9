"""The one record type every loader, transform and stage of the pipeline passes around."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, str]
ROLES = ("system", "user", "assistant")


@dataclass
class Demonstration:
    """One prompt and the response a demonstrator gave to it.

    ``prompt`` is a list of chat messages ending with a user turn (earlier turns may hold a
    whole conversation); ``response`` is the demonstration, the "real" sample of GSIL and
    SPIN. ``rejected`` is a lower-quality response where the data has one (preference data,
    SPIN's released ``generated`` replies, or the mini suite's deliberately flawed answers);
    it feeds the ``swap_rejected`` data-quality ablation, DPO-style comparisons and
    ``data.negatives: rejected`` (a pre-made negative instead of a self-generated one).
    ``meta`` records where the record came from (``source`` as "file:line", ``format``,
    ``domain``, ...).
    """

    prompt: list[Message]
    response: str
    rejected: str | None = None
    id: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Loaders turn bad user data into UserError before this point; reaching here with a
        # malformed record is a bug in the calling code, hence ValueError.
        if not self.prompt or self.prompt[-1].get("role") != "user":
            raise ValueError(f"Demonstration {self.id!r}: prompt must end with a user turn")
        if not isinstance(self.response, str):
            raise ValueError(f"Demonstration {self.id!r}: response must be a string")

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict in the ``{"prompt", "response", ...}`` format the loader reads."""
        record: dict[str, Any] = {
            "id": self.id,
            "prompt": [dict(m) for m in self.prompt],
            "response": self.response,
        }
        if self.rejected is not None:
            record["rejected"] = self.rejected
        if self.meta:
            record["meta"] = dict(self.meta)
        return record


def demonstrations_fingerprint(demos: Iterable[Demonstration]) -> str:
    """The data fingerprint of a run: sha256 over what a model is trained on, in order
    (prompt, response, rejected of each record), as 20 hex digits.

    ``id`` and ``meta`` are left out on purpose: they say what a record is called and where it
    came from, not what a model learns, so renaming or moving a data file leaves it unchanged.
    The bytes hashed must not change either: run records of earlier runs are compared by it.
    """
    digest = hashlib.sha256()
    for demo in demos:
        content = [demo.prompt, demo.response, demo.rejected]
        digest.update(json.dumps(content, sort_keys=True).encode())
    return digest.hexdigest()[:20]
