"""gsil-bench: a benchmark and ablation suite for aligning LLMs from demonstrations."""

__version__ = "0.1.0"


def _quiet_library_logs() -> None:
    """Keep transformers' per-file progress bars out of our own Rich progress output."""
    import os

    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


_quiet_library_logs()
