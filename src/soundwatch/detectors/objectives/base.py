"""Objective contract (how a network is trained, which outputs it then offers) and its registry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from soundwatch.detectors.component import Component

if TYPE_CHECKING:
    import torch

    from soundwatch.datasets.clip import Clip
    from soundwatch.detectors.encoders import EncoderModel

__all__ = ["Objective", "Plan", "TrainInput"]


@dataclass
class Plan:
    """What an objective decided from the training clips before the network is built.

    Attributes:
        targets: One training target per clip (class index, 0/1 label), or ``None``.
        class_names: Names of the classifier's classes (``[]`` when none).
        num_outputs: Width of the network's output layer.
        extra: Objective-specific facts saved with the detector (JSON-able).
    """

    targets: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    num_outputs: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainInput:
    """Everything an objective needs to make its training and validation data.

    Attributes:
        arrays: Per-clip features in the encoder's layout (rows ``[n, d]`` or ``[C, T]``).
        clips: The training clips.
        plan: The objective's :class:`Plan`.
        train_idx: Clips used for training.
        val_idx: Clips held out for validation (empty: the engine splits items itself).
        window: Window length (windows layout).
        hop: Training window hop.
        frontend: The front-end (objectives that alter waveforms recompute features).
        seed: The detector's seed.
        channel: The audio channel the clips are read from (objectives that reload audio).
    """

    arrays: list[np.ndarray]
    clips: Sequence[Clip]
    plan: Plan
    train_idx: list[int]
    val_idx: list[int]
    window: int | None
    hop: int | None
    frontend: Any
    seed: int
    channel: int | str = 0


class Objective(Component):
    """Base of every training objective (registered with ``@register_objective``).

    Subclasses declare explicit keyword hyper-parameters and implement :meth:`datasets`
    and :meth:`loss`; they may override :meth:`plan`, :meth:`attach_head` and
    :meth:`view_fn`.

    Class attributes:
        supervised: Needs labelled anomalies (0/1 labels) in training.
        views: Outputs a trained network offers to scorers besides ``"vectors"`` (the
            embedding): ``"residual"``, ``"probability"``, ``"elbo"``.
        layouts: Encoder layouts it can train (``"rows"``, ``"windows"``).
        default_scorer: The scorer a detector switches to when it switches to this
            objective without naming a scorer.
    """

    kind: ClassVar[str] = "objective"
    default_scorer: ClassVar[str] = "knn"
    supervised: ClassVar[bool] = False
    views: ClassVar[tuple[str, ...]] = ()
    layouts: ClassVar[tuple[str, ...]] = ("windows",)

    def plan(self, clips: Sequence[Clip], labels: np.ndarray | None, sr: int) -> Plan:
        """Decide targets and output width from the training clips."""
        return Plan()

    def attach_head(self, model: EncoderModel, plan_or_spec: dict[str, Any]) -> None:
        """Add the objective's head to a freshly built model (``spec`` as saved)."""

    def datasets(self, data: TrainInput) -> tuple[Any, Any, dict[str, Any]]:
        """``(train_data, val_data or None, fit_network overrides)``."""
        raise NotImplementedError

    def loss(self) -> Callable[..., Any]:
        """The loss ``fn(model, batch[, epoch])`` for :func:`soundwatch.training.fit_network`."""
        raise NotImplementedError

    def view_fn(self, view: str, model: EncoderModel, spec: dict[str, Any], seed: int,
                device: Any) -> Callable[[torch.Tensor], torch.Tensor]:
        """A batch function computing ``view`` (one row per item) with the trained model."""
        raise NotImplementedError(view)
