"""The latest resumable state of a run, under ``<run dir>/checkpoint``, written atomically.

A checkpoint is accelerate's ``save_state`` layout plus ``trainer_state.json`` (the step and
what :class:`~gsil_bench.backend.health.Health` keeps), written to a temporary directory and
renamed into place, so that a crash mid-write leaves the previous checkpoint intact.

On a single process the write need not stall training: at the step boundary the model,
optimizer, scheduler and custom-object states are *copied* into CPU memory (the RNG states,
the scaler and sampler states are small and written right away), and a background thread
writes the files, ``trainer_state.json`` and the rename while training goes on mutating the
live tensors. At most one write is in flight: a save, a load and the end of training first
wait for the previous one, and an error in a background write is raised there, naming the
checkpoint. This is the default where training leaves the host's cores to the writer (on a
GPU: :func:`writer_has_a_core`); on the CPU the write would only take the cores training
uses. Under several processes the save stays synchronous: the
rename must wait for every process's files (a barrier), and a collective issued from a
background thread would interleave with the training loop's own collectives. A snapshot
holds a second copy of the state in host memory (kept for the next snapshot until training
ends); where that would take over half the memory available, the save is synchronous.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import shutil
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.checkpointing import save_accelerator_state
from accelerate.utils import OPTIMIZER_NAME, SCHEDULER_NAME, WEIGHTS_NAME, DistributedType, save

# A snapshot may take at most this fraction of the memory available when it is taken;
# beyond it the save is synchronous (a second copy of a large model would not fit).
_MEMORY_FRACTION = 0.5


class CheckpointWriteError(RuntimeError):
    """A background checkpoint write failed; raised on the next save, load or at the end."""


class Checkpointer:
    """Keeps the latest resumable state under ``<dir>/checkpoint`` (written atomically).

    ``asynchronous``: write in a background thread where that is safe (one process, no
    FSDP/DeepSpeed, no save hooks, the snapshot fits in memory); ``False`` always writes
    synchronously; ``None`` (the default): in the background beside training on an
    accelerator (:func:`writer_has_a_core`). The files are the same either way.
    """

    def __init__(
        self, directory: Path, accelerator: Accelerator, *, asynchronous: bool | None = None
    ):
        self.dir = directory
        self.latest = directory / "checkpoint"
        self.accelerator = accelerator
        if asynchronous is None:
            asynchronous = writer_has_a_core(accelerator.device)
        self.asynchronous = asynchronous
        self._writer: threading.Thread | None = None
        self._error: BaseException | None = None
        self._warned = False
        # The copies of the last snapshot, by the live storage they copy: the next snapshot
        # copies into them (its write has been waited for), 2-3x faster than into new memory.
        self._buffers: dict[tuple, torch.UntypedStorage] = {}

    def load(self) -> tuple[int, dict[str, Any]]:
        """(the step to resume from, the trainer state saved with it)."""
        self.join()
        state = self.latest / "trainer_state.json"
        if not state.exists():
            return 0, {}
        self.accelerator.load_state(str(self.latest))
        saved = json.loads(state.read_text())
        return int(saved["step"]), saved

    def save(self, step: int, extra: dict[str, Any] | None = None, *, wait: bool = False) -> None:
        """Checkpoint ``step``; ``wait``: return only once it is on disk (used before a stop)."""
        self.join()
        tmp = self.dir / f".checkpoint-{step}.tmp"
        trainer_state = json.dumps({"step": step, **(extra or {})})
        if wait or not self._async_allowed():
            self._save_now(tmp, trainer_state)
            return
        files = self._snapshot(tmp)
        self._writer = threading.Thread(
            target=self._write,
            args=(files, tmp, trainer_state),
            name=f"checkpoint-{step}",
            daemon=False,  # the interpreter waits for it at exit, so a write is never cut off
        )
        self._writer.start()

    def join(self) -> None:
        """Wait for the write in flight; raise :class:`CheckpointWriteError` if it failed."""
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        if self._error is not None:
            error, self._error = self._error, None
            raise CheckpointWriteError(
                f"writing the checkpoint {self.latest} failed: {type(error).__name__}: {error}"
            ) from error

    @contextlib.contextmanager
    def flushing(self) -> Iterator[None]:
        """Wait for the last write when the block ends; on an error in the block, a failed
        write is noted on that error rather than hiding it."""
        try:
            yield
        except BaseException as error:
            try:
                self.join()
            except CheckpointWriteError as write_error:
                error.add_note(str(write_error))
            raise
        finally:
            self._buffers = {}
        self.join()

    def _save_now(self, tmp: Path, trainer_state: str) -> None:
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(tmp), safe_serialization=False)
        if self.accelerator.is_main_process:
            self._publish(tmp, trainer_state)
        self.accelerator.wait_for_everyone()

    def _publish(self, tmp: Path, trainer_state: str) -> None:
        (tmp / "trainer_state.json").write_text(trainer_state)
        old = self.dir / ".checkpoint-old"
        if self.latest.exists():
            os.replace(self.latest, old)
        os.replace(tmp, self.latest)
        shutil.rmtree(old, ignore_errors=True)

    def _async_allowed(self) -> bool:
        acc = self.accelerator
        return (
            self.asynchronous
            and acc.num_processes == 1
            and acc.distributed_type == DistributedType.NO
            and not acc._save_model_state_pre_hook
            and not acc.project_configuration.automatic_checkpoint_naming
            and self._snapshot_fits()
        )

    def _snapshot_fits(self) -> bool:
        acc = self.accelerator
        states = [m.state_dict() for m in acc._models] + [o.state_dict() for o in acc._optimizers]
        need = _storage_bytes(states) - sum(b.nbytes() for b in self._buffers.values())
        available = _available_memory()
        if available is None or need <= _MEMORY_FRACTION * available:
            return True
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"checkpoints to {self.latest} are written synchronously: a copy of the "
                f"state ({need / 2**30:.1f} GiB) would not fit in memory",
                stacklevel=3,
            )
        return False

    def _snapshot(self, tmp: Path) -> dict[Path, tuple[Any, bool]]:
        """Copy what ``save_state`` would write into CPU memory; write the small states
        (RNG, scaler, samplers) now. Returns {file: (state, save on each node)}."""
        acc = self.accelerator
        each_node = acc.project_configuration.save_on_each_node
        tmp.mkdir(parents=True, exist_ok=True)
        # The RNG states must be those of this step boundary: written here, in this thread.
        save_accelerator_state(
            str(tmp), [], [], [], acc._dataloaders, acc.state.process_index, acc.step,
            acc.scaler, save_on_each_node=each_node, safe_serialization=False,
        )  # fmt: skip
        memo: dict[tuple, torch.UntypedStorage] = {}
        snap = functools.partial(cpu_copy, memo=memo, reuse=self._buffers)
        files: dict[Path, tuple[Any, bool]] = {}
        for i, model in enumerate(acc._models):
            name = WEIGHTS_NAME if i == 0 else WEIGHTS_NAME.replace(".", f"_{i}.")
            weights = acc.get_state_dict(model, unwrap=False)
            files[tmp / name] = (snap(weights), each_node)
        for kind, objects in ((OPTIMIZER_NAME, acc._optimizers), (SCHEDULER_NAME, acc._schedulers)):
            for i, obj in enumerate(objects):
                name = f"{kind}.bin" if i == 0 else f"{kind}_{i}.bin"
                files[tmp / name] = (snap(obj.state_dict()), each_node)
        for i, obj in enumerate(acc._custom_objects):
            files[tmp / f"custom_checkpoint_{i}.pkl"] = (snap(obj.state_dict()), each_node)
        acc.project_configuration.iteration += 1  # as save_state counts its saves
        self._buffers = memo
        return files

    def _write(self, files: dict[Path, tuple[Any, bool]], tmp: Path, trainer_state: str) -> None:
        try:
            for path, (state, each_node) in files.items():
                save(state, path, save_on_each_node=each_node, safe_serialization=False)
            self._publish(tmp, trainer_state)
        except BaseException as error:  # raised in the training thread by join()
            self._error = error


def writer_has_a_core(device: torch.device) -> bool:
    """Whether a background write runs beside training rather than taking its cores.

    Writing a checkpoint is CPU work (pickling, copying into the page cache). Training on an
    accelerator leaves the host's cores to it. Training on the CPU does not, even on fewer
    threads than cores (other workers of a sweep take the rest): measured on 2 shared cores
    with 1 training thread (benchmarks/bench_async_checkpoint.py), a background save blocked
    the loop 0.21x as long as a synchronous one but stalled training 1.3x as long in all,
    the copy included.
    """
    return device.type != "cpu"


def cpu_copy(
    obj: Any,
    memo: dict[tuple, torch.UntypedStorage],
    reuse: dict[tuple, torch.UntypedStorage] | None = None,
) -> Any:
    """A copy of ``obj`` (nested dicts, lists, tuples) whose tensors are copies on the CPU.

    Tensors that share a storage (tied embeddings, views) share the copied storage, so
    ``torch.save`` writes the same storages as it would for the originals. ``memo`` collects
    the copies by the storage they copy; ``reuse``: an earlier ``memo`` whose copies (no
    longer read by anyone) are overwritten rather than new memory allocated.
    """
    if isinstance(obj, torch.Tensor):
        return _copy_tensor(obj, memo, reuse or {})
    if isinstance(obj, dict):
        out = copy.copy(obj)  # keeps the type and attributes (a state dict's ``_metadata``)
        if hasattr(out, "_metadata"):
            out._metadata = copy.deepcopy(out._metadata)
        for key, value in obj.items():
            out[key] = cpu_copy(value, memo, reuse)
        return out
    if type(obj) in (list, tuple):
        return type(obj)(cpu_copy(value, memo, reuse) for value in obj)
    return copy.deepcopy(obj)


def _copy_tensor(
    tensor: torch.Tensor,
    memo: dict[tuple, torch.UntypedStorage],
    reuse: dict[tuple, torch.UntypedStorage],
) -> torch.Tensor:
    if tensor.layout != torch.strided or tensor.is_quantized or type(tensor) is not torch.Tensor:
        return tensor.detach().to("cpu", copy=True)
    storage = tensor.untyped_storage()
    key = (storage.data_ptr(), storage.nbytes(), str(storage.device))
    copied = memo.get(key) if storage.nbytes() else None
    if copied is None:
        copied = reuse.get(key)
        if copied is not None and storage.nbytes():
            copied.copy_(storage)
        else:
            copied = storage.clone() if storage.device.type == "cpu" else storage.cpu()
        memo[key] = copied
    out = torch.empty((0,), dtype=tensor.dtype)
    return out.set_(copied, tensor.storage_offset(), tensor.size(), tensor.stride())


def _storage_bytes(states: list[Any]) -> int:
    seen: dict[tuple, int] = {}

    def visit(obj: Any) -> None:
        if isinstance(obj, torch.Tensor):
            storage = obj.untyped_storage()
            seen[(storage.data_ptr(), str(storage.device))] = storage.nbytes()
        elif isinstance(obj, dict):
            for value in obj.values():
                visit(value)
        elif isinstance(obj, list | tuple):
            for value in obj:
                visit(value)

    visit(states)
    return sum(seen.values())


def _available_memory() -> int | None:
    """Bytes of host memory available (Linux ``MemAvailable``); None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
