"""A study's journal can be read while a sweep writes it: what ``optuna-dashboard
results/<study>/study.journal`` does (Optuna's JournalStorage over a JournalFileBackend, from
another process). The writer opens the study exactly as the sweep does (``open_study``) and
finishes trials at a known pace; it runs no training, to keep the test short."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

TRIALS = 30
WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from gsil_bench.study.spec import load_sweep
    from gsil_bench.study.storage import open_study, paths_for

    spec = load_sweep(sys.argv[1])
    study = open_study(spec, paths_for(spec, Path(sys.argv[2]), Path(sys.argv[3])), None)
    for number in range(int(sys.argv[4])):
        trial = study.ask()
        trial.set_user_attr("label", f"sft {number}")
        trial.report(number * 0.25, step=0)
        study.tell(trial, number * 0.5)
        print(number, flush=True)
        time.sleep(0.1)
    """
)


def _read(journal: Path) -> list[optuna.trial.FrozenTrial]:
    """What a dashboard started now would see: a fresh storage over the file."""
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    return optuna.load_study(study_name="tiny", storage=storage).get_trials(deepcopy=False)


def test_journal_opens_from_another_process_while_written(
    tiny_sweep: Callable[..., Path], tmp_path: Path
) -> None:
    sweep = tiny_sweep([{"loss": "sft"}], controls={"base": False})
    results, runs = tmp_path / "res", tmp_path / "runs"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(sweep), str(results), str(runs), str(TRIALS)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert writer.stdout is not None
    try:
        assert writer.stdout.readline().strip() == "0"  # the study exists, a trial is done
        journal = results / "tiny" / "study.journal"
        # One storage kept open across reads (a dashboard polling) and a fresh one per read.
        polling = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
        counts, during = [], []
        while writer.poll() is None:
            seen = _read(journal)
            kept = optuna.load_study(study_name="tiny", storage=polling).get_trials()
            if writer.poll() is None:
                during.append(len(seen))
            counts.append(len(kept))
            for trial in seen:  # a finished trial is read whole, never half written
                if trial.state == TrialState.COMPLETE:
                    assert trial.value == trial.number * 0.5
                    assert trial.user_attrs["label"] == f"sft {trial.number}"
                    assert trial.intermediate_values == {0: trial.number * 0.25}
            time.sleep(0.2)
        assert writer.wait(timeout=60) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert any(0 < count < TRIALS for count in during), during  # read mid-sweep
    assert counts == sorted(counts)
    final = _read(journal)
    assert [t.state for t in final] == [TrialState.COMPLETE] * TRIALS
    assert [t.value for t in final] == [n * 0.5 for n in range(TRIALS)]
