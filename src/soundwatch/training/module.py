"""NetworkModule: the one LightningModule that trains any nn.Module with a loss function."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from soundwatch.errors import DetectorError

__all__ = ["OPTIMIZERS", "SCHEDULERS", "LossFn", "NetworkModule"]

LossFn = Callable[..., "torch.Tensor | Mapping[str, torch.Tensor]"]
"""``loss_fn(network, batch[, epoch]) -> loss`` or a dict with a ``"loss"`` key plus extra
terms to log (``{"loss": ..., "recon": ..., "kl": ...}``). ``epoch`` (0-based) is passed
when the function accepts a third argument (KL warm-up and other schedules)."""

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = (None, "none", "cosine_warm_restarts", "cosine")


def _accepts_epoch(fn: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params) or any(p.name == "epoch" for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 3


class NetworkModule(pl.LightningModule):
    """Train ``network`` by minimising ``loss_fn``; shared by every soundwatch network.

    The module keeps per-epoch loss sums on the device (no host sync per step) and logs
    ``train_loss`` / ``val_loss`` (plus any extra loss terms) once per epoch, which keeps
    Lightning's overhead low.

    Args:
        network: Any ``nn.Module``.
        loss_fn: ``loss_fn(network, batch[, epoch])`` -> scalar tensor or dict with ``"loss"``.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"`` (momentum 0.9).
        lr: Learning rate.
        weight_decay: Weight decay (L2 for adam/sgd, decoupled for adamw).
        scheduler: ``None``, ``"cosine_warm_restarts"`` (period ``scheduler_t0`` epochs) or
            ``"cosine"`` (one half cosine over ``max_epochs``).
        scheduler_t0: Restart period in epochs for ``"cosine_warm_restarts"``.
        max_epochs: Length of the ``"cosine"`` schedule.
    """

    def __init__(
        self,
        network: nn.Module,
        loss_fn: LossFn,
        *,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        scheduler: str | None = None,
        scheduler_t0: int = 10,
        max_epochs: int = 100,
    ) -> None:
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise DetectorError("optimizer", f"{optimizer!r} is not one of {OPTIMIZERS}")
        if scheduler not in SCHEDULERS:
            raise DetectorError("scheduler", f"{scheduler!r} is not one of {SCHEDULERS}")
        self.network = network
        self.loss_fn = loss_fn
        self.optimizer_name = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.scheduler_name = None if scheduler == "none" else scheduler
        self.scheduler_t0 = max(1, int(scheduler_t0))
        self.max_epochs = max(1, int(max_epochs))
        self._pass_epoch = _accepts_epoch(loss_fn)
        self._sums: dict[str, dict[str, torch.Tensor]] = {"train": {}, "val": {}}
        self._counts: dict[str, int] = {"train": 0, "val": 0}

    def forward(self, x: torch.Tensor) -> Any:
        """Run the network."""
        return self.network(x)

    # ----------------------------------------------------------------- losses
    def _loss(self, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self._pass_epoch:
            out = self.loss_fn(self.network, batch, self.current_epoch)
        else:
            out = self.loss_fn(self.network, batch)
        if isinstance(out, Mapping):
            if "loss" not in out:
                raise DetectorError("loss_fn", "a dict result needs a 'loss' entry")
            return out["loss"], dict(out)
        return out, {"loss": out}

    def _accumulate(self, stage: str, terms: dict[str, torch.Tensor], n: int) -> None:
        sums = self._sums[stage]
        for key, value in terms.items():
            value = value.detach().float() * n
            sums[key] = sums[key] + value if key in sums else value
        self._counts[stage] += n

    def _batch_size(self, batch: Any) -> int:
        first = batch[0] if isinstance(batch, list | tuple) else batch
        if isinstance(first, Mapping):
            first = next(iter(first.values()))
        return int(first.shape[0]) if hasattr(first, "shape") else 1

    def epoch_means(self, stage: str) -> dict[str, float]:
        """Mean of each loss term over the current epoch of ``stage`` (``train``/``val``).

        With several processes (DDP) the sums and counts of every process are added up,
        so all of them see the same means (best epoch, early stopping, checkpoints agree).
        """
        count = self._counts[stage]
        sums = self._sums[stage]
        trainer = getattr(self, "_trainer", None)
        if trainer is not None and trainer.world_size > 1 and count:
            keys = sorted(sums)
            packed = torch.stack([sums[k].float().reshape(()) for k in keys]
                                 + [torch.tensor(float(count), device=sums[keys[0]].device)])
            packed = trainer.strategy.reduce(packed, reduce_op="sum")
            count = float(packed[-1])
            sums = dict(zip(keys, packed[:-1], strict=True))
        if not count:
            return {}
        return {k: float(v) / count for k, v in sums.items()}

    def _reset(self, stage: str) -> None:
        self._sums[stage] = {}
        self._counts[stage] = 0

    # ----------------------------------------------------------------- Lightning hooks
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:  # noqa: D102
        loss, terms = self._loss(batch)
        self._accumulate("train", terms, self._batch_size(batch))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:  # noqa: D102
        _, terms = self._loss(batch)
        self._accumulate("val", terms, self._batch_size(batch))

    def on_train_epoch_start(self) -> None:  # noqa: D102
        self._reset("train")

    def on_validation_epoch_start(self) -> None:  # noqa: D102
        self._reset("val")

    def on_validation_epoch_end(self) -> None:  # noqa: D102
        means = self.epoch_means("val")
        if means and not self.trainer.sanity_checking:
            self.log("val_loss", means["loss"], on_epoch=True, prog_bar=True, logger=False)

    def on_train_epoch_end(self) -> None:  # noqa: D102
        means = self.epoch_means("train")
        if means:
            self.log("train_loss", means["loss"], on_epoch=True, prog_bar=True, logger=False)

    def configure_optimizers(self) -> Any:  # noqa: D102
        params = [p for p in self.network.parameters() if p.requires_grad]
        if self.optimizer_name == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(
                params, lr=self.lr, weight_decay=self.weight_decay
            )
        elif self.optimizer_name == "adamw":
            opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        else:
            opt = torch.optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
        if self.scheduler_name is None:
            return opt
        if self.scheduler_name == "cosine_warm_restarts":
            sched: Any = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
                opt, T_0=self.scheduler_t0
            )
        else:
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.max_epochs)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
