"""Benchmarks (one registered module each), judging, the code sandbox, target resolution, the
lm-eval bridge and result records."""
