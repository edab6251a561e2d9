"""The shared I/O rules: atomic writes, JSONL(.gz) reading with one clear error, Hub or local."""

from __future__ import annotations

import gzip
import json
import os
import stat
from pathlib import Path

import pytest

from gsil_bench.errors import UserError
from gsil_bench.io import (
    atomic_write_json,
    atomic_write_text,
    is_local,
    iter_jsonl,
    iter_lines,
    read_json,
    read_jsonl,
    read_text,
)


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "out.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert os.listdir(path.parent) == ["out.json"]


def test_atomic_write_gives_the_permissions_of_a_plain_open(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "t.md", "x")
        (tmp_path / "plain.md").write_text("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "t.md").stat().st_mode)
    assert mode == 0o640 == stat.S_IMODE((tmp_path / "plain.md").stat().st_mode)


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "out.json"
    atomic_write_text(path, "old")
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.json"]


def test_jsonl_and_gzip_read_alike(tmp_path):
    rows = [{"x": 1}, {"x": 2}]
    text = json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n"
    (tmp_path / "a.jsonl").write_text(text)
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as handle:
        handle.write(text)
    assert read_jsonl(tmp_path / "a.jsonl") == rows == read_jsonl(tmp_path / "a.jsonl.gz")
    # Line numbers count blank lines: the second record is on line 3.
    assert [n for n, _ in iter_jsonl(tmp_path / "a.jsonl")] == [1, 3]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"x": 1}\n{"x": \n', r"b\.jsonl:2: not valid JSON \(.*column 7\)"),
        (b'{"x": "\xff"}\n', "not UTF-8"),
        (b"[1, 2]\n", r"b\.jsonl:1: expected a JSON object, got an array"),
    ],
)
def test_bad_jsonl_is_one_error_naming_file_and_line(tmp_path, content, message):
    path = tmp_path / "b.jsonl"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_jsonl(path)


def test_truncated_gzip_and_wrong_paths_are_user_errors(tmp_path):
    whole = gzip.compress(b'{"x": 1}\n' * 200)
    (tmp_path / "t.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UserError, match="truncated or corrupt gzip"):
        read_jsonl(tmp_path / "t.jsonl.gz")
    with pytest.raises(UserError, match="no such file"):
        read_jsonl(tmp_path / "missing.jsonl")
    with pytest.raises(UserError, match="is a directory"):
        read_jsonl(tmp_path)


def test_read_json_names_line_and_column(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{\n  "a": 1,\n  "b": }\n')
    with pytest.raises(UserError, match=r"x\.json:3: not valid JSON \(.*column 8\)"):
        read_json(path)


def test_bad_byte_names_its_line_and_character_column(tmp_path):
    # Line 3 is "é" (two bytes, one character) then the stray byte 0xff: character column 2.
    path = tmp_path / "enc.jsonl"
    path.write_bytes(b'{"x": 1}\n\n\xc3\xa9\xff\n')
    with pytest.raises(UserError, match=r"enc\.jsonl:3: not UTF-8 text \(.*column 2\)"):
        list(iter_lines(path))
    with pytest.raises(UserError, match=r"enc\.jsonl:3: not UTF-8 text \(.*column 2\)"):
        read_text(path)
    # The same inside a gzip: the line is counted in the decompressed text.
    gz = tmp_path / "enc.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(UserError, match=r"enc\.jsonl\.gz:3: not UTF-8"):
        read_jsonl(gz)


def test_a_late_bad_line_is_found_in_a_large_file(tmp_path):
    # Past the 8 KiB a text-mode reader decodes at once: the line is still the right one;
    # the byte follows {"x": " (7 characters), so it is at column 8.
    path = tmp_path / "big.jsonl"
    path.write_bytes(b'{"x": 1}\n' * 5000 + b'{"x": "\xfe"}\n')
    with pytest.raises(UserError, match=r"big\.jsonl:5001: not UTF-8 text \(.*column 8\)"):
        read_jsonl(path)


def test_broken_json_column_is_the_column_in_the_file(tmp_path):
    # Leading spaces and a non-ASCII character before the fault count as one column each:
    # '  {"é": 1,' is 10 characters, the missing property name is at column 11.
    path = tmp_path / "c.jsonl"
    path.write_text('{"a": 1}\n  {"é": 1,\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"c\.jsonl:2: not valid JSON \(.*column 11\)$"):
        read_jsonl(path)


def test_a_byte_order_mark_is_not_part_of_the_data(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"x": 1}\n')
    assert read_jsonl(path) == [{"x": 1}]
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf[1]")
    assert read_json(path) == [1]


def test_every_reader_names_a_directory_and_a_truncated_gzip(tmp_path):
    folder = tmp_path / "d.jsonl"
    folder.mkdir()
    for read in (read_text, read_json, read_jsonl):
        with pytest.raises(UserError, match=rf"^{folder}: is a directory"):
            read(folder)
    whole = gzip.compress(b"some text\n" * 200)
    (tmp_path / "t.txt.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UserError, match="t.txt.gz: truncated or corrupt gzip"):
        read_text(tmp_path / "t.txt.gz")
    (tmp_path / "plain.jsonl.gz").write_text('{"x": 1}\n')  # named .gz, not compressed
    with pytest.raises(UserError, match="plain.jsonl.gz: truncated or corrupt gzip"):
        read_jsonl(tmp_path / "plain.jsonl.gz")


@pytest.mark.parametrize(
    ("source", "local"),
    [
        ("openai/gsm8k", False),
        ("gsm8k", False),
        ("./gsm8k", True),
        ("/data/gsm8k", True),
        ("~/gsm8k", True),
        ("data/gsm8k/test", True),
        ("test.jsonl", True),
        ("prefs.parquet", True),
    ],
)
def test_hub_or_local(source, local):
    assert is_local(source) is local


def test_an_existing_folder_is_local_even_if_it_looks_like_a_hub_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner" / "name").mkdir(parents=True)
    assert is_local("owner/name")


def test_machine_info_names_the_cpu_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two machines of one kind can be an Intel Xeon and an AMD EPYC, three times apart in
    speed: a run's record and a study's manifest say which."""
    import gsil_bench.io as io_module

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n")
    real_path = io_module.Path
    monkeypatch.setattr(
        io_module, "Path", lambda p: cpuinfo if p == "/proc/cpuinfo" else real_path(p)
    )
    assert io_module.cpu_model() == "AMD EPYC"
    assert io_module.machine_info()["cpu"] == "AMD EPYC"
    cpuinfo.write_text("processor\t: 0\n")  # no model name line (some ARM kernels)
    assert io_module.cpu_model() == (io_module.platform.processor() or "unknown")
