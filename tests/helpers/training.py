"""Lightning callbacks that simulate a crash or a kill in the middle of training (resume tests)."""

from __future__ import annotations

import os

import lightning.pytorch as pl


class TrainingInterrupted(Exception):
    """Raised by :class:`InterruptAfter` to simulate a crash in the middle of training."""


class InterruptAfter(pl.Callback):
    """Raise :class:`TrainingInterrupted` once a given epoch is finished.

    The exception comes at the start of the next epoch, after that epoch's checkpoint was
    written, like a process killed between epochs. (Not ``KeyboardInterrupt``: Lightning
    turns that one into ``sys.exit(1)``.)

    Args:
        epoch: 0-based epoch after which to stop.
    """

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch > self.epoch:
            raise TrainingInterrupted(f"simulated interrupt after epoch {self.epoch}")


class KillAt(pl.Callback):
    """End the process at once with ``os._exit`` (as SIGKILL would) at a chosen point.

    Args:
        epoch: 0-based epoch, or ``-1`` for the end of training (after the last
            checkpoint, before the caller saves anything).
        batch: Batch index within that epoch, or ``None`` for the epoch's start.
    """

    def __init__(self, epoch: int, batch: int | None = None) -> None:
        self.epoch = epoch
        self.batch = batch

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.epoch == -1:
            os._exit(137)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.batch is None and trainer.current_epoch == self.epoch:
            os._exit(137)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.batch is not None and trainer.current_epoch == self.epoch \
                and batch_idx == self.batch:
            os._exit(137)


class SelfSignal(pl.Callback):
    """Send a signal to this process at the start of a chosen epoch (SIGTERM/SIGINT tests)."""

    def __init__(self, epoch: int, signum: int) -> None:
        self.epoch = epoch
        self.signum = signum

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            import signal as _signal

            _signal.raise_signal(self.signum)


class CountingNoisy:
    """A map-style dataset whose items change at every fetch (like SyntheticClips).

    Fetch ``c`` of item ``i`` adds noise drawn from ``default_rng([seed, i, c])`` plus a
    draw from numpy's global generator; ``state_dict`` holds the per-item counters.
    """

    def __init__(self, x, seed: int = 0) -> None:
        import numpy as np

        self.x = x
        self.seed = seed
        self.counts = np.zeros(len(x), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        import numpy as np
        import torch

        c = int(self.counts[i])
        self.counts[i] += 1
        rng = np.random.default_rng([self.seed, int(i), c])
        noise = rng.standard_normal(self.x.shape[1]).astype(np.float32) * 0.1
        jitter = np.float32(np.random.rand() * 0.01)  # the global numpy generator
        return torch.from_numpy(self.x[i] + noise + jitter)

    def state_dict(self) -> dict:
        return {"counts": self.counts.copy()}

    def load_state_dict(self, state: dict) -> None:
        self.counts[:] = state["counts"]


def toy_data(n: int = 96, d: int = 8):
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.standard_normal((n, d)).astype(np.float32)


def toy_network(d: int = 8):
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d, 16), nn.Dropout(0.3), nn.ReLU(), nn.Linear(16, d))


def toy_loss(network, batch):
    import torch
    from torch import nn

    # torch's global generator is used in the loss too (dropout uses it in the network)
    return nn.functional.mse_loss(network(batch), batch) + 0.0 * torch.rand(1).sum()


def toy_fit(folder, callbacks=(), resume: bool = False, epochs: int = 6, ema: bool = True):
    """Train the toy network with every source of randomness; save weights and history.

    Writes ``folder/weights.pt`` (state dict) and ``folder/history.json``; checkpoints go
    to ``folder/ckpt``.
    """
    import json
    from pathlib import Path

    import torch
    from torch.utils.data import Dataset

    from soundwatch.training import fit_network

    class _DS(CountingNoisy, Dataset):
        pass

    folder = Path(folder)
    dataset = _DS(toy_data())
    net, history = fit_network(
        toy_network(), dataset, toy_loss, epochs=epochs, batch_size=16, device="cpu",
        checkpoint_dir=folder / "ckpt", ema_decay=0.9 if ema else None, seed=3,
        log_csv=folder / "train_log.csv", callbacks=list(callbacks), resume=resume,
    )
    torch.save(net.state_dict(), folder / "weights.pt")
    rows = [{k: v for k, v in r.items() if k != "time_s"} for r in history.rows]
    (folder / "history.json").write_text(json.dumps(
        {"rows": rows, "summary": {k: v for k, v in history.summary().items() if k != "wall_s"},
         "counts": dataset.counts.tolist()}))
    return net, history
