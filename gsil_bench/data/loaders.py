"""Load demonstrations from files, saved datasets and the Hugging Face Hub.

Sources: a ``.jsonl``/``.jsonl.gz``/``.json``/``.parquet`` file, a directory holding such files
(the ones named for ``split``, as in ``train.jsonl`` or ``data/test-00000-of-00001.parquet``), a
directory written by ``datasets.Dataset.save_to_disk``, or a Hub dataset name.

The record format is detected per record (first match wins, so a record that carries several
views of the same data, as ultrafeedback_binarized does, is read as preference data):

- ``{"prompt", "chosen", "rejected"}``: preference data; ``chosen``/``rejected`` are strings or
  message lists ending with the assistant's turn (ultrafeedback_binarized). ``chosen`` is the
  demonstration, ``rejected`` is kept in ``Demonstration.rejected``.
- ``{"chosen", "rejected"}`` as text: Anthropic HH (``"\\n\\nHuman: ...\\n\\nAssistant: ..."``);
  the last Assistant turn of ``chosen`` is the demonstration, the turns before it the prompt.
- ``{"real", "generated"}``: SPIN's release (``UCLA-AGI/SPIN_iter0``; message lists). The last
  assistant turn of ``real`` is the demonstration, the turns before it the prompt; the last
  assistant turn of ``generated`` (the model's own reply to the same prompt) is kept in
  ``Demonstration.rejected``, the one place for a pre-made negative (``data.negatives:
  rejected`` trains on it). An empty generated reply (the release writes one before
  generating) means no negative.
- ``{"messages"}`` (optionally with ``"prompt"``, as in ultrachat_200k): the last assistant turn
  is the demonstration, the turns before it the prompt.
- ``{"question", "answer"}``: GSM8K; the worked answer is the demonstration, kept verbatim.
- ``{"prompt", "response"}`` (optional ``rejected``, ``id``): the native format, which
  ``Demonstration.to_record`` writes. ``prompt`` is a string or a message list.

``first_turn`` (``data.first_turn``) keeps only the first exchange of a multi-turn record of
any chat-like format: the messages before the first assistant reply (the first user message,
after a system message if there is one) as the prompt, that reply as the demonstration (SPIN
trained on UltraChat's first turns). ``rejected`` is dropped from a record so cut: it answered
the last turn, not the first.

A malformed record raises UserError naming the file, the 1-based line (row or record for
formats without lines) and the field.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gsil_bench.data.records import ROLES, Demonstration, Message
from gsil_bench.errors import UserError
from gsil_bench.hub_access import load_hub_dataset
from gsil_bench.io import is_local, iter_jsonl_lines, json_error, read_text

log = logging.getLogger(__name__)

FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet")
# File names that mark a split; a directory whose files name none of them is one split.
_SPLIT_WORDS = {"train", "test", "validation", "valid", "val", "dev", "eval"}
_HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")
_FORMATS_HELP = (
    "prompt+response, messages, prompt+chosen+rejected, chosen+rejected (Anthropic HH text), "
    "real+generated (SPIN) or question+answer (GSM8K)"
)

# (where, short id, record): "where" goes into messages, the short id becomes the default
# Demonstration.id; record is a UserError when the row did not even parse.
Row = tuple[str, str, Any]


def load_demonstrations(
    source: str,
    *,
    split: str = "train",
    config_name: str | None = None,
    limit: int | None = None,
    skip_invalid: bool = False,
    first_turn: bool = False,
) -> list[Demonstration]:
    """Read up to ``limit`` demonstrations from ``source`` (see the module docstring).

    ``skip_invalid`` drops malformed records with one logged warning instead of failing; real
    data needs it now and then (four HH harmless-test records have an empty final turn).
    """
    if limit is not None and limit < 0:
        raise UserError(f"limit must be >= 0, got {limit}")
    demos: list[Demonstration] = []
    skipped: list[str] = []
    for where, default_id, record in _rows(source, split, config_name):
        if limit is not None and len(demos) >= limit:
            break
        try:
            if isinstance(record, UserError):
                raise record
            demos.append(parse_record(record, where, default_id=default_id, first_turn=first_turn))
        except UserError as exc:
            if not skip_invalid:
                raise
            skipped.append(str(exc))
    if skipped:
        log.warning("skipped %d malformed records, the first: %s", len(skipped), skipped[0])
    return demos


def parse_record(
    record: Any, where: str, *, default_id: str = "", first_turn: bool = False
) -> Demonstration:
    """One raw record (a decoded JSON object or dataset row) as a Demonstration;
    ``first_turn`` keeps its first exchange only (see the module docstring)."""
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected an object with fields, got {type(record).__name__}")
    if "chosen" in record:
        fmt, prompt, response, rejected = _parse_preference(record, where)
    elif "real" in record and "generated" in record:
        prompt, response, rejected = _parse_spin(record, where)
        fmt = "spin"
    elif "messages" in record:
        prompt, response = _split_conversation(record, "messages", where)
        fmt, rejected = "chat", None
    elif "question" in record and "answer" in record:
        prompt = [_user(_text(record, "question", where))]
        fmt, response, rejected = "gsm8k", _text(record, "answer", where), None
    elif "prompt" in record and "response" in record:
        prompt = _prompt_field(record, where)
        fmt, response = "prompt-response", _text(record, "response", where)
        rejected = _optional_text(record, "rejected", where)
    else:
        fields = ", ".join(sorted(map(str, record))) or "none"
        raise UserError(
            f"{where}: unrecognised record (fields: {fields}); expected {_FORMATS_HELP}"
        )
    if first_turn:
        prompt, response, rejected = _first_turn(prompt, response, rejected, where)
    record_id = record.get("id")
    identifier = str(record_id) if isinstance(record_id, str | int) else default_id
    meta = {"source": where, "format": fmt}
    return Demonstration(prompt, response, rejected, identifier, meta)


# ---------------------------------------------------------------- record formats


def _parse_preference(record: dict, where: str) -> tuple[str, list[Message], str, str | None]:
    chosen = record["chosen"]
    rejected_value = record.get("rejected")
    if isinstance(chosen, str) and "prompt" not in record:
        prompt, response = _split_turns(_parse_hh(chosen, where, "chosen"), None, where, "chosen")
        rejected = None
        if rejected_value is not None:
            turns = _parse_hh(_text(record, "rejected", where), where, "rejected")
            rejected = _split_turns(turns, prompt, where, "rejected")[1]
        return "hh", prompt, response, rejected
    fallback = _prompt_field(record, where) if "prompt" in record else None
    prompt, response = _answer_of(record, "chosen", fallback, where)
    rejected = None
    if rejected_value is not None:
        rejected = _answer_of(record, "rejected", prompt, where)[1]
    return "preference", prompt, response, rejected


def _parse_spin(record: dict, where: str) -> tuple[list[Message], str, str | None]:
    """SPIN's ``{real, generated}`` row. Both lists repeat the prompt, then hold one assistant
    reply (uclaml/SPIN: spin/generate_vllm.py writes them; spin/alignment/data.py,
    ``apply_chat_template``, trains on ``real[1:]`` against ``generated[1:]`` after the first
    user message). The release's rows are single-turn; for a longer ``real`` the prompt here
    is every turn before its last assistant reply, as in the other formats. An empty
    generated reply is no negative (README: "the content for generated response can be
    empty"; spin/reformat.py writes ``""`` before generation)."""
    prompt, response = _split_conversation(record, "real", where)
    generated = _messages(record["generated"], where, "generated")
    last = max((i for i, m in enumerate(generated) if m["role"] == "assistant"), default=None)
    if last is None:
        raise UserError(f"{where}: field 'generated': no assistant turn (the model's reply)")
    generated_prompt = generated[:last]
    if generated_prompt != prompt:
        at = next(
            (i for i, (a, b) in enumerate(zip(prompt, generated_prompt, strict=False)) if a != b),
            min(len(prompt), len(generated_prompt)),
        )
        counts = (
            f" ({len(generated_prompt)} prompt messages, 'real' has {len(prompt)})"
            if len(generated_prompt) != len(prompt)
            else ""
        )
        raise UserError(
            f"{where}: field 'generated': its prompt differs from the prompt of 'real' at "
            f"message {at}{counts}"
        )
    negative = generated[last]["content"]
    return prompt, response, negative if negative.strip() else None


def _first_turn(
    prompt: list[Message], response: str, rejected: str | None, where: str
) -> tuple[list[Message], str, str | None]:
    """The messages before the first assistant reply, and that reply; a record whose prompt
    holds no assistant turn is its own first turn and is kept whole."""
    first = next((i for i, m in enumerate(prompt) if m["role"] == "assistant"), None)
    if first is None:
        return prompt, response, rejected
    if not prompt[first - 1 : first] or prompt[first - 1]["role"] != "user":
        raise UserError(
            f"{where}: first turn (data.first_turn): the first assistant turn must follow a "
            "user turn"
        )
    reply = prompt[first]["content"]
    if not reply.strip():
        raise UserError(f"{where}: first turn (data.first_turn): the first assistant turn is empty")
    return prompt[:first], reply, None


def _answer_of(
    record: dict, key: str, prompt: list[Message] | None, where: str
) -> tuple[list[Message], str]:
    """(prompt, response) from a preference side that is a string or a message list."""
    if isinstance(record[key], str):
        if prompt is None:
            raise UserError(f"{where}: field 'prompt': missing (needed when '{key}' is text)")
        return prompt, _text(record, key, where)
    return _split_conversation(record, key, where, fallback=prompt)


def _split_conversation(
    record: dict, key: str, where: str, fallback: list[Message] | None = None
) -> tuple[list[Message], str]:
    messages = _messages(record[key], where, key)
    if fallback is None and "prompt" in record and key == "messages":
        fallback = _prompt_field(record, where)
    return _split_turns(messages, fallback, where, key)


def _split_turns(
    messages: list[Message], fallback: list[Message] | None, where: str, key: str
) -> tuple[list[Message], str]:
    """The last assistant turn is the response; the turns before it are the prompt, or
    ``fallback`` where the list holds the answer alone (a side of a preference pair)."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        raise UserError(f"{where}: field '{key}': no assistant turn to use as the response")
    prompt = messages[:last] or (fallback or [])
    if not prompt or prompt[-1]["role"] != "user":
        raise UserError(f"{where}: field '{key}': the last assistant turn must follow a user turn")
    response = messages[last]["content"]
    if not response.strip():
        raise UserError(f"{where}: field '{key}': the last assistant turn is empty")
    return [dict(m) for m in prompt], response


def parse_hh_dialogue(text: str) -> list[Message] | None:
    """Anthropic-HH text (``\\n\\nHuman: ...\\n\\nAssistant: ...``) -> chat messages; None
    when it is not such a dialogue. The one HH parser: loaders and the HH benchmark use it.

    A few HH dialogues split one reply into two consecutive turns of the same speaker; those
    are joined rather than dropped.
    """
    parts = _HH_TURN.split(text)
    if parts[0].strip() or len(parts) < 3:
        return None
    messages: list[Message] = []
    for speaker, content in zip(parts[1::2], parts[2::2], strict=True):
        role = "user" if speaker == "Human" else "assistant"
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n\n" + content.strip()
        else:
            messages.append({"role": role, "content": content.strip()})
    return messages


def _parse_hh(text: str, where: str, key: str) -> list[Message]:
    messages = parse_hh_dialogue(text)
    if messages is None:
        raise UserError(f"{where}: field '{key}': expected '\\n\\nHuman: ...' dialogue text")
    return messages


def _messages(value: Any, where: str, key: str) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise UserError(f"{where}: field '{key}': expected a non-empty list of messages")
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise UserError(f"{where}: field '{key}[{i}]': expected a {{role, content}} object")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise UserError(
                f"{where}: field '{key}[{i}].role': expected one of {ROLES}, got {role!r}"
            )
        if not isinstance(content, str):
            raise UserError(f"{where}: field '{key}[{i}].content': expected a string")
        messages.append({"role": role, "content": content})
    return messages


def _prompt_field(record: dict, where: str) -> list[Message]:
    value = record.get("prompt")
    if isinstance(value, list):
        messages = _messages(value, where, "prompt")
        if messages[-1]["role"] != "user":
            raise UserError(f"{where}: field 'prompt': the last message must be the user's")
        return messages
    return [_user(_text(record, "prompt", where))]


def _text(record: dict, key: str, where: str) -> str:
    if key not in record or record[key] is None:
        raise UserError(f"{where}: field '{key}': missing")
    value = record[key]
    if not isinstance(value, str):
        raise UserError(f"{where}: field '{key}': expected a string, got {type(value).__name__}")
    if not value.strip():
        raise UserError(f"{where}: field '{key}': empty")
    return value


def _optional_text(record: dict, key: str, where: str) -> str | None:
    return None if record.get(key) is None else _text(record, key, where)


def _user(content: str) -> Message:
    return {"role": "user", "content": content}


# ---------------------------------------------------------------- sources


def _rows(source: str, split: str, config_name: str | None) -> Iterator[Row]:
    path = Path(source).expanduser()
    if path.is_dir():
        yield from _directory_rows(path, split)
    elif path.is_file():
        yield from _file_rows(path)
    elif is_local(source):
        raise UserError(f"{source}: no such file or directory")
    else:
        yield from _dataset_rows(
            _hub_dataset(source, split, config_name), source, f"{source}/{split}"
        )


def _file_rows(path: Path) -> Iterator[Row]:
    name = path.name
    if name.endswith((".jsonl", ".jsonl.gz")):
        yield from _jsonl_rows(path)
    elif name.endswith(".json"):
        yield from _json_rows(path)
    elif name.endswith(".parquet"):
        yield from _parquet_rows(path)
    else:
        raise UserError(
            f"{path}: unsupported file type; expected one of {', '.join(FILE_SUFFIXES)}"
        )


def _jsonl_rows(path: Path) -> Iterator[Row]:
    # A broken line becomes a row holding its error, so that skip_invalid can skip it alone.
    for line_number, line in iter_jsonl_lines(path):
        yield _decode_json_line(line, path, line_number)


def _decode_json_line(line: str, path: Path, line_number: int) -> Row:
    # Ids name the file, not its folder, so that they survive moving the data.
    where, default_id = f"{path}:{line_number}", f"{path.name}:{line_number}"
    try:
        return where, default_id, json.loads(line)
    except json.JSONDecodeError as exc:
        return where, default_id, json_error(exc, where)


def _json_rows(path: Path) -> Iterator[Row]:
    text = read_text(path, "JSON file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise json_error(exc, f"{path}:{exc.lineno}") from None
        # Several top-level values: a JSON-lines file with a .json name, common on the Hub.
        # Split on "\n" only: str.splitlines would also split at U+2028, legal inside JSON.
        for line_number, line in enumerate(text.split("\n"), 1):
            if line.strip():
                yield _decode_json_line(line.rstrip("\r"), path, line_number)
        return
    records = data if isinstance(data, list) else [data]
    for number, record in enumerate(records, 1):
        yield f"{path}: record {number}", f"{path.name}:{number}", record


def _parquet_rows(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise UserError(f"{path}: not a readable parquet file: {exc}") from exc
    number = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            number += 1
            yield f"{path}: row {number}", f"{path.name}:{number}", record


def _directory_rows(path: Path, split: str) -> Iterator[Row]:
    markers = ("dataset_info.json", "state.json", "dataset_dict.json")
    if any((path / marker).exists() for marker in markers):
        yield from _dataset_rows(_saved_dataset(path, split), f"{path}", f"{path.name}/{split}")
        return
    for file in _files_for_split(path, split):
        yield from _file_rows(file)


def _files_for_split(path: Path, split: str) -> list[Path]:
    files = sorted(f for f in path.rglob("*") if f.is_file() and f.name.endswith(FILE_SUFFIXES))
    if not files:
        raise UserError(f"{path}: no {', '.join(FILE_SUFFIXES)} files in this directory")
    words = {f: set(re.split(r"[-_./]", str(f.relative_to(path)).lower())) for f in files}
    chosen = [f for f in files if split.lower() in words[f]]
    if chosen:
        return chosen
    if any(words[f] & _SPLIT_WORDS for f in files):
        names = ", ".join(str(f.relative_to(path)) for f in files)
        raise UserError(f"{path}: no file for split '{split}' (found: {names}); choose a split")
    return files


def _saved_dataset(path: Path, split: str):
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises several types for a damaged directory
        raise UserError(f"{path}: not a readable saved dataset: {exc}") from exc
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise UserError(f"{path}: no split '{split}' (splits: {', '.join(loaded)})")
        return loaded[split]
    return loaded


def _hub_dataset(name: str, split: str, config_name: str | None):
    config = f", config '{config_name}'" if config_name else ""
    return load_hub_dataset(
        name,
        what=f"{name}: no such local path (split '{split}'{config})",
        hint="give data.source a local .jsonl/.parquet file or folder",
        name=config_name,
        split=split,
    )


def _dataset_rows(dataset, where: str, label: str) -> Iterator[Row]:
    for number, record in enumerate(dataset, 1):
        yield f"{where} [{label}]: row {number}", f"{label}:{number}", record
