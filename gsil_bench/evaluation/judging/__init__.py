"""Judges for MT-Bench and HH safety: HTTP endpoints, local models, reward models, templates."""
