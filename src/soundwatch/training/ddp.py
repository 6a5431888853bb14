"""Multi-process (DDP) training support: send rank 0's training state back to the caller."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from soundwatch.atomic import atomic_open

__all__ = ["RankZeroExport"]


class RankZeroExport(pl.Callback):
    """Send global rank 0's history and best weights to the process that called fit.

    With forked or spawned ranks (Lightning's ``ddp_fork``/``ddp_spawn``), the calling
    process gets the final weights back from Lightning, but the callbacks that ran in
    the ranks are copies: rank 0 saves the history callback's state into ``folder`` at
    the end of fit, and :meth:`restore` (in the caller) loads it into the caller's history
    callback and removes the folder. Module level, so that ``ddp_spawn`` can pickle it.

    Args:
        history: The caller's :class:`~soundwatch.training.callbacks.HistoryCallback`.
        folder: A private temporary folder.
    """

    def __init__(self, history: Any, folder: Path) -> None:
        self.history = history
        self.folder = Path(folder)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        if trainer.global_rank == 0:
            buffer = io.BytesIO()
            torch.save(self.history.state_dict(), buffer)
            with atomic_open(self.folder / "history.pt", "wb") as handle:
                handle.write(buffer.getbuffer())

    def restore(self) -> None:
        """Load rank 0's history into the caller's callback; remove the folder."""
        path = self.folder / "history.pt"
        try:
            if path.is_file():
                self.history.load_state_dict(torch.load(path, map_location="cpu",
                                                        weights_only=False))
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
