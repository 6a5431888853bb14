"""EnsembleDetector: several detectors' normalised scores combined (mean or max, weighted)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from soundwatch.detectors.base import Detector
from soundwatch.detectors.normalize import (
    COMBINES,
    NORMALIZATIONS,
    combine_scores,
    normalize_scores,
)
from soundwatch.errors import DetectorError
from soundwatch.training.context import RunContext

if TYPE_CHECKING:
    from typing import Self

    from soundwatch.datasets.clip import Clip

__all__ = ["COMBINES", "EnsembleDetector", "combine_scores"]

log = logging.getLogger(__name__)

class EnsembleDetector(Detector):
    """Combines member detectors' scores, each normalised against its own training scores.

    Each member is a registered detector (``{"detector": name, "params": {...}}``), fitted
    on the same clips. A member's score is expressed against its own out-of-fold training
    scores (``normalize``: ``"zscore"`` = (score - mean) / std, robust to scale;
    ``"percentile"``) so that members on different scales can be combined; the ensemble's
    score is their (weighted) mean or max. Its own training scores combine the members'
    out-of-fold training scores the same way, so its threshold is fitted like any other.

    Args:
        members: Member specs: ``{"detector": name, "params": {overrides}}``.
        combine: ``"mean"`` or ``"max"``.
        weights: One weight per member (``None``: equal), for ``"mean"``.
        normalize: ``"zscore"`` or ``"percentile"``.
        seed: Seed given to every member.
    """

    _nested: ClassVar[dict[str, str]] = {}

    def __init__(self, *, members: Sequence[dict[str, Any]] | None = None,
                 combine: str = "mean", weights: Sequence[float] | None = None,
                 normalize: str = "zscore", seed: int = 0) -> None:
        self.members = members
        self.combine = combine
        self.weights = weights
        self.normalize = normalize
        self.seed = seed

    def _specs(self) -> list[dict[str, Any]]:
        return [dict(m) for m in (self.members or [])]

    def validate_params(self) -> None:  # noqa: D102
        specs = self._specs()
        if not specs:
            raise DetectorError(f"{self.name}.members", "give at least one member detector")
        if self.combine not in COMBINES:
            raise DetectorError(f"{self.name}.combine",
                                f"{self.combine!r} is not one of {', '.join(COMBINES)}")
        if self.normalize not in NORMALIZATIONS:
            raise DetectorError(f"{self.name}.normalize",
                                f"must be one of {', '.join(NORMALIZATIONS)}")
        if self.combine == "fisher" and self.normalize == "percentile":
            raise DetectorError(f"{self.name}.combine", "fisher needs zscore or robust "
                                "normalisation (percentiles are not z-like)")
        if self.weights is not None:
            weights = list(self.weights)
            if len(weights) != len(specs) or any(
                not isinstance(w, int | float) or w < 0 for w in weights
            ) or sum(weights) <= 0:
                raise DetectorError(f"{self.name}.weights", "one non-negative weight per member "
                                    "(not all zero)")
        for spec in specs:
            if not isinstance(spec, dict) or "detector" not in spec:
                raise DetectorError(f"{self.name}.members", f"each member needs a 'detector' "
                                    f"name, got {spec!r}")
            self._member(spec)  # unknown names and parameters fail here

    def configured_members(self) -> list[Detector]:
        """The members as configured (unfitted, with the ensemble's seed)."""
        return [self._member(spec) for spec in self._specs()]

    def _member(self, spec: dict[str, Any]) -> Detector:
        from soundwatch.detectors.registry import create_detector

        if spec["detector"] == "ensemble":
            raise DetectorError(f"{self.name}.members", "an ensemble cannot hold an ensemble")
        params = {**copy.deepcopy(spec.get("params") or {}), "seed": self.seed}
        return create_detector(spec["detector"], **params)

    @property
    def supervised(self) -> bool:  # noqa: D102
        return any(self._member(s).supervised for s in self._specs())

    def _combine(self, normed: list[np.ndarray]) -> np.ndarray:
        return combine_scores(normed, self.combine, self.weights)

    def fit(self, clips: Sequence[Clip], labels: np.ndarray | None = None,
            context: RunContext | None = None) -> Self:
        """Fit every member on ``clips``; combine their out-of-fold training scores."""
        from soundwatch.decisions import Decider

        self.validate_params()
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, name)
        context = context or RunContext()  # each member gets the ensemble's, explicitly
        members = []
        for i, spec in enumerate(self._specs()):
            member_context = context
            if context.log_dir:
                member_context = context.replace(log_dir=str(Path(context.log_dir) / f"m{i}"))
            if context.checkpoint_dir:
                member_context = member_context.replace(
                    checkpoint_dir=str(Path(context.checkpoint_dir) / f"m{i}"))
            members.append(self._member(spec).fit(clips, labels, context=member_context))
        self.members_ = members
        self.train_scores_ = self._combine([
            normalize_scores(m.train_scores_, m.train_scores_, self.normalize) for m in members
        ])
        self.threshold_ = Decider.from_training_scores(self.train_scores_).threshold
        return self

    def _scores(self, raw: list[np.ndarray]) -> np.ndarray:
        return self._combine([
            normalize_scores(s, m.train_scores_, self.normalize)
            for s, m in zip(raw, self.members_, strict=True)
        ])

    def score(self, clips: Sequence[Clip], context: RunContext | None = None) -> np.ndarray:
        """The combined normalised score per clip."""
        self._check_fitted()
        clips = list(clips)
        if not clips:
            return np.zeros(0)
        return self._scores([m.score(clips, context) for m in self.members_])

    def score_signals(self, signals: Sequence[np.ndarray], sr: int,
                      context: RunContext | None = None) -> np.ndarray:
        """The combined normalised score per in-memory waveform."""
        self._check_fitted()
        if len(signals) == 0:
            return np.zeros(0)
        return self._scores([m.score_signals(signals, sr, context) for m in self.members_])

    def _save_state(self, directory: Path) -> dict[str, Any]:
        from soundwatch.detectors.base import write_npz

        for i, member in enumerate(self.members_):
            member.save(directory / f"member_{i}")
        write_npz(directory / "state.npz", {"train_scores": self.train_scores_})
        return {"threshold": float(self.threshold_), "members": len(self.members_)}

    def _load_state(self, directory: Path, meta: dict[str, Any]) -> None:
        from soundwatch.detectors.base import read_npz

        n = int(meta.get("members", len(self._specs())))
        self.members_ = [Detector.load(directory / f"member_{i}") for i in range(n)]
        self.train_scores_ = read_npz(directory / "state.npz")["train_scores"]
        self.threshold_ = float(meta["threshold"])
