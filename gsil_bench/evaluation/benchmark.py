"""The benchmark interface and its registry: a new benchmark is one module that registers itself.

A benchmark has a name, an options model (its own settings, ``eval.options.<name>`` in a run
config), a way to run on a model in memory and, where it makes sense, a way to score a file of
generations made elsewhere (``gsil-bench score <name> FILE``). Built-ins live one module each
under :mod:`gsil_bench.evaluation.benchmarks`; the mini suite registers ``mini`` from its own
package; third-party packages add theirs through the ``gsil_bench.benchmarks`` entry points.

How ``score`` presents a benchmark is optional and declared next to it as a class attribute
``file_scoring = FileScoring(...)`` (``None``: the benchmark cannot score files); without one,
every field of its Options becomes a ``--field-name`` flag and the summary is the help.

This module imports nothing of the config (not even for type hints): ``gsil_bench.config``
validates ``eval.options`` through :func:`validate_options`, so an import back would be a cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gsil_bench.errors import UserError
from gsil_bench.registry import Registry, did_you_mean, target_of

if TYPE_CHECKING:
    from gsil_bench.evaluation.result import BenchmarkResult


class BenchmarkOptions(BaseModel):
    """Base of every benchmark's options: frozen, unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@runtime_checkable
class Benchmark(Protocol):
    """What the evaluation layer, ``eval`` and ``score`` need of a benchmark.

    ``cfg`` is the run's :class:`gsil_bench.config.EvalConfig` (shared settings: limit,
    max_new_tokens, batch_size, judge) and ``run`` the whole :class:`gsil_bench.config.RunConfig`
    of the run being evaluated; ``options`` is an instance of the benchmark's ``Options``.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    Options: ClassVar[type[BenchmarkOptions]]

    def run(
        self, model: Any, tokenizer: Any, cfg: Any, options: Any, run: Any
    ) -> list[BenchmarkResult]:
        """Generate with ``model`` and score; ``run`` is the config of the run being evaluated."""
        ...

    def score_file(self, path: Path, options: Any) -> list[BenchmarkResult]:
        """Score a file of generations made elsewhere (raise UserError where unsupported)."""
        ...


@dataclass(frozen=True)
class FileScoring:
    """How ``gsil-bench score <name> FILE`` presents a benchmark.

    ``options``: the Options fields offered as ``--field-name`` flags (None: all of them);
    ``note``: text printed under a result's table; ``json_extra``: keys added to a result's
    ``--json`` object (a benchmark scoring into one result named after itself prints that
    result's metrics at the top level, one scoring into several prints one object per result).
    """

    help: str = ""
    file_help: str = "JSONL of generations to score."
    options: tuple[str, ...] | None = None
    note: Callable[[BenchmarkResult], str] | None = None
    json_extra: Callable[[BenchmarkResult], dict[str, Any]] | None = None


def file_scoring_of(benchmark: Benchmark) -> FileScoring | None:
    """The benchmark's declared :class:`FileScoring`, a default one, or None (cannot score)."""
    default = FileScoring(help=benchmark.summary)
    scoring: FileScoring | None = getattr(benchmark, "file_scoring", default)
    return scoring


BENCHMARKS: Registry[Benchmark] = Registry(
    "benchmark",
    group="gsil_bench.benchmarks",
    builtins={"mini": "gsil_bench.minisuite.benchmark:MiniBenchmark"},
    modules=("gsil_bench.evaluation.benchmarks",),
    adapt=lambda name, target, obj: obj() if isinstance(obj, type) else obj,
)

# The benchmarks of the GSIL paper's evaluation (math, code, dialogue, safety), in its order,
# and the suite alias that stands for all four.
PAPER_BENCHMARKS = ("gsm8k", "humaneval", "mt-bench", "hh-safety")
PAPER = "paper"

BenchmarkT = TypeVar("BenchmarkT", bound=Benchmark)


class _AnswerSettings(Protocol):
    """What :func:`answer_length` reads of an ``EvalConfig`` (typed structurally: the config
    module imports this one)."""

    @property
    def max_new_tokens(self) -> int: ...

    @property
    def model_fields_set(self) -> set[str]: ...


def answer_length(cfg: _AnswerSettings, protocol: int) -> int:
    """The answer length of a benchmark whose protocol has its own (MT-Bench 1024 tokens, HH
    256): ``protocol``, unless the run sets ``eval.max_new_tokens`` itself (the field's
    default, 160, is the mini suite's)."""
    return cfg.max_new_tokens if "max_new_tokens" in cfg.model_fields_set else protocol


def register_benchmark(cls: type[BenchmarkT]) -> type[BenchmarkT]:
    """Class decorator: register an instance of ``cls`` under ``cls.name``."""
    BENCHMARKS.register(cls.name, cls(), target=target_of(cls))
    return cls


class _WithOptions(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def Options(self) -> type[BenchmarkOptions]: ...  # noqa: N802 (the benchmarks' attribute)


def parse_options(benchmark: _WithOptions, raw: Mapping[str, Any], where: str) -> BenchmarkOptions:
    """``raw`` as the benchmark's Options; a bad key is a UserError naming ``<where>.<key>``."""
    try:
        return benchmark.Options.model_validate(dict(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        known = list(benchmark.Options.model_fields)
        if err["type"] == "extra_forbidden":
            raise UserError(
                f"{where}.{key}: benchmark {benchmark.name!r} has no option {key!r}."
                f"{did_you_mean(key, known)} Known: {', '.join(known) or 'none'}"
            ) from None
        raise UserError(f"{where}.{key}: {err['msg'].removeprefix('Value error, ')}") from None


class LmEvalOptions(BenchmarkOptions):
    """Options of a suite that lm-evaluation-harness runs (a task, group or tag name in
    ``eval.suites``), e.g. the Open LLM Leaderboard's few-shot count per task."""

    num_fewshot: int | None = Field(
        None, ge=0, description="Few-shot examples per prompt (None: the task's own default)."
    )
    apply_chat_template: bool = Field(False, description="Render prompts with the chat template.")
    fewshot_as_multiturn: bool | None = Field(
        None, description="Few-shot examples as chat turns (needs apply_chat_template)."
    )


@dataclass(frozen=True)
class LmEvalTask:
    """An lm-eval task as :func:`parse_options` sees a benchmark: a name and its options."""

    name: str
    Options: ClassVar[type[BenchmarkOptions]] = LmEvalOptions


def validate_options(
    options: Mapping[str, Mapping[str, Any]], where: str, lmeval_tasks: Sequence[str] = ()
) -> None:
    """Check every ``<where>.<benchmark>.<key>`` against the registry, or against
    :class:`LmEvalOptions` for a name in ``lmeval_tasks`` (UserError on the first)."""
    for name, raw in options.items():
        if name in lmeval_tasks and name not in BENCHMARKS.names():
            parse_options(LmEvalTask(name), raw, f"{where}.{name}")
            continue
        try:
            benchmark = BENCHMARKS.get(name)
        except UserError as exc:
            raise UserError(
                f"{where}.{name}: {exc} (options of an lm-evaluation-harness task need the task "
                "in eval.suites)"
            ) from None
        parse_options(benchmark, raw, f"{where}.{name}")


def check_suite_names(suites: Sequence[str], where: str, *, aliases: Sequence[str] = ()) -> None:
    """A suite name that is no benchmark but close to one is a typo, not an lm-eval task:
    one UserError with the close match (names far from every benchmark go to lm-eval)."""
    names = BENCHMARKS.names()
    for name in suites:
        if name in names or name in aliases:
            continue
        hint = did_you_mean(name, [*names, *aliases], n=1, cutoff=0.8)
        if hint:
            raise UserError(
                f"{where}: {name!r} is not a gsil-bench benchmark.{hint} (other names are "
                "passed to lm-evaluation-harness as task names)"
            )
