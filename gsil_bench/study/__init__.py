"""Optuna studies from sweep files: spec, storage and queue, trials, workers, live view."""
