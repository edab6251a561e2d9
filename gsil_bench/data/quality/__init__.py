"""The built-in data-quality transforms, one module each (``data.quality.<knob>`` in a run
config); every module registers itself in :data:`gsil_bench.data.transforms.TRANSFORMS` on
import. This package imports nothing itself."""
