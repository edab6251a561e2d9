"""Hub lookups fail at once, in one line, when the Hub cannot be reached."""

from __future__ import annotations

import socket

import pytest

from gsil_bench import hub_access
from gsil_bench.errors import UserError

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


@pytest.fixture
def fresh(monkeypatch):
    """No offline variable, no proxy, no earlier probe; whatever the test sets is undone."""
    for name in (*OFFLINE_VARS, "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub_access, "_CHECKED", {})
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    probes: list[tuple] = []
    return probes


def _unreachable(probes):
    def connect(address, timeout):
        probes.append((address, timeout))
        raise OSError("Network is unreachable")

    return connect


def test_an_unreachable_hub_switches_the_libraries_offline(fresh, monkeypatch):
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(socket, "create_connection", _unreachable(fresh))
    assert hub_access.offline_unless_reachable() is True
    assert hub_access.offline_unless_reachable() is True  # probed once per process
    assert fresh == [(("huggingface.co", 443), hub_access.PROBE_TIMEOUT_S)]
    assert huggingface_hub.constants.HF_HUB_OFFLINE is True
    assert datasets.config.HF_HUB_OFFLINE is True
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_an_uncached_dataset_then_fails_in_one_line(fresh, monkeypatch):
    monkeypatch.setattr(socket, "create_connection", _unreachable(fresh))
    with pytest.raises(UserError) as info:
        hub_access.load_hub_dataset(
            "openai/gsm8k", what="GSM8K", hint="give a local path", name="main", split="test"
        )
    message = str(info.value)
    assert message.startswith("GSM8K: cannot load 'openai/gsm8k' from the Hugging Face Hub")
    assert "unreachable or HF_HUB_OFFLINE is set" in message and message.endswith("local path")
    assert "\n" not in message


def test_a_reachable_hub_or_a_proxy_stays_online(fresh, monkeypatch):
    class Open:
        def close(self):
            fresh.append("closed")

    monkeypatch.setattr(socket, "create_connection", lambda address, timeout: Open())
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example.org")
    assert hub_access.offline_unless_reachable() is False and fresh == ["closed"]
    monkeypatch.setattr(hub_access, "_CHECKED", {})
    monkeypatch.setattr(socket, "create_connection", _unreachable(fresh))
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert hub_access.offline_unless_reachable() is False  # no direct probe behind a proxy
    assert fresh == ["closed"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_access.offline_unless_reachable() is True  # the user's own setting
