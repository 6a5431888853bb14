"""Training callbacks: epoch history and CSV log, best weights, atomic checkpoints, RNG state."""

from __future__ import annotations

import copy
import csv
import io
import logging
import math
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from soundwatch.atomic import atomic_open, write_text

__all__ = ["AtomicCheckpointIO", "HistoryCallback", "ResumeState"]

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoint writer that goes through :func:`soundwatch.atomic.atomic_open` (local files).

    The checkpoint is serialised in memory first and written with plain file writes, so a
    full disk raises ``OSError(ENOSPC)`` naming the file (``torch.save`` to a path reports
    it as ``RuntimeError: unexpected pos``), and a killed process leaves the previous
    checkpoint intact.
    """

    def save_checkpoint(  # noqa: D102
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        with atomic_open(path, "wb") as handle:
            handle.write(buffer.getbuffer())


class HistoryCallback(pl.Callback):
    """Collect one row of losses per epoch, write them to a CSV, remember the best weights.

    The row has ``epoch``, ``train_loss``, ``val_loss`` (when there is validation data),
    extra loss terms as ``train_<term>`` / ``val_<term>``, ``lr`` and ``time_s``. The CSV is
    rewritten atomically after every epoch, so an interrupted run leaves a valid log. On
    resume the rows of the earlier epochs are read back from the CSV.

    The best weights (lowest monitored loss) are copied to memory at the end of each
    validation epoch; it runs before the EMA callback swaps the raw weights back, so with
    EMA the snapshot is of the averaged weights, the ones validation measured.

    Args:
        log_csv: CSV path, or ``None`` for no file.
        keep_best: Keep a copy of the best weights (``best_state``).
    """

    def __init__(self, log_csv: str | Path | None = None, keep_best: bool = True) -> None:
        self.log_csv = Path(log_csv) if log_csv else None
        self.keep_best = keep_best
        self.rows: list[dict[str, Any]] = []
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self._val: dict[str, float] = {}
        self._t0 = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        start = trainer.current_epoch
        self.rows = [r for r in self.rows if int(r["epoch"]) < start]
        if start > 0 and not self.rows and self.log_csv is not None and self.log_csv.is_file():
            # a checkpoint of an older version without the rows: read them from the log
            with open(self.log_csv, newline="", encoding="utf-8") as handle:
                old = [r for r in csv.DictReader(handle) if int(r["epoch"]) < start]
            self.rows = [{k: _number(v) for k, v in r.items()} for r in old]

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        self._t0 = time.perf_counter()
        self._val = {}

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        if trainer.sanity_checking:
            return
        self._val = pl_module.epoch_means("val")  # type: ignore[operator]
        if self._val:
            self._maybe_keep(trainer, pl_module, self._val["loss"])

    def _maybe_keep(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: float) -> None:
        if loss < self.best_loss:
            self.best_loss = loss
            self.best_epoch = trainer.current_epoch
            if self.keep_best:
                net = pl_module.network  # type: ignore[attr-defined]
                self.best_state = {
                    k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()
                }

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:  # noqa: D102
        train = pl_module.epoch_means("train")  # type: ignore[operator]
        row: dict[str, Any] = {"epoch": trainer.current_epoch}
        row["train_loss"] = train.get("loss", math.nan)
        if self._val:
            row["val_loss"] = self._val["loss"]
        for key, value in train.items():
            if key != "loss":
                row[f"train_{key}"] = value
        for key, value in self._val.items():
            if key != "loss":
                row[f"val_{key}"] = value
        optimizers = trainer.optimizers
        row["lr"] = optimizers[0].param_groups[0]["lr"] if optimizers else math.nan
        row["time_s"] = round(time.perf_counter() - self._t0, 4)
        self.rows.append(row)
        if not self._val and train:  # no validation data: the training loss is monitored
            self._maybe_keep(trainer, pl_module, row["train_loss"])
        log.debug("epoch %d: %s", trainer.current_epoch, row)
        if self.log_csv is not None:
            self.write_csv()

    def write_csv(self) -> None:
        """Write every row so far to ``log_csv`` atomically."""
        if self.log_csv is None:
            return
        columns: list[str] = []
        for row in self.rows:
            columns += [c for c in row if c not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.log_csv, buffer.getvalue())

    def state_dict(self) -> dict[str, Any]:
        """Best loss and epoch, the best weights and the rows so far (saved in checkpoints).

        With them a resumed run returns the same best weights and the same history as an
        uninterrupted one, even when it was killed after the last epoch.
        """
        return {
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "rows": [dict(r) for r in self.rows],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # noqa: D102
        self.best_loss = float(state_dict.get("best_loss", math.inf))
        self.best_epoch = state_dict.get("best_epoch")
        if state_dict.get("best_state") is not None:
            self.best_state = state_dict["best_state"]
        if "rows" in state_dict:
            self.rows = [dict(r) for r in state_dict["rows"]]

    def __deepcopy__(self, memo: dict[int, Any]) -> HistoryCallback:
        clone = copy.copy(self)
        clone.rows = list(self.rows)
        return clone


class ResumeState(pl.Callback):
    """Save and restore every random state and data-order state with the checkpoints.

    Lightning checkpoints hold the weights, the optimiser, the schedulers and the
    callbacks, but not the random number generators, so a resumed run shuffled, dropped
    out and drew synthetic anomalies differently from an uninterrupted one. This callback
    adds to each checkpoint the global torch (and CUDA), numpy and Python generators, the
    data loaders' shuffling generators, and the ``state_dict()`` of every dataset that has
    one (per-item fetch counters...), and puts them back when training resumes, so a
    resumed CPU run is bit-identical to an uninterrupted one.

    Checkpoints are written at the end of an epoch, after its last batch was fetched, so
    the saved state is the one the next epoch starts from.

    Args:
        generators: The ``torch.Generator`` objects of the data loaders' samplers.
        datasets: Datasets; those with ``state_dict``/``load_state_dict`` are saved.
    """

    def __init__(self, generators: Sequence[torch.Generator] = (),
                 datasets: Sequence[Any] = ()) -> None:
        self.generators = list(generators)
        self.datasets = [d for d in _unique(datasets) if _has_state(d)]
        self.restored = False

    def state_dict(self) -> dict[str, Any]:  # noqa: D102
        np_state = np.random.get_state()
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].copy()),
                      "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                      "cached_gaussian": float(np_state[4])},
            "python": random.getstate(),
            "generators": [g.get_state() for g in self.generators],
            "datasets": [d.state_dict() for d in self.datasets],
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # noqa: D102
        torch.set_rng_state(state_dict["torch"])
        npst = state_dict["numpy"]
        np.random.set_state((npst["name"], npst["keys"].numpy().astype(np.uint32),
                             npst["pos"], npst["has_gauss"], npst["cached_gaussian"]))
        random.setstate(_as_tuple(state_dict["python"]))
        saved = state_dict.get("generators", [])
        if len(saved) != len(self.generators):
            log.warning("checkpoint has %d data-order generators, training has %d; "
                        "the data order will differ from an uninterrupted run",
                        len(saved), len(self.generators))
        for generator, gstate in zip(self.generators, saved, strict=False):
            generator.set_state(gstate)
        for dataset, dstate in zip(self.datasets, state_dict.get("datasets", []), strict=False):
            dataset.load_state_dict(dstate)
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
        self.restored = True


def _has_state(obj: Any) -> bool:
    return callable(getattr(obj, "state_dict", None)) and callable(
        getattr(obj, "load_state_dict", None)
    )


def _unique(items: Sequence[Any]) -> list[Any]:
    seen: set[int] = set()
    out = []
    for item in items:
        if item is not None and id(item) not in seen:
            seen.add(id(item))
            out.append(item)
    return out


def _as_tuple(value: Any) -> Any:
    """Lists (from a checkpoint) back to the nested tuples ``random.setstate`` wants."""
    if isinstance(value, list | tuple):
        return tuple(_as_tuple(v) for v in value)
    return value


def _number(text: str) -> Any:
    if text == "" or text is None:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value
