"""Checkpoints written in the background: the state of their step, the same files as a
synchronous save, one write at a time, errors not lost, exact resume through that path."""

from __future__ import annotations

import json
import threading
import time
import zipfile
from dataclasses import replace

import pytest
import torch

from gsil_bench.backend import checkpoint as checkpoint_module
from gsil_bench.backend.batches import tokenize_pairs
from gsil_bench.backend.checkpoint import Checkpointer, CheckpointWriteError, cpu_copy
from gsil_bench.backend.trainer import _training_accelerator, train
from gsil_bench.config import OptimConfig
from gsil_bench.registry import get_loss

FILES = {
    "pytorch_model.bin",
    "optimizer.bin",
    "custom_checkpoint_0.pkl",
    "random_states_0.pkl",
    "trainer_state.json",
}


def _setup(model):
    """A model, AdamW and a scheduler prepared as ``train`` prepares them, after one step."""
    accelerator = _training_accelerator("no")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 / (s + 1))
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    _step(model, optimizer, scheduler)
    return accelerator, model, optimizer, scheduler


def _step(model, optimizer, scheduler):
    ids = torch.randint(0, 100, (2, 8)).to(next(model.parameters()).device)
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def _assert_same(a, b, where="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif hasattr(a, "shape") or (isinstance(a, float) and a != a):  # numpy RNG state, NaN
        assert repr(a) == repr(b), where
    else:
        assert a == b, where


def _gate(monkeypatch):
    """Background writes wait for the returned event; the order of writes is recorded."""
    opened, log = threading.Event(), []
    real_save = checkpoint_module.save

    def gated(obj, path, **kwargs):
        log.append(("start", path.parent.name, threading.current_thread().name))
        assert opened.wait(30)
        real_save(obj, path, **kwargs)
        log.append(("end", path.parent.name, threading.current_thread().name))

    monkeypatch.setattr(checkpoint_module, "save", gated)
    return opened, log


def test_async_checkpoint_holds_the_state_of_its_step(fresh_tiny, tmp_path, monkeypatch):
    accelerator, model, optimizer, scheduler = _setup(fresh_tiny())
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    moments = {i: s["exp_avg"].clone() for i, s in optimizer.state_dict()["state"].items()}
    rng = torch.get_rng_state()
    opened, _ = _gate(monkeypatch)
    checkpointer = Checkpointer(tmp_path, accelerator, asynchronous=True)
    checkpointer.save(1, {"note": "x"})
    assert not (tmp_path / "checkpoint").exists()  # the write waits for the gate
    _step(model, optimizer, scheduler)  # training goes on and changes every live tensor
    assert not torch.equal(model.state_dict()["lm_head.weight"], weights["lm_head.weight"])
    opened.set()
    checkpointer.join()

    saved = tmp_path / "checkpoint"
    assert {p.name for p in saved.iterdir()} == FILES
    _assert_same(weights, _load(saved / "pytorch_model.bin"))
    state = _load(saved / "optimizer.bin")["state"]
    _assert_same(moments, {i: s["exp_avg"] for i, s in state.items()})
    assert all(int(s["step"]) == 1 for s in state.values())  # one optimizer step taken
    assert _load(saved / "custom_checkpoint_0.pkl")["last_epoch"] == 1
    assert torch.equal(_load(saved / "random_states_0.pkl")["torch_manual_seed"], rng)
    assert json.loads((saved / "trainer_state.json").read_text()) == {"step": 1, "note": "x"}


def test_a_later_snapshot_copies_into_the_earlier_memory_and_holds_new_values(fresh_tiny, tmp_path):
    accelerator, model, optimizer, scheduler = _setup(fresh_tiny())
    checkpointer = Checkpointer(tmp_path, accelerator, asynchronous=True)
    checkpointer.save(1)
    checkpointer.join()
    first = {k: b.data_ptr() for k, b in checkpointer._buffers.items()}
    _step(model, optimizer, scheduler)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    checkpointer.save(2)
    checkpointer.join()
    assert {k: b.data_ptr() for k, b in checkpointer._buffers.items()} == first
    _assert_same(weights, _load(tmp_path / "checkpoint" / "pytorch_model.bin"))
    state = _load(tmp_path / "checkpoint" / "optimizer.bin")["state"]
    assert all(int(s["step"]) == 2 for s in state.values())


def test_async_and_sync_saves_write_the_same_files(fresh_tiny, tmp_path):
    accelerator, *_ = _setup(fresh_tiny())
    sync, background = tmp_path / "sync", tmp_path / "async"
    Checkpointer(sync, accelerator, asynchronous=False).save(3, {"a": 1})
    checkpointer = Checkpointer(background, accelerator, asynchronous=True)
    checkpointer.save(3, {"a": 1})
    assert checkpointer._writer is not None  # it did go through the background path
    checkpointer.join()

    names = {p.name for p in (sync / "checkpoint").iterdir()}
    assert names == {p.name for p in (background / "checkpoint").iterdir()} == FILES
    for name in names - {"trainer_state.json"}:
        _assert_same(_load(sync / "checkpoint" / name), _load(background / "checkpoint" / name))
        # the same storages (tied weights stay tied): as many archive members
        with (
            zipfile.ZipFile(sync / "checkpoint" / name) as a,
            zipfile.ZipFile(background / "checkpoint" / name) as b,
        ):
            assert len(a.namelist()) == len(b.namelist()), name
    state = "checkpoint/trainer_state.json"
    assert (sync / state).read_text() == (background / state).read_text()
    assert not list(tmp_path.glob("*/.checkpoint-*"))  # temporary directories renamed away


def test_one_write_in_flight(fresh_tiny, tmp_path, monkeypatch):
    accelerator, *_ = _setup(fresh_tiny())
    opened, log = _gate(monkeypatch)
    checkpointer = Checkpointer(tmp_path, accelerator, asynchronous=True)
    checkpointer.save(1)
    threading.Timer(0.2, opened.set).start()
    checkpointer.save(2)  # waits for the write of step 1 (released by the timer)
    checkpointer.join()
    folders = [folder for _, folder, _ in log]
    assert folders == sorted(folders) == [".checkpoint-1.tmp"] * 6 + [".checkpoint-2.tmp"] * 6
    assert {thread for *_, thread in log} == {"checkpoint-1", "checkpoint-2"}
    assert json.loads((tmp_path / "checkpoint" / "trainer_state.json").read_text())["step"] == 2


def test_a_failed_background_write_is_raised_naming_the_checkpoint(
    fresh_tiny, tmp_path, monkeypatch
):
    accelerator, *_ = _setup(fresh_tiny())
    checkpointer = Checkpointer(tmp_path, accelerator, asynchronous=True)
    checkpointer.save(1, wait=True)  # a good checkpoint first

    def full(obj, path, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(checkpoint_module, "save", full)
    checkpointer.save(2)
    where = str(tmp_path / "checkpoint")
    with pytest.raises(CheckpointWriteError, match=f"{where}.*OSError: No space left"):
        checkpointer.save(3)  # raised by the next save, before it writes anything
    checkpointer.join()  # raised once, not again
    assert json.loads((tmp_path / "checkpoint" / "trainer_state.json").read_text())["step"] == 1

    checkpointer.save(4)
    with pytest.raises(ValueError) as raised, checkpointer.flushing():
        raise ValueError("the step failed")  # the training error stays the one raised
    assert any(where in note for note in raised.value.__notes__)


def test_a_stop_saves_synchronously(fresh_tiny, tmp_path, monkeypatch):
    accelerator, *_ = _setup(fresh_tiny())
    opened, log = _gate(monkeypatch)
    checkpointer = Checkpointer(tmp_path, accelerator, asynchronous=True)
    checkpointer.save(1, wait=True)
    assert checkpointer._writer is None and log == []  # no background write was started
    assert json.loads((tmp_path / "checkpoint" / "trainer_state.json").read_text())["step"] == 1


def test_background_writes_by_default_only_beside_accelerator_training(fresh_tiny, tmp_path):
    accelerator, *_ = _setup(fresh_tiny())
    on_cpu = accelerator.device.type == "cpu"
    assert Checkpointer(tmp_path, accelerator).asynchronous is not on_cpu
    assert not checkpoint_module.writer_has_a_core(torch.device("cpu"))
    assert checkpoint_module.writer_has_a_core(torch.device("cuda"))


def test_cpu_copy_is_a_copy_that_keeps_shared_storages():
    base = torch.arange(6.0)
    state = {"all": base, "tail": base[2:], "step": 3, "groups": [{"lr": 0.1}]}
    copied = cpu_copy(state, {})
    base.add_(100.0)
    assert torch.equal(copied["tail"], torch.tensor([2.0, 3.0, 4.0, 5.0]))
    assert copied["tail"].untyped_storage().data_ptr() == copied["all"].untyped_storage().data_ptr()
    assert copied["tail"].storage_offset() == 2
    assert copied["groups"] == [{"lr": 0.1}] and copied["groups"] is not state["groups"]


PROMPTS = [[{"role": "user", "content": f"What is {i} + {i + 1}?"}] for i in range(16)]
REALS = [f"{i} + {i + 1} = {2 * i + 1}. #### {2 * i + 1}" for i in range(16)]
FAKES = [f"{i} + {i + 1} = {2 * i}. #### {2 * i}" for i in range(16)]


def test_resume_from_background_checkpoints_matches_uninterrupted_run(
    tiny_tokenizer, fresh_tiny, tmp_path, monkeypatch
):
    """Slow background writes (training runs ahead of them), a crash during step 5 after
    the step-4 checkpoint: the resumed run ends with the uninterrupted run's weights and log."""
    examples, _, _ = tokenize_pairs(
        tiny_tokenizer, PROMPTS, REALS, FAKES, max_prompt_tokens=64, max_length=128
    )
    spec = get_loss("spin")
    kwargs = dict(
        hparams={"beta": 1.0},
        optim=OptimConfig(lr=1e-3, batch_size=4, epochs=2, checkpoint_every=2),
        seed=3,
        pad_id=tiny_tokenizer.pad_token_id,
        reference={"real": torch.zeros(16), "generated": torch.zeros(16)},
    )
    straight = fresh_tiny()
    train(straight, examples, loss=spec, run_dir=tmp_path / "straight", **kwargs)

    threads, real_save = set(), checkpoint_module.save

    def slow(obj, path, **kw):
        threads.add(threading.current_thread().name)
        time.sleep(0.05)
        real_save(obj, path, **kw)

    monkeypatch.setattr(checkpoint_module, "save", slow)
    monkeypatch.setattr(checkpoint_module, "writer_has_a_core", lambda device: True)
    calls = {"n": 0}

    def crashing(batch, **hp):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return spec.fn(batch, **hp)

    run_dir = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        train(fresh_tiny(), examples, loss=replace(spec, fn=crashing), run_dir=run_dir, **kwargs)
    assert threads == {"checkpoint-2", "checkpoint-4"}  # both written in the background
    resumed = fresh_tiny()
    result = train(resumed, examples, loss=spec, run_dir=run_dir, **kwargs)
    assert result.resumed_from == 4
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    rows = [json.loads(x) for x in (run_dir / "train_log.jsonl").read_text().splitlines()]
    expected = (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()
    assert [r["step"] for r in rows] == list(range(1, result.steps + 1))
    for row, other in zip(rows, map(json.loads, expected), strict=True):
        assert row["loss"] == other["loss"] and row["grad_norm"] == other["grad_norm"]
