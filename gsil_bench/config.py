"""The typed run config: YAML files, ``--set key=value`` overrides and validation on load.

Every section is a frozen pydantic model that forbids unknown keys, so a typo is an error
naming the key (and the file) rather than a silently ignored setting.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from gsil_bench.data.transforms import DataQualityConfig
from gsil_bench.errors import UserError
from gsil_bench.io import read_text
from gsil_bench.minisuite.config import MiniSuiteConfig, TinyModelConfig


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Settings added after runs were made: no key in a dump while at their default, so that
    # configs from before a setting keep their fingerprints (and their finished run folders,
    # a sweep's config_id and cached base-model evaluations).
    OMIT_AT_DEFAULT: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _without_new_defaults(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in self.OMIT_AT_DEFAULT:
            default = type(self).model_fields[name].get_default(call_default_factory=True)
            if name in data and getattr(self, name) == default:
                del data[name]
        return data


class PeftConfig(_Section):
    """LoRA on the policy (``model.peft``): the reference is the same weights with the
    adapters disabled, so no second copy of the model is held."""

    r: int = Field(default=8, ge=1)
    alpha: float = Field(default=16.0, gt=0)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    # Module names (or suffixes) to adapt; "all-linear" is every linear layer but the LM head.
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    # Save the round's merged full weights instead of adapter_model.safetensors + config.
    merge_on_save: bool = False

    @field_validator("target_modules")
    @classmethod
    def _some_modules(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("name at least one module, or 'all-linear'")
        return value


class ModelConfig(_Section):
    """``name: tiny`` builds the embedded model; anything else is an HF path or Hub name."""

    name: str = "tiny"
    tiny: TinyModelConfig = TinyModelConfig()
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    trust_remote_code: bool = False
    # A Hub branch, tag or commit of ``name`` (SPIN trained a pinned zephyr-7b-sft-full commit).
    revision: str | None = None
    # LoRA adapters (peft): None trains every weight.
    peft: PeftConfig | None = None

    OMIT_AT_DEFAULT = ("peft",)


class DataConfig(_Section):
    """Where demonstrations come from, their quality transforms and the length policy."""

    source: str = "mini"  # "mini", a .jsonl/.parquet path or folder, or a Hub dataset name
    config_name: str | None = None
    split: str = "train"
    limit: int | None = Field(default=None, ge=1)
    mini: MiniSuiteConfig = MiniSuiteConfig()
    quality: DataQualityConfig = DataQualityConfig()
    # "generated": self-generated negatives (GSIL, SPIN); "rejected": the data's own rejected
    # responses (DPO-style), for losses that need a negative.
    negatives: Literal["generated", "rejected"] = "generated"
    drop_identical: bool = False  # drop pairs whose negative equals the demonstration
    max_prompt_tokens: int = Field(default=256, ge=1)
    max_length: int = Field(default=512, ge=2)
    # Multi-turn records (files, folders, Hub datasets) keep their first exchange only: the
    # first user message and the first assistant reply (SPIN trained on UltraChat's first turn).
    first_turn: bool = False

    OMIT_AT_DEFAULT = ("first_turn",)

    @model_validator(mode="after")
    def _room_for_the_response(self) -> DataConfig:
        # A prompt kept at max_prompt_tokens leaves max_length - max_prompt_tokens tokens for
        # the response; none at all and every long-prompt pair would be dropped.
        if self.max_prompt_tokens >= self.max_length:
            raise ValueError(
                f"data.max_prompt_tokens ({self.max_prompt_tokens}) must be less than "
                f"data.max_length ({self.max_length}): the response gets the tokens in between"
            )
        return self


class LossConfig(_Section):
    name: str = "gsil-logistic"
    params: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_loss_and_params(self) -> LossConfig:
        from gsil_bench.registry import validate_hparams

        validate_hparams(self.name, self.params)
        return self


class OptimConfig(_Section):
    optimizer: Literal["adamw", "rmsprop"] = "adamw"
    lr: float = Field(default=1e-4, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    batch_size: int = Field(default=32, ge=1)  # per process, per micro-step
    grad_accum: int = Field(default=1, ge=1)
    # Examples per optimizer step over all processes (the papers' 128 / 64); when set, the
    # per-process batch_size is derived from it, the world size and grad_accum.
    global_batch_size: int | None = Field(default=None, ge=1)
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, ge=1)
    schedule: Literal["linear", "constant", "cosine"] = "linear"
    warmup_ratio: float = Field(default=0.1, ge=0, le=1)
    warmup_steps: int | None = Field(default=None, ge=0)  # when set, replaces warmup_ratio
    # "linear" with decay_steps holds the peak and decays over the last decay_steps only.
    decay_steps: int | None = Field(default=None, ge=1)
    max_grad_norm: float | None = 1.0
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    checkpoint_every: int = Field(default=50, ge=1)
    # Batches of similar lengths (less padding): each epoch's seeded permutation is cut into
    # windows of 16 global batches, sorted by length inside a window, and the batches shuffled.
    group_by_length: bool = False
    # Pair losses run each pair as one row, the prompt once then both responses, under a block
    # mask (same log-probs); models whose attention cannot take the mask run unshared. On by
    # default: ~1.5x training tokens per CPU-second on the quickstart's tiny model, spin loss
    # (benchmarks/bench_prefix_sharing.py).
    prefix_sharing: bool = True
    # Padding-free packing: several sequences (or prompt-shared pairs) to a row under a block
    # mask, position ids restarting per sequence (same log-probs). Off by default: on the CPU
    # the rows of one micro-batch already run in length buckets (one forward each); packing
    # suits attention kernels that skip masked blocks.
    packing: bool = False

    OMIT_AT_DEFAULT = ("packing",)

    @model_validator(mode="after")
    def _one_batch_size(self) -> OptimConfig:
        if self.global_batch_size is None:
            return self
        if "batch_size" in self.model_fields_set:
            raise ValueError(
                "optim.batch_size and optim.global_batch_size are both set; set one (the "
                "per-process batch is derived from optim.global_batch_size)"
            )
        if self.global_batch_size % self.grad_accum:
            raise ValueError(
                f"optim.global_batch_size ({self.global_batch_size}) is not divisible by "
                f"optim.grad_accum ({self.grad_accum})"
            )
        return self

    def for_world(self, processes: int) -> OptimConfig:
        """This config with ``batch_size`` per process for ``processes`` processes: derived
        from ``global_batch_size`` when set (an error when it does not divide), else as is."""
        if self.global_batch_size is None:
            return self
        per_step = processes * self.grad_accum
        if self.global_batch_size % per_step:
            raise UserError(
                f"optim.global_batch_size ({self.global_batch_size}) is not divisible by "
                f"{processes} processes x optim.grad_accum ({self.grad_accum}) = {per_step}; "
                "change it, optim.grad_accum or the number of processes"
            )
        return self.model_copy(update={"batch_size": self.global_batch_size // per_step})


class GenerationConfig(_Section):
    """Self-generation of negatives; greedy by default as in both papers."""

    max_new_tokens: int = Field(default=128, ge=1)
    do_sample: bool = False
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    batch_size: int = Field(default=64, ge=1)
    backend: Literal["hf", "vllm"] = "hf"  # vllm: GPU users with the `vllm` extra
    # SPIN's release trains round t on round t's generations plus those of round t-1.
    mix_previous_rounds: bool = False
    # How a prompt is shown to the model when it generates negatives: "chat", the tokenizer's
    # chat template; "release", the plain template both releases generate from (GSIL
    # gsil/generate.py, SPIN spin/generate.py): "### Instruction: {prompt}\n\n### Response: ",
    # where {prompt} is the prompt's last user message.
    prompt_format: Literal["chat", "release"] = "chat"

    OMIT_AT_DEFAULT = ("prompt_format",)


class EvalConfig(_Section):
    """Settings shared by every benchmark, plus each benchmark's own ``options``.

    ``suites``: benchmark names (``paper`` = the GSIL paper's four); a name that is not a
    registered benchmark is an lm-evaluation-harness task. ``options.<benchmark>.<key>``: that
    benchmark's settings (e.g. ``options.gsm8k.source``), checked against its options model.
    """

    suites: list[str] = Field(default_factory=lambda: ["mini"])
    limit: int | None = Field(default=None, ge=1)
    max_new_tokens: int = Field(default=160, ge=1)
    batch_size: int = Field(default=64, ge=1)
    # Judge spec for MT-Bench / HH (see gsil_bench.evaluation.judging.base).
    judge: str | None = None
    lmeval_include_path: str | None = None  # folder of local lm-eval task YAMLs
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Evaluate the model every round starts from (the base, then each round's model) as well
    # as the final one: the per-iteration table of SPIN's Table 3 (RunRecord.iteration_results).
    every_round: bool = False

    OMIT_AT_DEFAULT = ("every_round",)

    @model_validator(mode="after")
    def _known_benchmark_options(self) -> EvalConfig:
        # Imported here: the benchmark registry sits above the config in the layering.
        from gsil_bench.evaluation.benchmark import PAPER, check_suite_names, validate_options

        check_suite_names(self.suites, "eval.suites", aliases=(PAPER,))
        validate_options(self.options, "eval.options", lmeval_tasks=self.suites)
        return self


TrackerName = Literal["tensorboard", "wandb", "mlflow", "trackio"]


class RunConfig(_Section):
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    generation: GenerationConfig = GenerationConfig()
    eval: EvalConfig = EvalConfig()
    # 0: no training, the run evaluates the base model (the ``base`` control row of a study).
    iterations: int = Field(default=1, ge=0)
    # Per-round overrides, one mapping of dotted keys per round (``rounds[0]`` for round 1):
    # ``[{optim.lr: 5e-7, loss.params.beta: 0.1}, ...]``. Each entry applies to the config
    # above, not to the previous entry; rounds past the end of the list keep the last entry
    # (a schedule that ends on a low learning rate stays there); entries past ``iterations``
    # are not used. Only optim.*, loss.params.* and generation.* may change between rounds.
    rounds: list[dict[str, Any]] = Field(default_factory=list)
    seed: int = 0
    output_dir: str = "runs/{loss}-seed{seed}"
    cache_dir: str = ".gsil-cache"
    # Experiment trackers that mirror the training curves and results (backend/tracking.py).
    # Where a run is reported does not change it: left out of dumps, so the fingerprint, a
    # sweep's config_id and the saved config (and finished run folders) do not depend on it.
    report_to: list[TrackerName] = Field(default_factory=list, exclude=True)

    @field_validator("report_to", mode="before")
    @classmethod
    def _report_to_list(cls, value: Any) -> Any:
        # `--set report_to=tensorboard` and `tensorboard,wandb` read as lists.
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    OMIT_AT_DEFAULT = ("rounds",)

    @model_validator(mode="after")
    def _valid_rounds(self) -> RunConfig:
        # Every entry, used or not, is checked now rather than when its round starts (hours
        # into a run).
        for position in range(len(self.rounds)):
            self.for_round(position + 1)
        return self

    def for_round(self, index: int) -> RunConfig:
        """The config round ``index`` (1-based) trains with: this one with its ``rounds`` entry
        applied (the last entry for rounds past the end of the list). An unknown key, a key
        that may not change between rounds or a bad value is a UserError naming the entry."""
        if not self.rounds:
            return self
        position = min(index, len(self.rounds)) - 1
        where = f"rounds[{position}]"
        overrides = flatten_dotted(self.rounds[position])
        tree = self.model_dump(mode="json", exclude_unset=True, exclude={"rounds"})
        for key, value in overrides.items():
            set_dotted(tree, key, value, f"{where}.{key}")
        try:
            derived = RunConfig.model_validate(tree)
        except ValidationError as exc:
            raise UserError(format_validation_error(exc, where)) from None
        except UserError as exc:  # an unknown or bad loss hyperparameter
            raise UserError(f"{where}: {exc}") from None
        fixed = [key for key in overrides if not key.startswith(ROUND_KEYS)]
        if fixed:
            raise UserError(
                f"{where}: key {fixed[0]!r} cannot change between rounds; a round may set "
                "optim.*, loss.params.* and generation.*"
            )
        return derived.model_copy(update={"report_to": self.report_to})

    def resolved_output_dir(self) -> Path:
        return Path(self.output_dir.format(loss=self.loss.name, seed=self.seed))

    def fingerprint(self) -> str:
        """Hash of everything that determines the run's result (not where it is written)."""
        payload = self.model_dump(mode="json", exclude={"output_dir", "cache_dir"})
        # What determines the tiny base model is its effective seed, not how it was spelled:
        # None with run seed 1 is the run of seed 1 pinned to base seed 1. The historical base
        # seed 0 is left out, so configs from before the knob keep their fingerprints (and
        # their finished run folders).
        tiny = payload["model"]["tiny"]
        base_seed = self.model.tiny.effective_seed(self.seed)
        del tiny["seed"]
        if base_seed != 0:
            tiny["seed"] = base_seed
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# The keys a ``rounds`` entry may set: what SPIN's schedule changes (learning rate, beta),
# with the rest of the optimizer and the sampling of negatives. The model, data, loss and
# evaluation are the run's.
ROUND_KEYS = ("optim.", "loss.params.", "generation.")


def flatten_dotted(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{optim: {lr: 1e-7}}`` and ``{optim.lr: 1e-7}`` alike as ``{"optim.lr": 1e-7}``."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):  # an empty mapping sets nothing
            flat.update(flatten_dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# --------------------------------------------------------------------------- loading


def set_dotted(tree: dict[str, Any], dotted: str, value: Any, label: str | None = None) -> None:
    """Set ``a.b.c`` in a nested dict; ``label`` is the key as the user typed it (errors)."""
    node = tree
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"--set {label or dotted}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(overrides: list[str]) -> list[tuple[str, Any]]:
    """``key=value`` pairs; values are parsed as YAML (numbers, booleans, lists)."""
    pairs = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected key=value, e.g. optim.lr=1e-4")
        pairs.append((key.strip(), yaml.safe_load(raw) if raw.strip() else None))
    return pairs


# Keys people type from other trainers (HF TrainingArguments, TRL, Axolotl) and what they are
# called here; a key that only sits in the wrong section is found without a line here.
KEY_ALIASES = {
    "learning_rate": "optim.lr",
    "per_device_train_batch_size": "optim.batch_size",
    "train_batch_size": "optim.batch_size",
    "micro_batch_size": "optim.batch_size",
    "gradient_accumulation_steps": "optim.grad_accum",
    "num_train_epochs": "optim.epochs",
    "num_epochs": "optim.epochs",
    "num_warmup_steps": "optim.warmup_steps",
    "total_batch_size": "optim.global_batch_size",
    "effective_batch_size": "optim.global_batch_size",
    "model_revision": "model.revision",
    "lr_scheduler_type": "optim.schedule",
    "lr_scheduler": "optim.schedule",
    "scheduler": "optim.schedule",
    "save_steps": "optim.checkpoint_every",
    "bf16": "optim.mixed_precision",
    "fp16": "optim.mixed_precision",
    "model_name_or_path": "model.name",
    "base_model": "model.name",
    "torch_dtype": "model.dtype",
    "dataset_name": "data.source",
    "dataset": "data.source",
    "datasets": "data.source",
    "train_file": "data.source",
    "max_seq_length": "data.max_length",
    "sequence_len": "data.max_length",
    "max_prompt_length": "data.max_prompt_tokens",
    "beta": "loss.params.beta",
    "loss_type": "loss.name",
    "num_iterations": "iterations",
}


def _item_type(annotation: Any) -> Any:
    """The model inside ``X | None``, ``list[X]`` or ``dict[str, X]``, or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (list, dict) and args:
        return _item_type(args[-1])
    return _item_type(args[0]) if len(args) == 1 else None


def _section_at(model: type[BaseModel], path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model that holds the keys at ``path`` (list indices and dict keys skipped)."""
    node: type[BaseModel] | None = model
    expect_item = False
    for part in path:
        if node is None:
            return None
        if expect_item:  # the index or key into the list or dict just entered
            expect_item = False
            continue
        field = node.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        expect_item = get_origin(annotation) in (list, dict)
        node = _item_type(annotation)
    return None if expect_item else node


def _dotted_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of ``model`` and its sections, dotted (``optim``, ``optim.lr``, ...)."""
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _dotted_keys(annotation, f"{prefix}{name}.")
    return keys


def suggest_key(model: type[BaseModel], loc: tuple[Any, ...]) -> str | None:
    """The key meant by the unknown key at ``loc``, dotted from the top, or None.

    In order: a key another trainer calls by that name (``learning_rate`` -> ``optim.lr``;
    run configs only), the same name in another section (``lr`` at the top level), a close
    spelling in the same section (``optim.lrr``), a close spelling anywhere.
    """
    name = str(loc[-1])
    prefix = _key_text(loc[:-1]) if loc[:-1] else ""
    everywhere = _dotted_keys(model) if model is RunConfig else []
    if name in KEY_ALIASES and everywhere:
        return KEY_ALIASES[name]
    elsewhere = [k for k in everywhere if k.rsplit(".", 1)[-1] == name]
    if len(elsewhere) == 1:
        return elsewhere[0]
    section = _section_at(model, loc[:-1])
    siblings = list(section.model_fields) if section else []
    close = difflib.get_close_matches(name, siblings, n=1)
    if close:
        return f"{prefix}.{close[0]}" if prefix else close[0]
    leaves = {k.rsplit(".", 1)[-1]: k for k in reversed(everywhere)}
    close = difflib.get_close_matches(name, list(leaves), n=1, cutoff=0.75)
    return leaves[close[0]] if close else None


def _key_text(loc: tuple[Any, ...]) -> str:
    """``methods[0].space.optim.lr``: list positions in brackets, dotted otherwise."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "(top level)"


def format_validation_error(
    exc: ValidationError, source: str, model: type[BaseModel] = RunConfig
) -> str:
    """One line per problem: '<source>: key a.b: what was expected'."""
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = _key_text(loc)
        if err["type"] == "extra_forbidden":
            close = suggest_key(model, loc)
            hint = f" (did you mean {close!r}?)" if close else ""
            lines.append(f"{source}: unknown key {key!r}{hint}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            # A check across keys names them itself (data.max_prompt_tokens ... data.max_length).
            named = msg.startswith(f"{key}.") if loc else False
            lines.append(f"{source}: {msg}" if named else f"{source}: key {key!r}: {msg}")
    return "; ".join(lines)


def read_yaml(path: Path) -> dict[str, Any]:
    text = read_text(path, "YAML file")  # missing, a directory, not UTF-8: one clear error
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UserError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of config sections at the top level")
    return data


def build_config(tree: dict[str, Any], source: str) -> RunConfig:
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, source)) from None
    except UserError as exc:  # raised inside a validator (unknown loss / hyperparameter)
        raise UserError(f"{source}: {exc}") from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """The run config from ``path`` (or the embedded default) with ``key=value`` overrides."""
    tree: dict[str, Any] = read_yaml(Path(path)) if path else {}
    for key, value in parse_overrides(overrides or []):
        set_dotted(tree, key, value)
    source = str(path) if path else "default config"
    if overrides:
        source += " with --set " + " ".join(overrides)
    return build_config(tree, source)


def config_to_yaml(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
