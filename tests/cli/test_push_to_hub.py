"""`gsil-bench train --push-to-hub`: tested up to the Hub client's calls (a stub client)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pytest
import yaml
from typer.testing import CliRunner

from gsil_bench.cli.app import app
from gsil_bench.errors import UserError
from gsil_bench.experiment.hub import push_model

TINY = str(Path(__file__).resolve().parents[1] / "fixtures" / "tiny_run.yaml")


class StubApi:
    """Records what an HfApi would be asked; fails when told to."""

    calls: list[tuple[str, dict]] = []
    fail: Exception | None = None

    def create_repo(self, repo_id, **kwargs):
        StubApi.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        if StubApi.fail is not None:
            raise StubApi.fail
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        files = sorted(p.name for p in Path(kwargs["folder_path"]).iterdir())
        StubApi.calls.append(("upload_folder", {**kwargs, "files": files}))


@pytest.fixture
def stub(monkeypatch):
    StubApi.calls, StubApi.fail = [], None
    monkeypatch.setattr(huggingface_hub, "HfApi", StubApi)
    return StubApi


def test_train_pushes_the_final_model_with_its_card(tmp_path, stub):
    run_dir = tmp_path / "run"
    args = ["train", TINY, "--set", f"output_dir={run_dir}", "--set", f"cache_dir={tmp_path}/c"]
    result = CliRunner().invoke(app, [*args, "--push-to-hub", "me/tiny-gsil", "--private"])
    assert result.exit_code == 0, result.output
    assert "pushed: https://huggingface.co/me/tiny-gsil" in result.output
    (create, kwargs), (upload, sent) = stub.calls
    assert create == "create_repo" and kwargs["repo_id"] == "me/tiny-gsil"
    assert kwargs["private"] is True and kwargs["exist_ok"] is True
    assert upload == "upload_folder" and sent["repo_id"] == "me/tiny-gsil"
    assert Path(sent["folder_path"]) == run_dir / "round-1" / "model"
    assert {"README.md", "config.json", "tokenizer.json"} <= set(sent["files"])
    card = (run_dir / "round-1" / "model" / "README.md").read_text()
    assert yaml.safe_load(card.split("---")[1])["library_name"]  # the Hub's front matter


def test_a_bad_repo_name_fails_before_training(tmp_path):
    run_dir = tmp_path / "run"
    args = ["train", TINY, "--set", f"output_dir={run_dir}", "--push-to-hub", "no-owner"]
    proc = subprocess.run(
        [sys.executable, "-m", "gsil_bench.cli.app", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: --push-to-hub: 'no-owner' is not a repository name (owner/name)"
    )
    assert not run_dir.exists()


def test_a_failed_upload_is_one_line_and_keeps_the_model(tmp_path, stub):
    folder = tmp_path / "round-1" / "model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    stub.fail = OSError("401 Client Error: Unauthorized for url\nmore detail")
    with pytest.raises(UserError) as info:
        push_model(folder, "me/x", api=StubApi())
    message = str(info.value)
    assert "--push-to-hub me/x: the upload failed (401 Client Error" in message
    assert "\n" not in message and str(folder) in message and folder.exists()
    with pytest.raises(UserError, match="holds no saved model"):
        push_model(tmp_path, "me/x", api=StubApi())
