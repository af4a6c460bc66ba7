"""What a training run records: its per-epoch rows as dvclive series, and its result.

Each epoch of :class:`robustprune.training.Trainer` produces one history row (loss, learning
rate, validation accuracies, cumulative passes and seconds, the catastrophic-overfitting flag).
:class:`EpochLogger` writes those rows as the per-epoch plots a stage declares; after a resume
it is handed the rows already in the checkpoint first, so the series stay whole.
:class:`TrainResult` is what a run returns: the history, the cost summary, the row the model
ends on, and the epoch it was rolled back to, if any.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class EpochLogger:
    """dvclive per-epoch metrics; replays resumed epochs so the plots are whole after a resume.

    The folder ends holding only dvclive's per-metric series (``plots/metrics/*.tsv``): the
    summary dvclive also writes (``metrics.json``) repeats the stage's own metrics file and,
    inside a folder that dvc.yaml declares as plots, is read as one more series that fails to
    parse (``dvc plots show`` warns for each)."""

    def __init__(self, directory: Path | None) -> None:
        self.live = None
        self.directory = directory
        if directory is not None:
            from dvclive import Live

            self.live = Live(str(directory), dvcyaml=False, save_dvc_exp=False, report=None)

    def log(self, row: dict[str, float]) -> None:
        if self.live is None:
            return
        for key, value in row.items():
            if key != "epoch":
                self.live.log_metric(key, value)
        self.live.next_step()

    def close(self) -> None:
        if self.live is not None and self.directory is not None:
            self.live.end()
            (self.directory / "metrics.json").unlink(missing_ok=True)


@dataclass
class TrainResult:
    history: list[dict[str, float]]
    cost: dict[str, float | int]
    final: dict[str, float] = field(default_factory=dict)
    rolled_back_to: int | None = None
