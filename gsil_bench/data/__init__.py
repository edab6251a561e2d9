"""Demonstration records, loaders, named sources and data-quality transforms.

Import from the modules themselves (``gsil_bench.data.loaders``, ``.records``, ``.transforms``);
this package imports nothing, so that no submodule depends on another through it.
"""
