"""Classifier objectives: supervised labels, synthetic anomalies, auxiliary metadata classes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from soundwatch.detectors.objectives import register_objective
from soundwatch.detectors.objectives.anomalies import ANOMALY_KINDS, SyntheticAnomalies
from soundwatch.detectors.objectives.base import Objective, Plan, TrainInput
from soundwatch.detectors.objectives.labels import AUX_FIELDS, auxiliary_labels
from soundwatch.errors import DetectorError
from soundwatch.training.data import WindowDataset, pad_to

if TYPE_CHECKING:
    from soundwatch.datasets.clip import Clip

__all__ = [
    "AuxiliaryObjective",
    "SupervisedObjective",
    "SyntheticClips",
    "SyntheticObjective",
    "as_2d",
    "bce_loss",
    "ce_loss",
    "margin_loss",
]

log = logging.getLogger(__name__)

MARGINS = ("adacos", "arcface")
SYNTHETIC_CLASSES = ("binary", "kinds")


def as_2d(f: np.ndarray) -> np.ndarray:
    """One clip's features as ``[C, T]`` (a waveform ``[L]`` becomes ``[1, L]``)."""
    f = np.asarray(f, dtype=np.float32)
    return f[None] if f.ndim == 1 else f.reshape(-1, f.shape[-1])


def bce_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """Binary cross-entropy of the first logit against 0/1 targets."""
    x, y = batch
    return F.binary_cross_entropy_with_logits(model(x)[:, 0], y.float())


def ce_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """Cross-entropy of the logits against class targets (0 = normal)."""
    x, y = batch
    return F.cross_entropy(model(x), y.long())


def margin_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """Cross-entropy of the cosine-margin head's logits (margin applied to the true class)."""
    x, y = batch
    y = y.long()
    return F.cross_entropy(model.head(model.embed(x), y), y)


def _probability_view(self: Objective, view: str, model: Any, spec: dict[str, Any], seed: int,
                      device: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The ``probability`` view of classifier objectives: batch -> anomaly probability [B, 1].

    A sigmoid of one logit, or ``1 - p(normal)`` of a softmax over several outputs.
    """
    if view != "probability":
        raise NotImplementedError(view)
    if int(spec.get("num_outputs", 1)) > 1:
        return lambda b: 1.0 - torch.softmax(model(b).float(), dim=1)[:, :1]
    return lambda b: torch.sigmoid(model(b)[:, :1].float())


class SyntheticClips(Dataset):
    """Normal waveforms, a share of them turned into synthetic anomalies at each fetch.

    Fetch number ``c`` of item ``i`` draws from ``numpy.random.default_rng([seed, i, c])``
    (``c`` is always 0 when ``fixed``, for a stable validation set), so the same seed gives
    the same anomalies in the same order; an item sees new anomalies every epoch. The
    features of the (altered) clip are computed by the front-end, and a random window of
    ``window`` frames is cut from them.

    Args:
        waves: Normal mono waveforms at the front-end's rate.
        frontend: The feature front-end.
        generator: The anomaly maker.
        window: Frames per item.
        seed: Seed.
        ratio: Probability that an item is made anomalous.
        multiclass: Label anomalies ``offset + kind index`` instead of 1.
        fixed: The same anomalies at every fetch.
        labels: Label of each normal waveform (``None``: 0).
        offset: Label of the first anomaly kind when ``multiclass``.
        repeats: Items per waveform and epoch (item ``j`` is waveform ``j % len(waves)``).
        crop: Samples of each waveform's random crop made before the anomaly and the
            features (``None``: the whole waveform); a crop a little longer than
            ``window`` frames makes a fetch much cheaper on long clips.
    """

    def __init__(self, waves: list[np.ndarray], frontend: nn.Module,
                 generator: SyntheticAnomalies, window: int, seed: int, ratio: float,
                 multiclass: bool = False, fixed: bool = False,
                 labels: np.ndarray | None = None, offset: int = 1, repeats: int = 1,
                 crop: int | None = None) -> None:
        self.waves = waves
        self.frontend = frontend
        self.generator = generator
        self.window = int(window)
        self.seed = int(seed)
        self.ratio = float(ratio)
        self.multiclass = multiclass
        self.fixed = fixed
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.offset = int(offset)
        self.repeats = max(1, int(repeats))
        self.crop = None if crop is None else int(crop)
        self.counts = np.zeros(len(waves) * self.repeats, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.waves) * self.repeats

    def state_dict(self) -> dict[str, Any]:
        """The per-item fetch counters (saved in checkpoints: exact resume)."""
        return {"counts": self.counts.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the fetch counters of :meth:`state_dict`."""
        self.counts[:] = np.asarray(state["counts"], dtype=np.int64)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        count = 0 if self.fixed else int(self.counts[i])
        self.counts[i] += 1
        rng = np.random.default_rng([self.seed, int(i), count])
        j = int(i) % len(self.waves)
        wave = self.waves[j]
        label = 0 if self.labels is None else int(self.labels[j])
        if self.crop is not None and wave.size > self.crop:
            start = int(rng.integers(0, wave.size - self.crop + 1))
            wave = wave[start : start + self.crop]
        if rng.random() < self.ratio:
            wave, kind = self.generator(wave, rng)
            label = self.offset + self.generator.kinds.index(kind) if self.multiclass else 1
        with torch.inference_mode():
            feats = self.frontend(torch.from_numpy(np.ascontiguousarray(wave))[None])[0]
        feats = as_2d(feats.numpy())
        t = feats.shape[-1]
        if t > self.window:
            start = int(rng.integers(0, t - self.window + 1))
            feats = feats[:, start : start + self.window]
        return torch.from_numpy(np.ascontiguousarray(pad_to(feats, self.window))), label


class _AnomalyMaker(Objective):
    """Shared parameters and data of the objectives that make synthetic anomalies."""

    anomaly_kinds: str | None
    snr_min_db: float
    snr_max_db: float
    synthetic_repeats: int

    def _kinds(self) -> tuple[str, ...]:
        if self.anomaly_kinds is None:
            return ANOMALY_KINDS
        return tuple(k.strip() for k in str(self.anomaly_kinds).split(",") if k.strip())

    def validate(self) -> None:  # noqa: D102
        kinds = self._kinds()
        if not kinds or any(k not in ANOMALY_KINDS for k in kinds):
            raise DetectorError(self._where("anomaly_kinds"),
                                f"comma-separated names among {', '.join(ANOMALY_KINDS)}")
        self._check_number("snr_min_db", -100.0, 200.0)
        self._check_number("snr_max_db", -100.0, 200.0)
        if not self.snr_min_db <= self.snr_max_db:
            raise DetectorError(self._where("snr_min_db"), "must not exceed snr_max_db")
        self._check_int("synthetic_repeats")

    def generator(self, sr: int) -> SyntheticAnomalies:
        """The anomaly maker these parameters describe."""
        return SyntheticAnomalies(
            kinds=self._kinds(), snr_db=(float(self.snr_min_db), float(self.snr_max_db)), sr=sr
        )

    def _synthetic_data(self, data: TrainInput, ratio: float, multiclass: bool,
                        labels: np.ndarray | None, offset: int) -> tuple[Any, Any, dict]:
        from soundwatch.audio import load

        fe = data.frontend
        generator = self.generator(fe.sr)
        window = int(data.window)  # type: ignore[arg-type]
        waves = [load(c.path, sr=fe.sr) for c in data.clips]
        # crop the waveform to a little more than a window before the features
        per_frame = max(w.size / f.shape[-1] for w, f in zip(waves, data.arrays, strict=True))
        crop = int(np.ceil((window + 2) * per_frame))

        def make(idx: list[int], seed: int, fixed: bool) -> SyntheticClips:
            return SyntheticClips(
                [waves[i] for i in idx], fe, generator, window, seed, ratio, multiclass, fixed,
                labels=None if labels is None else labels[np.asarray(idx, dtype=np.int64)],
                offset=offset, repeats=int(self.synthetic_repeats), crop=crop,
            )

        train = make(data.train_idx, data.seed, False)
        val = make(data.val_idx, data.seed + 1, True) if data.val_idx else None
        return train, val, ({"val_fraction": 0.0} if not data.val_idx else {})


def _labelled_windows(data: TrainInput, targets: np.ndarray) -> tuple[Any, Any, dict]:
    def windows(idx: list[int]) -> WindowDataset:
        return WindowDataset([data.arrays[i] for i in idx], int(data.window),  # type: ignore[arg-type]
                             int(data.hop or 1)).with_item_labels(
            targets[np.asarray(idx, dtype=np.int64)])

    return windows(data.train_idx), windows(data.val_idx) if data.val_idx else None, {}


@register_objective("supervised")
class SupervisedObjective(Objective):
    """Labelled normal and anomalous clips, binary cross-entropy; offers the probability."""

    supervised: ClassVar[bool] = True
    views: ClassVar[tuple[str, ...]] = ("probability",)
    default_scorer: ClassVar[str] = "probability"

    def __init__(self) -> None:
        pass

    def plan(self, clips: Sequence[Clip], labels: np.ndarray | None, sr: int) -> Plan:  # noqa: D102
        y = np.asarray(labels, dtype=np.int64)
        if set(np.unique(y).tolist()) != {0, 1}:
            raise DetectorError("objective supervised", "needs 0/1 labels of both classes")
        return Plan(targets=y, class_names=["normal", "anomaly"], num_outputs=1)

    def datasets(self, data: TrainInput) -> tuple[Any, Any, dict[str, Any]]:  # noqa: D102
        return _labelled_windows(data, data.plan.targets)  # type: ignore[arg-type]

    def loss(self) -> Callable[..., Any]:  # noqa: D102
        return bce_loss

    view_fn = _probability_view


@register_objective("synthetic")
class SyntheticObjective(_AnomalyMaker):
    """Normal clips only: normal vs. anomalies made from them on the fly; offers the probability.

    Args:
        classes: ``"binary"`` (normal vs. anomaly, sigmoid) or ``"kinds"`` (normal vs. each
            anomaly kind, softmax; the anomaly probability is ``1 - p(normal)``).
        ratio: Share of training items made anomalous.
        anomaly_kinds: Comma-separated kinds (``None``: all of
            :data:`~soundwatch.detectors.objectives.ANOMALY_KINDS`).
        snr_min_db: Lowest SNR of the additive anomalies.
        snr_max_db: Highest SNR of the additive anomalies.
        synthetic_repeats: Random windows drawn per training clip and epoch.
    """

    views: ClassVar[tuple[str, ...]] = ("probability",)
    default_scorer: ClassVar[str] = "probability"

    def __init__(self, *, classes: str = "binary", ratio: float = 0.5,
                 anomaly_kinds: str | None = None, snr_min_db: float = 0.0,
                 snr_max_db: float = 20.0, synthetic_repeats: int = 1) -> None:
        self._store(locals())

    def validate(self) -> None:  # noqa: D102
        super().validate()
        self._check_choice("classes", SYNTHETIC_CLASSES)
        self._check_number("ratio", 0.0, 1.0, low_open=True, high_open=True)

    def plan(self, clips: Sequence[Clip], labels: np.ndarray | None, sr: int) -> Plan:  # noqa: D102
        if self.classes == "kinds":
            names = ["normal", *self._kinds()]
            return Plan(targets=None, class_names=names, num_outputs=len(names))
        return Plan(targets=None, class_names=[], num_outputs=1)

    def datasets(self, data: TrainInput) -> tuple[Any, Any, dict[str, Any]]:  # noqa: D102
        return self._synthetic_data(data, float(self.ratio), self.classes == "kinds", None, 1)

    def loss(self) -> Callable[..., Any]:  # noqa: D102
        return ce_loss if self.classes == "kinds" else bce_loss

    view_fn = _probability_view


@register_objective("auxiliary")
class AuxiliaryObjective(_AnomalyMaker):
    """Normal clips only: a cosine-margin classifier of what is known about each clip.

    Classes are the clips' ``aux_fields`` values (machine, section, attributes...). With
    a single class, normal vs. each synthetic anomaly kind is classified instead; with
    ``aux_synthetic > 0`` each anomaly kind is an extra class ("outlier exposure").

    Args:
        margin: Head: ``"adacos"`` or ``"arcface"``.
        aux_fields: Comma-separated clip fields among
            :data:`~soundwatch.detectors.objectives.AUX_FIELDS`.
        aux_synthetic: Share of training items made synthetic anomalies (0: off).
        anomaly_kinds: Comma-separated synthetic anomaly kinds (``None``: all).
        snr_min_db: Lowest SNR of the additive anomalies.
        snr_max_db: Highest SNR of the additive anomalies.
        synthetic_repeats: Random windows drawn per training clip and epoch when
            anomalies are made.
    """

    def __init__(self, *, margin: str = "adacos", aux_fields: str = "machine,section,attributes",
                 aux_synthetic: float = 0.0, anomaly_kinds: str | None = None,
                 snr_min_db: float = 0.0, snr_max_db: float = 20.0,
                 synthetic_repeats: int = 1) -> None:
        self._store(locals())

    def _fields(self) -> tuple[str, ...]:
        return tuple(f.strip() for f in str(self.aux_fields).split(",") if f.strip())

    def validate(self) -> None:  # noqa: D102
        super().validate()
        self._check_choice("margin", MARGINS)
        fields = self._fields()
        if not fields or any(f not in AUX_FIELDS for f in fields):
            raise DetectorError(self._where("aux_fields"),
                                f"comma-separated names among {', '.join(AUX_FIELDS)}")
        self._check_number("aux_synthetic", 0.0, 1.0, high_open=True)

    def plan(self, clips: Sequence[Clip], labels: np.ndarray | None, sr: int) -> Plan:  # noqa: D102
        y, names = auxiliary_labels(clips, self._fields())
        single = len(names) < 2
        exposure = not single and self.aux_synthetic > 0
        kinds = list(self._kinds())
        if exposure:
            names = [*names, *(f"synthetic:{k}" for k in kinds)]
        elif single:
            log.info("auxiliary: one class (%s); classifying normal vs. each synthetic "
                     "anomaly kind instead", names[0] if names else "-")
            names = [names[0] if names else "normal", *kinds]
        n_base = len(names) - len(kinds) if exposure else 1
        return Plan(targets=y, class_names=names, num_outputs=1,
                    extra={"single": single, "exposure": exposure, "n_base": n_base})

    def attach_head(self, model: Any, spec: dict[str, Any]) -> None:  # noqa: D102
        from soundwatch.detectors.networks.margin import create_margin_head

        model.head = create_margin_head(self.margin, model.embedding_dim,
                                        max(2, len(spec["class_names"])))

    def datasets(self, data: TrainInput) -> tuple[Any, Any, dict[str, Any]]:  # noqa: D102
        extra = data.plan.extra
        if extra["exposure"]:
            return self._synthetic_data(data, float(self.aux_synthetic), True,
                                        data.plan.targets, int(extra["n_base"]))
        if extra["single"]:
            return self._synthetic_data(data, 0.5, True, None, 1)
        return _labelled_windows(data, data.plan.targets)  # type: ignore[arg-type]

    def loss(self) -> Callable[..., Any]:  # noqa: D102
        return margin_loss
