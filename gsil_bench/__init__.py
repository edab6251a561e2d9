"""gsil-bench: a benchmark and ablation suite for aligning LLMs from demonstrations."""

__version__ = "0.1.0"
