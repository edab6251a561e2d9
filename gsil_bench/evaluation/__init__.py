"""Scorers per domain, the code sandbox, judges, the lm-eval bridge and result records."""
