"""A live view of a sweep: trials done, running, failed and the best so far.

A Rich live table on a terminal; one plain line per finished trial otherwise (CI, logs).
"""

from __future__ import annotations

from rich.console import Console
from rich.live import Live
from rich.table import Table

from gsil_bench.progress import interactive


class LiveView:
    def __init__(self, console: Console):
        self.console = console
        self.live = Live(console=console, refresh_per_second=2) if interactive() else None

    def __enter__(self) -> LiveView:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self, study) -> None:
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        count = {s: sum(t.state == s for t in trials) for s in TrialState}
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        best = max(done, key=lambda t: t.values[0], default=None) if done else None
        best_text = f"{best.user_attrs.get('label')} ({best.values[0]:.4f})" if best else "-"
        if self.live is None:
            self.console.print(
                f"[sweep] done {count[TrialState.COMPLETE]}, running "
                f"{count[TrialState.RUNNING]}, queued {count[TrialState.WAITING]}, failed "
                f"{count[TrialState.FAIL]}, pruned {count[TrialState.PRUNED]}; best {best_text}",
                highlight=False,
            )
            return
        table = Table(title=f"sweep {study.study_name}")
        for column in ("done", "running", "queued", "failed", "pruned", "best so far"):
            table.add_column(column)
        table.add_row(
            *(
                str(count[s])
                for s in (
                    TrialState.COMPLETE,
                    TrialState.RUNNING,
                    TrialState.WAITING,
                    TrialState.FAIL,
                    TrialState.PRUNED,
                )
            ),
            best_text,
        )
        self.live.update(table)
