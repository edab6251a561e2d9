"""Model loading and building, log-probs, generation, the one training loop and its caches."""
