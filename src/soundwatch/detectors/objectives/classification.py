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

from soundwatch.detectors.graph import feature_channels
from soundwatch.detectors.objectives import register_objective
from soundwatch.detectors.objectives.anomalies import (
    ANOMALY_KINDS,
    EXTRA_ANOMALY_KINDS,
    SyntheticAnomalies,
)
from soundwatch.detectors.objectives.base import Objective, Plan, TrainInput
from soundwatch.detectors.objectives.labels import AUX_FIELDS, auxiliary_labels
from soundwatch.errors import DetectorError
from soundwatch.training.data import WindowDataset, pad_to

if TYPE_CHECKING:
    from soundwatch.datasets.clip import Clip

__all__ = [
    "AuxiliaryLoss",
    "AuxiliaryObjective",
    "SupervisedObjective",
    "SyntheticClips",
    "SyntheticObjective",
    "bce_loss",
    "exchange_features",
    "ce_loss",
    "margin_loss",
]

log = logging.getLogger(__name__)

MARGINS = ("adacos", "arcface")
SYNTHETIC_CLASSES = ("binary", "kinds")



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


def _soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against hard labels ``[B]`` or class probabilities ``[B, C]``."""
    if target.ndim == 1:
        return F.cross_entropy(logits, target.long())
    return F.cross_entropy(logits, target.to(logits.dtype))


def exchange_features(embedding: torch.Tensor, target: torch.Tensor, num_classes: int,
                      generator: torch.Generator | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature exchange (FeatEx): swap embedding halves between items, label the pairs.

    Each item's embedding is cut into two halves (dimensions ``[:D // 2]`` and
    ``[D // 2:]``). Every item keeps its embedding with probability 1/2; otherwise its
    second half is replaced by the second half of the item at the mirrored batch
    position (item ``B - 1 - i``, the batch reversed, as Wilkinghoff's reference code).
    Targets span ``3 C`` classes: a kept item has its class ``y_i`` in the first block;
    an exchanged one has 1/2 on ``C + y_i`` (its own first half) and 1/2 on
    ``2 C + y_j`` (the second half it received from item ``j``).

    Args:
        embedding: ``[B, D]`` embeddings.
        target: Hard labels ``[B]`` or class probabilities ``[B, C]``.
        num_classes: ``C``.
        generator: Random generator of the exchange decisions (``None``: torch's).

    Returns:
        ``(embeddings [B, D], targets [B, 3 C])``.
    """
    if target.ndim == 1:
        target = F.one_hot(target.long(), num_classes).to(embedding.dtype)
    target = target.to(embedding.dtype)
    half = embedding.shape[1] // 2
    rev = torch.arange(len(embedding) - 1, -1, -1, device=embedding.device)
    swap = torch.rand(len(embedding), generator=generator) < 0.5
    swap = swap.to(embedding.device)
    exchanged = torch.cat([embedding[:, :half], embedding[rev, half:]], dim=1)
    out = torch.where(swap[:, None], exchanged, embedding)
    zeros = torch.zeros_like(target)
    kept = torch.cat([target, zeros, zeros], dim=1)
    pairs = torch.cat([zeros, 0.5 * target, 0.5 * target[rev]], dim=1)
    return out, torch.where(swap[:, None], pairs, kept)


class AuxiliaryLoss:
    """Loss of the auxiliary objective with mixup and/or feature exchange in training.

    In evaluation mode (validation) it is :func:`margin_loss`. In training:

    - ``mixup > 0``: each item's input is mixed with that of a random other item of the
      batch, ``lam x_i + (1 - lam) x_j`` with ``lam ~ Beta(mixup, mixup)`` per item, and
      its target becomes ``lam y_i + (1 - lam) y_j`` (soft labels for the margin head);
    - ``feature_exchange``: the embeddings also go through :func:`exchange_features` and
      a second margin head (``model.exchange_head``, ``3 C`` classes); its cross-entropy is
      added to the main head's (logged as ``exchange``).

    Args:
        mixup: Beta parameter of the mixing weights (0: no mixup).
        feature_exchange: Add the feature-exchange loss.
    """

    def __init__(self, mixup: float = 0.0, feature_exchange: bool = False) -> None:
        self.mixup = float(mixup)
        self.feature_exchange = bool(feature_exchange)

    def __call__(self, model: nn.Module, batch: Any) -> Any:
        """``{"loss", "classification"[, "exchange"]}`` or, in evaluation, the plain loss."""
        if not model.training:
            return margin_loss(model, batch)
        x, y = batch
        target: torch.Tensor = y.long()
        num_classes = int(model.head.num_classes)
        if self.mixup > 0 and len(x) > 1:
            lam = torch.distributions.Beta(self.mixup, self.mixup).sample((len(x),))
            lam = lam.to(device=x.device, dtype=x.dtype)
            perm = torch.randperm(len(x), device=x.device)
            w = lam.view(-1, *[1] * (x.ndim - 1))
            x = w * x + (1 - w) * x[perm]
            onehot = F.one_hot(target, num_classes).to(x.dtype)
            target = lam[:, None] * onehot + (1 - lam[:, None]) * onehot[perm]
        embedding = model.embed(x)
        main = _soft_cross_entropy(model.head(embedding, target), target)
        if not self.feature_exchange:
            return {"loss": main, "classification": main}
        ex_emb, ex_target = exchange_features(embedding, target, num_classes)
        ex_target = ex_target.to(embedding.dtype)
        exchange = _soft_cross_entropy(model.exchange_head(ex_emb, ex_target), ex_target)
        return {"loss": main + exchange, "classification": main, "exchange": exchange}


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
        feats = feature_channels(feats.numpy()[None])[0].astype(np.float32, copy=False)
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
        known = ANOMALY_KINDS + EXTRA_ANOMALY_KINDS
        if not kinds or any(k not in known for k in kinds):
            raise DetectorError(self._where("anomaly_kinds"),
                                f"comma-separated names among {', '.join(known)}")
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
        waves = [load(c.path, sr=fe.sr, channel=data.channel) for c in data.clips]
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

    Options of the loss (:class:`AuxiliaryLoss`): ``sub_clusters`` centres per class in
    the margin head (sub-cluster AdaCos, Wilkinghoff 2021; sub-center ArcFace), ``mixup``
    of the inputs with soft labels, and ``feature_exchange`` (FeatEx, Wilkinghoff 2024:
    embedding halves exchanged between items, the pairs classified by a second head;
    see :func:`exchange_features`).

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
        sub_clusters: Learned centres per class in the margin head (1: one centre).
        mixup: Beta parameter ``alpha`` of input mixup with soft labels (0: off; 0.2-1
            typical).
        feature_exchange: Add the feature-exchange (FeatEx) loss.
    """

    def __init__(self, *, margin: str = "adacos", aux_fields: str = "machine,section,attributes",
                 aux_synthetic: float = 0.0, anomaly_kinds: str | None = None,
                 snr_min_db: float = 0.0, snr_max_db: float = 20.0,
                 synthetic_repeats: int = 1, sub_clusters: int = 1, mixup: float = 0.0,
                 feature_exchange: bool = False) -> None:
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
        self._check_int("sub_clusters")
        self._check_number("mixup", 0.0)
        if self.feature_exchange not in (True, False):
            raise DetectorError(self._where("feature_exchange"), f"must be true or false, "
                                f"got {self.feature_exchange!r}")

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

        num_classes = max(2, len(spec["class_names"]))
        model.head = create_margin_head(self.margin, model.num_features, num_classes,
                                        int(self.sub_clusters))
        if self.feature_exchange:
            model.exchange_head = create_margin_head(self.margin, model.num_features,
                                                     3 * num_classes, int(self.sub_clusters))

    def datasets(self, data: TrainInput) -> tuple[Any, Any, dict[str, Any]]:  # noqa: D102
        extra = data.plan.extra
        if extra["exposure"]:
            return self._synthetic_data(data, float(self.aux_synthetic), True,
                                        data.plan.targets, int(extra["n_base"]))
        if extra["single"]:
            return self._synthetic_data(data, 0.5, True, None, 1)
        return _labelled_windows(data, data.plan.targets)  # type: ignore[arg-type]

    def loss(self) -> Callable[..., Any]:  # noqa: D102
        if self.mixup > 0 or self.feature_exchange:
            return AuxiliaryLoss(float(self.mixup), bool(self.feature_exchange))
        return margin_loss
