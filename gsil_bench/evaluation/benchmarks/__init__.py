"""The built-in benchmarks, one module each; every module registers itself on import."""
