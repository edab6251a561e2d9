"""The benchmark interface and its registry: a new benchmark is one module that registers itself.

A benchmark has a name, an options model (its own settings, ``eval.options.<name>`` in a run
config), a way to run on a model in memory and, where it makes sense, a way to score a file of
generations made elsewhere (``gsil-bench score <name> FILE``). Built-ins live one module each
under :mod:`gsil_bench.evaluation.benchmarks`; the mini suite registers ``mini`` from its own
package; third-party packages add theirs through the ``gsil_bench.benchmarks`` entry points.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict

from gsil_bench.registry import Registry, target_of

if TYPE_CHECKING:
    from gsil_bench.config import EvalConfig, RunConfig
    from gsil_bench.evaluation.result import BenchmarkResult


class BenchmarkOptions(BaseModel):
    """Base of every benchmark's options: frozen, unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@runtime_checkable
class Benchmark(Protocol):
    """What the evaluation layer, ``eval`` and ``score`` need of a benchmark."""

    name: ClassVar[str]
    summary: ClassVar[str]
    Options: ClassVar[type[BenchmarkOptions]]

    def run(
        self, model: Any, tokenizer: Any, cfg: EvalConfig, options: Any, run: RunConfig
    ) -> list[BenchmarkResult]:
        """Generate with ``model`` and score; ``run`` is the config of the run being evaluated."""
        ...

    def score_file(self, path: Path, options: Any) -> list[BenchmarkResult]:
        """Score a file of generations made elsewhere (raise UserError where unsupported)."""
        ...


BENCHMARKS: Registry[Benchmark] = Registry(
    "benchmark",
    group="gsil_bench.benchmarks",
    builtins={"mini": "gsil_bench.minisuite.benchmark:MiniBenchmark"},
    modules=("gsil_bench.evaluation.benchmarks",),
    adapt=lambda name, target, obj: obj() if isinstance(obj, type) else obj,
)

B = TypeVar("B", bound=type)


def register_benchmark(cls: B) -> B:
    """Class decorator: register an instance of ``cls`` under ``cls.name``."""
    BENCHMARKS.register(cls.name, cls(), target=target_of(cls))
    return cls
