"""TrainSpec: the typed training hyper-parameters of a network detector."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from soundwatch.errors import DetectorError

__all__ = ["OPTIMIZERS", "SCHEDULERS", "TrainSpec"]

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = (None, "none", "cosine", "cosine_warm_restarts")
EPOCH_CHOICES = ("best", "last")


@dataclass(frozen=True)
class TrainSpec:
    """How a network is trained (hyper-parameters: they change what is learned).

    Attributes:
        epochs: Training epochs.
        batch_size: Items per batch.
        lr: Learning rate.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        weight_decay: Weight decay.
        scheduler: ``None``, ``"cosine"`` or ``"cosine_warm_restarts"``.
        scheduler_t0: First period (epochs) of the warm restarts.
        ema_decay: Exponential moving average of the weights (``None``: off).
        gradient_clip_val: Gradient-norm clipping (``None``: off).
        early_stopping_patience: Epochs without improvement before stopping (``None``: off).
        val_fraction: Training clips held out for validation.
        epoch_choice: Keep the ``"best"`` epoch's weights (lowest monitored loss) or the
            ``"last"`` epoch's (the DCASE baseline's default).
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    scheduler: str | None = None
    scheduler_t0: int = 10
    ema_decay: float | None = None
    gradient_clip_val: float | None = None
    early_stopping_patience: int | None = None
    val_fraction: float = 0.1
    epoch_choice: str = "best"

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, where: str = "training") -> TrainSpec:
        """Build and validate from a dict; every value is type-checked with its name.

        Raises:
            DetectorError: Unknown field or a bad value (the field is named).
        """
        values = dict(values or {})
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise DetectorError(where, f"unknown training parameter(s) {', '.join(unknown)} "
                                f"(accepted: {', '.join(sorted(fields))})")
        hints = typing.get_type_hints(cls)
        for name, value in values.items():
            values[name] = _typed(f"{where}.{name}", value, hints[name])
        spec = cls(**values)
        spec.validate(where)
        return spec

    def validate(self, where: str = "training") -> None:
        """Check the values' ranges.

        Raises:
            DetectorError: The first bad value, named.
        """
        for name in ("epochs", "batch_size", "scheduler_t0"):
            if getattr(self, name) < 1:
                raise DetectorError(f"{where}.{name}", f"must be at least 1, got "
                                    f"{getattr(self, name)!r}")
        if not self.lr > 0:
            raise DetectorError(f"{where}.lr", f"must be positive, got {self.lr!r}")
        if self.weight_decay < 0:
            raise DetectorError(f"{where}.weight_decay", "must be non-negative")
        if self.optimizer not in OPTIMIZERS:
            raise DetectorError(f"{where}.optimizer", f"{self.optimizer!r} is not one of "
                                f"{', '.join(OPTIMIZERS)}")
        if self.scheduler not in SCHEDULERS:
            raise DetectorError(f"{where}.scheduler", f"{self.scheduler!r} is not one of "
                                "none, cosine, cosine_warm_restarts")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise DetectorError(f"{where}.ema_decay", "must be in (0, 1) or null")
        if self.gradient_clip_val is not None and self.gradient_clip_val <= 0:
            raise DetectorError(f"{where}.gradient_clip_val", "must be positive or null")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise DetectorError(f"{where}.early_stopping_patience", "must be at least 1 or null")
        if not 0 <= self.val_fraction < 1:
            raise DetectorError(f"{where}.val_fraction", "must be in [0, 1)")
        if self.epoch_choice not in EPOCH_CHOICES:
            raise DetectorError(f"{where}.epoch_choice", "must be 'best' or 'last'")

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return dataclasses.asdict(self)


def _typed(where: str, value: Any, hint: Any) -> Any:
    """``value`` checked (and losslessly converted) against a simple type hint.

    Raises:
        DetectorError: Naming ``where``, when the value does not fit the hint.
    """
    args = typing.get_args(hint)
    optional = type(None) in args
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
        if optional:
            return None
        raise DetectorError(where, "must not be null")
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if base is bool:
        if isinstance(value, bool):
            return value
        raise DetectorError(where, f"must be true or false, got {value!r}")
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or float(value) != int(
            value
        ):
            raise DetectorError(where, f"must be a whole number, got {value!r}")
        return int(value)
    if base is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DetectorError(where, f"must be a number, got {value!r}")
        return float(value)
    if base is str:
        if not isinstance(value, str):
            raise DetectorError(where, f"must be a string, got {value!r}")
        return value
    return value
