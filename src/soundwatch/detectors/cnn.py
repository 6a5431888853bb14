"""The cnn1d and wavevision detectors: front-end + network + objective + scorer."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from soundwatch.datasets.clip import Clip
from soundwatch.detectors.neural import NetworkDetector
from soundwatch.detectors.objectives import (
    ANOMALY_KINDS,
    AUX_FIELDS,
    OBJECTIVES,
    DomainKNN,
    SyntheticAnomalies,
    auxiliary_labels,
)
from soundwatch.detectors.registry import register
from soundwatch.errors import DetectorError
from soundwatch.training.data import WindowDataset, pad_to, window_starts

__all__ = [
    "CNN1DDetector",
    "DetectorModel",
    "EmbeddingNetworkDetector",
    "InputPrep",
    "SyntheticClips",
    "WaveVisionDetector",
]

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MARGINS = ("adacos", "arcface")
PREP_MODES = ("channels", "logmel2d", "image")
SYNTHETIC_SCORES = ("probability", "knn")
SYNTHETIC_CLASSES = ("binary", "kinds")
IMAGE_RANGES = ("minmax", "standard")
KNN_WINDOWS = ("mean", "max")


class _SupervisedFlag:
    """``supervised`` that is False on the class and follows ``objective`` on an instance."""

    def __get__(self, obj: Any, owner: type | None = None) -> bool:
        return obj is not None and getattr(obj, "objective", None) == "supervised"


# --------------------------------------------------------------------------- torch parts


class InputPrep(nn.Module):
    """Features ``[B, C, T]`` -> network input, with training-time augmentation.

    Modes:

    - ``channels``: standardised per channel (training mean/std), ``[B, C, T]`` (Wave1DCNN);
    - ``logmel2d``: standardised, ``[B, 1, C, T]`` (WaveVisionNet on the log-mel itself);
    - ``image``: coloured with a colormap lookup table and resized by
      :func:`soundwatch.features.render_batch`, ImageNet-normalised, ``[B, 3, S, S]``;
      the colours span each image's own min..max (``image_range="minmax"``, as the
      seed's ``imshow``) or a fixed -3..3 of the standardised features
      (``"standard"``: levels stay comparable between images).

    In training (``augment``): a random circular time shift per item, an optional
    random time reversal, then SpecAugment-style masks (``n_masks`` time and frequency
    bands of random width up to ``time_mask`` / ``freq_mask`` of the axis, set to 0,
    the mean after normalisation).

    Args:
        mode: One of :data:`PREP_MODES`.
        channels: Feature channels ``C`` (bins).
        image_size: Side of the square image (``image`` mode).
        cmap: Colormap (``image`` mode).
        image_range: ``"minmax"`` or ``"standard"`` (``image`` mode).
        augment: Augment in training mode.
        time_shift: Random circular time shift.
        time_mask: Largest time mask, as a fraction of the time axis.
        freq_mask: Largest frequency mask, as a fraction of the frequency axis.
        n_masks: Masks per axis.
        flip: Random time reversal.
    """

    def __init__(self, mode: str, channels: int, image_size: int = 224, cmap: str = "viridis",
                 image_range: str = "minmax", augment: bool = True, time_shift: bool = True,
                 time_mask: float = 0.1, freq_mask: float = 0.1, n_masks: int = 2,
                 flip: bool = False) -> None:
        super().__init__()
        if mode not in PREP_MODES:
            raise ValueError(f"mode must be one of {PREP_MODES}, got {mode!r}")
        self.mode = mode
        self.image_size = int(image_size)
        self.cmap = cmap
        self.image_range = image_range
        self.augment = augment
        self.time_shift = time_shift
        self.time_mask = float(time_mask)
        self.freq_mask = float(freq_mask)
        self.n_masks = int(n_masks)
        self.flip = flip
        self.register_buffer("mean", torch.zeros(channels, 1))
        self.register_buffer("std", torch.ones(channels, 1))
        self.register_buffer("rgb_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("rgb_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def set_stats(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Set the per-channel standardisation statistics."""
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32).view(-1, 1))
        self.std.copy_(torch.as_tensor(np.maximum(std, 1e-5), dtype=torch.float32).view(-1, 1))

    @staticmethod
    def _shift(x: torch.Tensor) -> torch.Tensor:
        shifts = torch.randint(0, x.shape[-1], (x.shape[0],)).tolist()
        return torch.stack([torch.roll(x[i], s, dims=-1) for i, s in enumerate(shifts)])

    def _mask(self, x: torch.Tensor, axis: int, fraction: float) -> torch.Tensor:
        size = x.shape[axis]
        width = int(size * fraction)
        if width < 1 or self.n_masks < 1:
            return x
        positions = torch.arange(size, device=x.device)
        keep = torch.ones(x.shape[0], size, dtype=torch.bool, device=x.device)
        for _ in range(self.n_masks):
            w = torch.randint(0, width + 1, (x.shape[0], 1), device=x.device)
            start = (torch.rand(x.shape[0], 1, device=x.device) * (size - w + 1)).floor()
            keep &= ~((positions >= start) & (positions < start + w))
        shape = [x.shape[0]] + [1] * (x.dim() - 1)
        shape[axis] = size
        return x * keep.view(shape).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Prepare a batch of features ``[B, C, T]``."""
        train_aug = self.training and self.augment
        if train_aug and self.time_shift:
            x = self._shift(x)
        if train_aug and self.flip:
            flip = torch.rand(x.shape[0], device=x.device) < 0.5
            x = torch.where(flip.view(-1, 1, 1), x.flip(-1), x)
        if self.mode == "image":
            from soundwatch.features.render import render_batch

            size = (self.image_size, self.image_size)
            x = x.detach().float()
            vrange: tuple[float, float] | None = None
            if self.image_range == "standard":
                x, vrange = (x - self.mean) / self.std, (-3.0, 3.0)
            image = render_batch(x, cmap=self.cmap, size=size, vrange=vrange).float() / 255.0
            out = (image - self.rgb_mean) / self.rgb_std
            freq_axis = 2
        else:
            out = (x - self.mean) / self.std
            freq_axis = 1
            if self.mode == "logmel2d":
                out = out.unsqueeze(1)
                freq_axis = 2
        if train_aug:
            out = self._mask(out, out.dim() - 1, self.time_mask)
            out = self._mask(out, freq_axis, self.freq_mask)
        return out


class DetectorModel(nn.Module):
    """Input preparation + network (+ the cosine-margin head of the auxiliary objective).

    Args:
        prep: An :class:`InputPrep`.
        network: A network with ``forward_features`` (embedding) and ``forward`` (logits).
        margin: A cosine-margin head, or ``None``.
    """

    def __init__(self, prep: InputPrep, network: nn.Module, margin: nn.Module | None) -> None:
        super().__init__()
        self.prep = prep
        self.network = network
        self.margin = margin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Network output (logits) for features ``x``."""
        return self.network(self.prep(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Network embedding for features ``x``."""
        return self.network.forward_features(self.prep(x))


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
    return F.cross_entropy(model.margin(model.embed(x), y), y)


def _as_2d(f: np.ndarray) -> np.ndarray:
    """One clip's features as ``[C, T]`` (a waveform ``[L]`` becomes ``[1, L]``)."""
    f = np.asarray(f, dtype=np.float32)
    return f[None] if f.ndim == 1 else f.reshape(-1, f.shape[-1])


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
        feats = _as_2d(feats.numpy())
        t = feats.shape[-1]
        if t > self.window:
            start = int(rng.integers(0, t - self.window + 1))
            feats = feats[:, start : start + self.window]
        return torch.from_numpy(np.ascontiguousarray(pad_to(feats, self.window))), label


# --------------------------------------------------------------------------- shared detector


class EmbeddingNetworkDetector(NetworkDetector):
    """Shared implementation of ``cnn1d`` and ``wavevision`` (not registered itself).

    Features ``[C, T]`` from the front-end are cut into windows of ``window_frames``
    frames (default: the shortest training clip, so equal-length clips give one window
    each); training uses windows ``window_frames // 2`` apart, scoring averages the
    per-window probabilities (or embeddings) over windows that cover the clip.

    Subclasses set ``prep_mode`` and implement :meth:`make_network`.
    """

    supervised: ClassVar[bool] = _SupervisedFlag()  # type: ignore[assignment]

    # declared by subclasses' __init__
    objective: str
    frontend: str
    frontend_params: dict[str, Any] | None
    preset: str
    network_params: dict[str, Any] | None
    window_frames: int | None
    margin: str
    aux_fields: str
    knn_k: int
    knn_windows: str | None
    synthetic_score: str
    synthetic_classes: str
    kmeans_source: int | None
    anomaly_kinds: str | None
    snr_min_db: float
    snr_max_db: float
    synthetic_ratio: float
    aux_synthetic: float
    synthetic_repeats: int
    augment: bool
    time_mask: float
    freq_mask: float
    flip: bool

    def _prep_mode(self) -> str:
        raise NotImplementedError

    def make_network(self, in_channels: int, num_outputs: int) -> nn.Module:
        """The bare network for ``in_channels`` input channels."""
        raise NotImplementedError

    def _network_config(self) -> Any:
        raise NotImplementedError

    # ----------------------------------------------------------------- params
    def _aux_fields(self) -> tuple[str, ...]:
        return tuple(f.strip() for f in str(self.aux_fields).split(",") if f.strip())

    def _kinds(self) -> tuple[str, ...]:
        if self.anomaly_kinds is None:
            return ANOMALY_KINDS
        return tuple(k.strip() for k in str(self.anomaly_kinds).split(",") if k.strip())

    def validate_params(self) -> None:  # noqa: D102
        super().validate_params()
        self._check_choice("objective", OBJECTIVES)
        self._check_choice("margin", MARGINS)
        self._check_positive("knn_k")
        if self.knn_windows is not None:
            self._check_choice("knn_windows", KNN_WINDOWS)
        self._check_choice("synthetic_score", SYNTHETIC_SCORES)
        self._check_choice("synthetic_classes", SYNTHETIC_CLASSES)
        self._check_positive("time_mask", "freq_mask", allow_zero=True)
        if not 0.0 <= self.aux_synthetic < 1.0:
            raise DetectorError(f"{self.name}.aux_synthetic", "must lie in [0, 1)")
        self._check_positive("synthetic_repeats")
        if not 0.0 < self.synthetic_ratio < 1.0:
            raise DetectorError(f"{self.name}.synthetic_ratio", "must lie in (0, 1)")
        if self.window_frames is not None:
            self._check_positive("window_frames")
        if self.kmeans_source is not None:
            self._check_positive("kmeans_source")
        fields = self._aux_fields()
        if not fields or any(f not in AUX_FIELDS for f in fields):
            raise DetectorError(f"{self.name}.aux_fields",
                                f"comma-separated names among {', '.join(AUX_FIELDS)}")
        kinds = self._kinds()
        if not kinds or any(k not in ANOMALY_KINDS for k in kinds):
            raise DetectorError(f"{self.name}.anomaly_kinds",
                                f"comma-separated names among {', '.join(ANOMALY_KINDS)}")
        if not self.snr_min_db <= self.snr_max_db:
            raise DetectorError(f"{self.name}.snr_min_db", "must not exceed snr_max_db")
        try:
            self._network_config()
            self.make_frontend()
        except DetectorError:
            raise
        except Exception as exc:  # ConfigError or ValueError from the parts
            raise DetectorError(self.name, str(exc)) from None

    # ----------------------------------------------------------------- network
    def build_network(self, spec: dict[str, Any]) -> nn.Module:
        """The trainable model: input preparation + network (+ margin head)."""
        from soundwatch.detectors.networks.margin import create_margin_head

        mode = self._prep_mode()
        channels = int(spec["channels"])
        prep = InputPrep(
            mode, channels, image_size=int(getattr(self, "image_size", 224)),
            cmap=str(getattr(self, "cmap", "viridis")),
            image_range=str(getattr(self, "image_range", "minmax")), augment=self.augment,
            time_mask=self.time_mask, freq_mask=self.freq_mask, flip=self.flip,
        )
        in_channels = {"channels": channels, "logmel2d": 1, "image": 3}[mode]
        network = self.make_network(in_channels, int(spec.get("n_outputs", 1)))
        head = None
        if self.objective == "auxiliary":
            head = create_margin_head(self.margin, network.embedding_dim, int(spec["n_classes"]))
        return DetectorModel(prep, network, head)

    def _uses_knn(self) -> bool:
        """Whether clips are scored by the k-NN distance of their embeddings."""
        return self.objective == "auxiliary" or (
            self.objective == "synthetic" and getattr(self, "synthetic_score", "") == "knn"
        )

    def _array_attributes(self) -> tuple[str, ...]:
        return ("knn_source_", "knn_target_") if self._uses_knn() else ()

    def _generator(self, sr: int) -> SyntheticAnomalies:
        return SyntheticAnomalies(
            kinds=self._kinds(), snr_db=(float(self.snr_min_db), float(self.snr_max_db)), sr=sr
        )

    # ----------------------------------------------------------------- fit
    def _fit_features(
        self, feats: list[np.ndarray], clips: list[Clip], labels: np.ndarray | None
    ) -> None:
        feats = [_as_2d(f) for f in feats]
        if self.objective == "supervised":
            y = np.asarray(labels, dtype=np.int64)
            if set(np.unique(y).tolist()) != {0, 1}:
                raise DetectorError(self.name, "supervised objective needs 0/1 labels of both "
                                    "classes")
        elif self.objective == "auxiliary":
            y, class_names = auxiliary_labels(clips, self._aux_fields())
        else:
            y, class_names = np.zeros(len(clips), dtype=np.int64), []
        single = self.objective == "auxiliary" and len(class_names) < 2
        # auxiliary classes plus one extra class per synthetic anomaly kind
        exposure = self.objective == "auxiliary" and not single and self.aux_synthetic > 0
        # the synthetic objective's softmax over normal + each anomaly kind
        kinds = self.objective == "synthetic" and self.synthetic_classes == "kinds"
        multiclass = single or exposure or kinds
        synthetic = self.objective == "synthetic" or multiclass
        fe = self.make_frontend()
        generator = self._generator(fe.sr) if synthetic else None
        n_base = len(class_names) if exposure else 1
        if exposure:
            assert generator is not None
            class_names = [*class_names, *(f"synthetic:{k}" for k in generator.kinds)]
        elif single:
            assert generator is not None
            log.info("%s: one auxiliary class (%s); classifying normal vs. each synthetic "
                     "anomaly kind instead", self.name, class_names[0] if class_names else "-")
            class_names = [class_names[0] if class_names else "normal", *generator.kinds]
        elif kinds:
            assert generator is not None
            class_names = ["normal", *generator.kinds]
        elif self.objective == "supervised":
            class_names = ["normal", "anomaly"]

        window = int(min(self.window_frames or 10**12, min(f.shape[-1] for f in feats)))
        channels = int(feats[0].shape[0])
        if any(f.shape[0] != channels for f in feats):
            raise DetectorError(self.name, "clips give features with different numbers of bins")
        normal = [f for f, t in zip(feats, y, strict=True)
                  if self.objective != "supervised" or t == 0]
        total = sum(f.shape[1] for f in normal)
        mean = sum(f.sum(axis=1, dtype=np.float64) for f in normal) / total
        var = sum(((f - mean[:, None]) ** 2).sum(axis=1, dtype=np.float64) for f in normal) / total
        model = self._init_network({
            "channels": channels, "n_classes": max(2, len(class_names)), "window": window,
            "class_names": class_names, "n_outputs": len(class_names) if kinds else 1,
        })
        model.prep.set_stats(mean, np.sqrt(var))

        # whole clips are held out for validation (the engine's own split below 10 clips)
        train_idx, val_idx = self._split_arrays(list(range(len(feats))))  # type: ignore[arg-type]
        hop = max(1, window // 2)
        if synthetic:
            from soundwatch.audio import load

            assert generator is not None
            waves = [load(c.path, sr=fe.sr) for c in clips]
            # crop the waveform to a little more than a window before the features
            per_frame = max(w.size / f.shape[-1] for w, f in zip(waves, feats, strict=True))
            crop = int(np.ceil((window + 2) * per_frame))
            ratio = self.aux_synthetic if exposure else self.synthetic_ratio

            def make(idx: list[int], seed: int, fixed: bool) -> SyntheticClips:
                return SyntheticClips(
                    [waves[i] for i in idx], fe, generator, window, seed, ratio, multiclass,
                    fixed, labels=y[np.asarray(idx, dtype=np.int64)] if exposure else None,
                    offset=n_base if exposure else 1, repeats=self.synthetic_repeats,
                    crop=crop,
                )

            train_data: Any = make(train_idx, self.seed, False)
            val_data = make(val_idx, self.seed + 1, True) if val_idx else None
            overrides: dict[str, Any] = {"val_fraction": 0.0} if not val_idx else {}
        else:
            def windows(idx: list[int]) -> WindowDataset:
                return WindowDataset([feats[i] for i in idx], window, hop).with_item_labels(
                    y[np.asarray(idx, dtype=np.int64)]
                )

            train_data = windows(train_idx)
            val_data = windows(val_idx) if val_idx else None
            overrides = {}
        loss = margin_loss if self.objective == "auxiliary" else ce_loss if kinds else bce_loss
        self._train(model, train_data, loss, val_data=val_data, **overrides)
        if self._uses_knn():
            knn = DomainKNN(self.knn_k, self.kmeans_source, self.seed)
            emb, owner = self._knn_inputs(feats)
            knn.fit(emb, [clips[i].domain for i in owner])
            dim = int(self.network_.network.embedding_dim)
            self.knn_source_ = knn.banks.get("source", np.zeros((0, dim)))
            self.knn_target_ = knn.banks.get("target", np.zeros((0, dim)))

    # ----------------------------------------------------------------- inference
    def _per_window(self, feats: list[np.ndarray], embed: bool) -> list[np.ndarray]:
        """Per clip, the anomaly probability ``[W, 1]`` (or embedding ``[W, D]``) of each window.

        Windows are ``window`` frames, half a window apart, covering the whole clip.
        """
        net = self._eval_network()
        window = int(self.network_spec_["window"])
        fn = net.embed if embed else self._probability_fn(net)
        out = []
        for f in feats:
            x = _as_2d(f)
            starts = window_starts(x.shape[1], window, max(1, window // 2))
            wins = np.stack([pad_to(x[:, s : s + window], window) for s in starts])
            out.append(self._run_batches(wins, fn, self.batch_size).double().numpy())
        return out

    def _per_clip(self, feats: list[np.ndarray], embed: bool) -> np.ndarray:
        """Mean over each clip's windows of the anomaly probability (or the embedding)."""
        return np.stack([w.mean(axis=0) for w in self._per_window(feats, embed)])

    def _knn_inputs(self, feats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """k-NN embeddings (one per clip, or one per window with ``knn_windows``) and owners."""
        if not self.knn_windows:
            return self._embeddings(feats), np.arange(len(feats))
        per = self._per_window(feats, embed=True)
        owner = np.concatenate([np.full(len(w), i) for i, w in enumerate(per)])
        return np.concatenate(per), owner

    def _probability_fn(self, net: nn.Module) -> Any:
        """Batch -> anomaly probability ``[B, 1]``: sigmoid of one logit, or 1 - p(normal)."""
        if int(self.network_spec_.get("n_outputs", 1)) > 1:
            return lambda b: 1.0 - torch.softmax(net(b).float(), dim=1)[:, :1]
        return lambda b: torch.sigmoid(net(b)[:, :1].float())

    def _embeddings(self, feats: list[np.ndarray]) -> np.ndarray:
        return self._per_clip(feats, embed=True)

    def embed(self, clips: list[Clip]) -> np.ndarray:
        """Embedding ``[N, D]`` of each clip (mean over its windows)."""
        self._check_fitted()
        return self._embeddings(self.clip_features(list(clips)))

    def _score_features(self, feats: list[np.ndarray]) -> np.ndarray:
        if self._uses_knn():
            knn = DomainKNN(self.knn_k)
            knn.banks = {name: bank for name, bank in
                         (("source", self.knn_source_), ("target", self.knn_target_)) if len(bank)}
            emb, owner = self._knn_inputs(feats)
            dist = knn.score(emb)
            if not self.knn_windows:
                return dist
            agg = np.max if self.knn_windows == "max" else np.mean
            # owners are contiguous (clip by clip), so split where the owner changes
            return np.array([agg(d) for d in np.split(dist, np.flatnonzero(np.diff(owner)) + 1)])
        return self._per_clip(feats, embed=False).reshape(-1)


_TEST_TRAINING: dict[str, Any] = {
    "epochs": 1, "batch_size": 4, "device": "cpu", "val_fraction": 0.0, "preset": "tiny",
    "frontend_params": {"n_mels": 16, "n_fft": 512, "hop_length": 256},
    # pitch shifting is left out: librosa's first call alone takes seconds
    "anomaly_kinds": "noise,tone,impulses,burst,speed,notch",
}


@register("cnn1d")
class CNN1DDetector(EmbeddingNetworkDetector):
    """Wave1DCNN (Conv1d + GeM + BiGRU) on log-mel/CQT/waveform channels; 3 objectives.

    Objectives: ``auxiliary`` (default: normal clips only; an AdaCos/ArcFace classifier
    of what is known about each clip; score = domain-aware cosine k-NN distance),
    ``synthetic`` (normal clips only; normal vs. anomalies made on the fly; score =
    probability) and ``supervised`` (labelled normal/anomaly clips; score = probability).

    Args:
        objective: ``"auxiliary"``, ``"synthetic"`` or ``"supervised"``.
        frontend: Front-end with ``[bins, T]`` (or waveform ``[L]``) output: ``logmel``,
            ``cqt``, ``cqt_seed``, ``waveform``...; the bins are the input channels.
        frontend_params: Front-end parameters (default: the front-end's own, e.g. 128 mels).
        cache_dir: Feature-cache folder; ``None``: no cache.
        preset: Network sizes: ``small`` (default, trains on a CPU), ``tiny`` or ``seed``.
        network_params: Overrides of
            :class:`~soundwatch.detectors.networks.cnn1d.Wave1DCNNConfig` fields.
        window_frames: Frames per window (``None``: the shortest training clip).
        margin: Auxiliary head: ``"adacos"`` or ``"arcface"``.
        aux_fields: Comma-separated clip fields defining the auxiliary classes
            (``machine``, ``section``, ``attributes``, ``domain``, ``machine_id``); with a
            single class, normal vs. each synthetic anomaly kind is classified instead.
        knn_k: Neighbours of the k-NN scorer.
        knn_windows: ``None``: k-NN on each clip's mean embedding; ``"mean"``/``"max"``:
            k-NN on each window's embedding (the banks hold every training window), the
            clip's score being the mean or the largest of its windows' distances.
        synthetic_score: Score of the ``synthetic`` objective: ``"probability"`` (the
            anomaly probability) or ``"knn"`` (the domain-aware cosine k-NN distance of
            the embedding to the normal training clips', as for ``auxiliary``).
        synthetic_classes: Classifier of the ``synthetic`` objective: ``"binary"``
            (normal vs. anomaly, sigmoid) or ``"kinds"`` (normal vs. each anomaly kind,
            softmax; the anomaly probability is ``1 - p(normal)``).
        kmeans_source: Summarise source embeddings by this many k-means centres.
        anomaly_kinds: Comma-separated synthetic anomaly kinds (``None``: all).
        snr_min_db: Lowest SNR of the additive synthetic anomalies.
        snr_max_db: Highest SNR of the additive synthetic anomalies.
        synthetic_ratio: Share of training items made anomalous.
        aux_synthetic: ``auxiliary`` with several classes: share of training items made
            synthetic anomalies, each kind an extra class of the classifier (outlier
            exposure; 0: off). The k-NN banks hold the normal clips only.
        synthetic_repeats: Random windows drawn per training clip and epoch when
            anomalies are made on the fly (``synthetic``, ``aux_synthetic``).
        augment: Time shift and time/frequency masks in training.
        time_mask: Largest time mask (fraction of the window; 2 masks).
        freq_mask: Largest frequency mask (fraction of the bins; 2 masks).
        flip: Random time reversal in training.
        epochs: Training epochs.
        batch_size: Windows per batch.
        lr: Learning rate.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        weight_decay: Weight decay.
        scheduler: ``None``, ``"cosine_warm_restarts"`` or ``"cosine"``.
        ema_decay: EMA of the weights (None: off).
        gradient_clip_val: Gradient-norm clipping (None: off).
        early_stopping_patience: Epochs without improvement before stopping (None: off).
        val_fraction: Training clips held out for validation (best epoch kept).
        seed: Seed of initialisation, split, shuffling, augmentation and anomalies.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        progress: Show a progress bar.
        log_dir: Folder for ``train_log.csv`` (None: no log file).
        checkpoint_dir: Folder for ``best.ckpt``/``last.ckpt`` (None: no checkpoints).
        resume: Continue from ``checkpoint_dir/last.ckpt``.
        in_memory_mb: Training windows below this size are held in memory.
    """

    test_params: ClassVar[dict[str, Any]] = dict(_TEST_TRAINING)

    def __init__(
        self,
        *,
        objective: str = "auxiliary",
        frontend: str = "logmel",
        frontend_params: dict[str, Any] | None = None,
        cache_dir: str | None = None,
        preset: str = "small",
        network_params: dict[str, Any] | None = None,
        window_frames: int | None = None,
        margin: str = "adacos",
        aux_fields: str = "machine,section,attributes",
        knn_k: int = 1,
        knn_windows: str | None = None,
        synthetic_score: str = "probability",
        synthetic_classes: str = "binary",
        kmeans_source: int | None = None,
        anomaly_kinds: str | None = None,
        snr_min_db: float = 0.0,
        snr_max_db: float = 20.0,
        synthetic_ratio: float = 0.5,
        aux_synthetic: float = 0.0,
        synthetic_repeats: int = 1,
        augment: bool = True,
        time_mask: float = 0.1,
        freq_mask: float = 0.1,
        flip: bool = False,
        epochs: int = 30,
        batch_size: int = 32,
        lr: float = 1e-3,
        optimizer: str = "adamw",
        weight_decay: float = 1e-4,
        scheduler: str | None = "cosine",
        ema_decay: float | None = None,
        gradient_clip_val: float | None = None,
        early_stopping_patience: int | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        device: str = "auto",
        progress: bool = False,
        log_dir: str | None = None,
        checkpoint_dir: str | None = None,
        resume: bool = False,
        in_memory_mb: float = 1024.0,
    ) -> None:
        self.objective = objective
        self.frontend = frontend
        self.frontend_params = frontend_params
        self.cache_dir = cache_dir
        self.preset = preset
        self.network_params = network_params
        self.window_frames = window_frames
        self.margin = margin
        self.aux_fields = aux_fields
        self.knn_k = knn_k
        self.knn_windows = knn_windows
        self.synthetic_score = synthetic_score
        self.synthetic_classes = synthetic_classes
        self.kmeans_source = kmeans_source
        self.anomaly_kinds = anomaly_kinds
        self.snr_min_db = snr_min_db
        self.snr_max_db = snr_max_db
        self.synthetic_ratio = synthetic_ratio
        self.aux_synthetic = aux_synthetic
        self.synthetic_repeats = synthetic_repeats
        self.augment = augment
        self.time_mask = time_mask
        self.freq_mask = freq_mask
        self.flip = flip
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.scheduler = scheduler
        self.ema_decay = ema_decay
        self.gradient_clip_val = gradient_clip_val
        self.early_stopping_patience = early_stopping_patience
        self.val_fraction = val_fraction
        self.seed = seed
        self.device = device
        self.progress = progress
        self.log_dir = log_dir
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.in_memory_mb = in_memory_mb

    def _network_config(self) -> Any:
        from soundwatch.detectors.networks.cnn1d import resolve_cnn1d_config

        return resolve_cnn1d_config(self.preset, **(self.network_params or {}))

    def _prep_mode(self) -> str:
        return "channels"

    def make_network(self, in_channels: int, num_outputs: int) -> nn.Module:  # noqa: D102
        from soundwatch.detectors.networks.cnn1d import Wave1DCNN

        return Wave1DCNN(in_channels, num_outputs, self._network_config())


@register("wavevision")
class WaveVisionDetector(EmbeddingNetworkDetector):
    """WaveVisionNet (EfficientNet-style CNN + LambdaConv) on log-mel images; 3 objectives.

    Objectives as for ``cnn1d``: ``auxiliary`` (default), ``synthetic``, ``supervised``.

    Args:
        objective: ``"auxiliary"``, ``"synthetic"`` or ``"supervised"``.
        input: ``"image"`` (the log-mel coloured with ``cmap`` by a lookup table,
            resized to ``image_size`` square, ImageNet-normalised) or ``"logmel"`` (the
            standardised single-channel log-mel at its own size).
        image_size: Side of the square image (``input="image"``).
        cmap: Colormap of the image.
        image_range: Colour range of the image: ``"minmax"`` (each image's own min..max,
            as the seed's ``imshow``) or ``"standard"`` (a fixed -3..3 of the features
            standardised per bin with the training statistics, so loudness differences
            between clips stay visible).
        frontend: Front-end with ``[bins, T]`` output (``logmel``, ``logmel_seed``, ``cqt``...).
        frontend_params: Front-end parameters (default: the front-end's own, e.g. 128 mels).
        cache_dir: Feature-cache folder; ``None``: no cache.
        preset: Network sizes: ``small`` (default, trains on a CPU), ``tiny`` or ``seed``
            (EfficientNetV2-rw_s-like).
        network_params: Overrides of
            :class:`~soundwatch.detectors.networks.wavevision.WaveVisionConfig` fields.
        window_frames: Frames per window (``None``: the shortest training clip).
        margin: Auxiliary head: ``"adacos"`` or ``"arcface"``.
        aux_fields: Comma-separated clip fields defining the auxiliary classes.
        knn_k: Neighbours of the k-NN scorer.
        knn_windows: ``None``: k-NN on each clip's mean embedding; ``"mean"``/``"max"``:
            k-NN on each window's embedding (the banks hold every training window), the
            clip's score being the mean or the largest of its windows' distances.
        synthetic_score: Score of the ``synthetic`` objective: ``"probability"`` (the
            anomaly probability) or ``"knn"`` (the domain-aware cosine k-NN distance of
            the embedding to the normal training clips', as for ``auxiliary``).
        synthetic_classes: Classifier of the ``synthetic`` objective: ``"binary"``
            (normal vs. anomaly, sigmoid) or ``"kinds"`` (normal vs. each anomaly kind,
            softmax; the anomaly probability is ``1 - p(normal)``).
        kmeans_source: Summarise source embeddings by this many k-means centres.
        anomaly_kinds: Comma-separated synthetic anomaly kinds (``None``: all).
        snr_min_db: Lowest SNR of the additive synthetic anomalies.
        snr_max_db: Highest SNR of the additive synthetic anomalies.
        synthetic_ratio: Share of training items made anomalous.
        aux_synthetic: ``auxiliary`` with several classes: share of training items made
            synthetic anomalies, each kind an extra class of the classifier (outlier
            exposure; 0: off). The k-NN banks hold the normal clips only.
        synthetic_repeats: Random windows drawn per training clip and epoch when
            anomalies are made on the fly (``synthetic``, ``aux_synthetic``).
        augment: Time shift and time/frequency masks in training.
        time_mask: Largest time mask (fraction of the width; 2 masks).
        freq_mask: Largest frequency mask (fraction of the height; 2 masks).
        flip: Random horizontal flip in training (the seed's augmentation).
        epochs: Training epochs.
        batch_size: Windows per batch.
        lr: Learning rate.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        weight_decay: Weight decay.
        scheduler: ``None``, ``"cosine_warm_restarts"`` or ``"cosine"``.
        ema_decay: EMA of the weights (None: off).
        gradient_clip_val: Gradient-norm clipping (None: off).
        early_stopping_patience: Epochs without improvement before stopping (None: off).
        val_fraction: Training clips held out for validation (best epoch kept).
        seed: Seed of initialisation, split, shuffling, augmentation and anomalies.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        progress: Show a progress bar.
        log_dir: Folder for ``train_log.csv`` (None: no log file).
        checkpoint_dir: Folder for ``best.ckpt``/``last.ckpt`` (None: no checkpoints).
        resume: Continue from ``checkpoint_dir/last.ckpt``.
        in_memory_mb: Training windows below this size are held in memory.
    """

    test_params: ClassVar[dict[str, Any]] = {**_TEST_TRAINING, "image_size": 32}

    def __init__(
        self,
        *,
        objective: str = "auxiliary",
        input: str = "image",
        image_size: int = 224,
        cmap: str = "viridis",
        image_range: str = "minmax",
        frontend: str = "logmel",
        frontend_params: dict[str, Any] | None = None,
        cache_dir: str | None = None,
        preset: str = "small",
        network_params: dict[str, Any] | None = None,
        window_frames: int | None = None,
        margin: str = "adacos",
        aux_fields: str = "machine,section,attributes",
        knn_k: int = 1,
        knn_windows: str | None = None,
        synthetic_score: str = "probability",
        synthetic_classes: str = "binary",
        kmeans_source: int | None = None,
        anomaly_kinds: str | None = None,
        snr_min_db: float = 0.0,
        snr_max_db: float = 20.0,
        synthetic_ratio: float = 0.5,
        aux_synthetic: float = 0.0,
        synthetic_repeats: int = 1,
        augment: bool = True,
        time_mask: float = 0.1,
        freq_mask: float = 0.1,
        flip: bool = False,
        epochs: int = 20,
        batch_size: int = 32,
        lr: float = 1e-3,
        optimizer: str = "adamw",
        weight_decay: float = 1e-4,
        scheduler: str | None = "cosine",
        ema_decay: float | None = None,
        gradient_clip_val: float | None = None,
        early_stopping_patience: int | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        device: str = "auto",
        progress: bool = False,
        log_dir: str | None = None,
        checkpoint_dir: str | None = None,
        resume: bool = False,
        in_memory_mb: float = 1024.0,
    ) -> None:
        self.objective = objective
        self.input = input
        self.image_size = image_size
        self.cmap = cmap
        self.image_range = image_range
        self.frontend = frontend
        self.frontend_params = frontend_params
        self.cache_dir = cache_dir
        self.preset = preset
        self.network_params = network_params
        self.window_frames = window_frames
        self.margin = margin
        self.aux_fields = aux_fields
        self.knn_k = knn_k
        self.knn_windows = knn_windows
        self.synthetic_score = synthetic_score
        self.synthetic_classes = synthetic_classes
        self.kmeans_source = kmeans_source
        self.anomaly_kinds = anomaly_kinds
        self.snr_min_db = snr_min_db
        self.snr_max_db = snr_max_db
        self.synthetic_ratio = synthetic_ratio
        self.aux_synthetic = aux_synthetic
        self.synthetic_repeats = synthetic_repeats
        self.augment = augment
        self.time_mask = time_mask
        self.freq_mask = freq_mask
        self.flip = flip
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.scheduler = scheduler
        self.ema_decay = ema_decay
        self.gradient_clip_val = gradient_clip_val
        self.early_stopping_patience = early_stopping_patience
        self.val_fraction = val_fraction
        self.seed = seed
        self.device = device
        self.progress = progress
        self.log_dir = log_dir
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.in_memory_mb = in_memory_mb

    def validate_params(self) -> None:  # noqa: D102
        self._check_choice("input", ("image", "logmel"))
        self._check_choice("image_range", IMAGE_RANGES)
        self._check_positive("image_size")
        if self.input == "image":
            from soundwatch.features.render import colormap_lut

            try:
                colormap_lut(self.cmap)
            except Exception as exc:
                raise DetectorError(f"{self.name}.cmap", str(exc)) from None
        super().validate_params()

    def _network_config(self) -> Any:
        from soundwatch.detectors.networks.wavevision import resolve_wavevision_config

        return resolve_wavevision_config(self.preset, **(self.network_params or {}))

    def _prep_mode(self) -> str:
        return "image" if self.input == "image" else "logmel2d"

    def make_network(self, in_channels: int, num_outputs: int) -> nn.Module:  # noqa: D102
        from soundwatch.detectors.networks.wavevision import WaveVisionNet

        return WaveVisionNet(in_channels, num_outputs, self._network_config())
