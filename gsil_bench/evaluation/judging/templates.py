"""Judge prompt templates in FastChat's ``judge_prompts.jsonl`` format, loaded as data.

Each line: ``name``, ``type``, ``system_prompt``, ``prompt_template`` (a ``str.format``
template), ``output_format``. MT-Bench uses the ``single-*`` templates, HH safety ``pair-v2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gsil_bench.errors import UserError
from gsil_bench.evaluation.files import find_file, read_jsonl_file

TEMPLATE_FILE_NAMES = ("judge_prompts.jsonl", "../judge_prompts.jsonl")


@dataclass(frozen=True)
class JudgeTemplate:
    name: str
    type: str
    system_prompt: str
    prompt_template: str
    output_format: str

    def messages(self, **fields: str) -> list[dict[str, str]]:
        try:
            user = self.prompt_template.format(**fields)
        except (KeyError, IndexError) as err:
            raise UserError(f"judge template {self.name!r} needs field {err}") from None
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*system, {"role": "user", "content": user}]


def load_judge_templates(source: str | Path) -> dict[str, JudgeTemplate]:
    """FastChat's ``judge_prompts.jsonl`` (or a directory holding it), keyed by name."""
    path = Path(str(source)).expanduser()
    if path.is_dir():
        found = find_file(path, TEMPLATE_FILE_NAMES)
        if found is None:
            raise UserError(f"{path}: no judge_prompts.jsonl here")
        source = found
    templates = {}
    for row in read_jsonl_file(source):
        try:
            templates[row["name"]] = JudgeTemplate(
                row["name"],
                row.get("type", ""),
                row.get("system_prompt", ""),
                row["prompt_template"],
                row.get("output_format", ""),
            )
        except KeyError as err:
            raise UserError(f"{source}: a judge template lacks {err}") from None
    return templates
