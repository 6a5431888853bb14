"""The scoring graph: front-end -> score windows -> network view -> pooling, one torch module.

:class:`ScoringGraph` is what :class:`~soundwatch.detectors.composed.ComposedDetector`
computes its scorer's inputs with and what :mod:`soundwatch.export` traces to ONNX, so the
export cannot drift from scoring: the same front-end module (its ``forward`` branches to
traceable operators while ``torch.onnx.export`` runs), the same layout and window cutting
(:func:`~soundwatch.detectors.windows.score_windows`), the same view function, and the same
numpy pooling that :mod:`soundwatch.runtime` applies after the graph.

The stages compose to :meth:`ScoringGraph.forward`: :meth:`~ScoringGraph.features`
(waveforms to front-end features; the library caches these on disk between the stages),
:meth:`~ScoringGraph.items` (features to rows ``[B, n, d]`` or windows ``[B, n, C, W]``),
:meth:`~ScoringGraph.encode` (the view function on flattened items). The library runs
:meth:`~ScoringGraph.clip_view` per clip, which cuts the same items and encodes them a
batch at a time (memory), and :meth:`~ScoringGraph.pool`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from soundwatch.detectors.pooling import pool
from soundwatch.detectors.windows import score_windows
from soundwatch.errors import DetectorError
from soundwatch.features.extraction import run_frontend

if TYPE_CHECKING:
    from soundwatch.detectors.composed import ComposedDetector

__all__ = ["ENCODE_BATCH", "ScoringGraph", "feature_channels", "feature_rows"]

ENCODE_BATCH = 256
"""Items per view-function call when the library scores a clip (at least the training batch)."""

ViewFn = Callable[[torch.Tensor], torch.Tensor]


def feature_rows(feats: Any, layout: str) -> Any:
    """A batch of features ``[B, ...]`` as rows ``[B, n, d]`` (``[bins, T]``: ``T`` rows).

    Written with operations numpy arrays and torch tensors share, so the library reads
    memory-mapped cached features without a copy, training reads the same rows, and the
    export traces the same code.
    """
    if feats.ndim == 2:  # a waveform [L] per clip
        return feats[:, :, None] if layout == "waveform" else feats[:, None, :]
    if layout == "rows":
        return feats if feats.ndim == 3 else feats.reshape(feats.shape[0], feats.shape[1], -1)
    if feats.ndim > 3:
        feats = feats.reshape(feats.shape[0], -1, feats.shape[-1])
    return feats.swapaxes(1, 2)


def feature_channels(feats: Any) -> Any:
    """A batch of features ``[B, ...]`` as channels ``[B, C, T]`` (a waveform: ``C = 1``).

    The input of windowed encoders; numpy arrays or torch tensors.
    """
    if feats.ndim == 2:
        return feats[:, None, :]
    if feats.ndim > 3:
        return feats.reshape(feats.shape[0], -1, feats.shape[-1])
    return feats


class ScoringGraph(nn.Module):
    """Waveforms ``[B, L]`` -> per-clip items of the scorer's view ``[B, n, d]``, then pooling.

    Args:
        frontend: The front-end module (a :class:`~soundwatch.features.FrontEnd`).
        model: The fitted encoder model (``None``: a classical detector; items are the
            front-end's rows).
        view: The scorer's view (``vectors``, ``residual``, ``probability``, ``elbo``).
        make_view_fn: Builds the view function ``batch -> [items, d]``; called once per
            clip by :meth:`clip_view` (a stochastic view's seeded samples then give a clip
            the same value whichever clips are scored with it) and once for the graph.
        window: Frames per score window (``None``: the encoder reads rows).
        hop: Frames between score windows.
        channels: The encoder's input channels (windows) or row size (rows); kept static
            in the traced graph for encoders that unfold or reshape.
        pooling: ``(name, params)`` of the pooling of each clip's items (``vectors`` view
            only; other views are scored item by item).
        batch: Items per view-function call in :meth:`clip_view`.
        device: Where the network runs (:meth:`clip_view` moves each batch there).
    """

    def __init__(
        self,
        frontend: nn.Module,
        *,
        model: nn.Module | None = None,
        view: str = "vectors",
        make_view_fn: Callable[[], ViewFn] | None = None,
        window: int | None = None,
        hop: int | None = None,
        channels: int | None = None,
        pooling: tuple[str, dict[str, Any]] = ("none", {}),
        batch: int = ENCODE_BATCH,
        device: Any = "cpu",
    ) -> None:
        super().__init__()
        if model is not None and make_view_fn is None:
            raise DetectorError("scoring graph", "a network needs its view function")
        self.frontend = frontend
        self.layout = str(frontend.layout)
        self.model = model
        self.view_name = view
        self._make_view_fn = make_view_fn
        self._view_fn: ViewFn | None = None
        self.window = window
        self.hop = hop
        self.channels = channels
        self.pooling = (pooling[0], dict(pooling[1])) if view == "vectors" else ("none", {})
        self.batch = int(batch)
        self.device = torch.device(device)

    @classmethod
    def from_detector(cls, detector: ComposedDetector, view: str | None = None,
                      device: Any = "cpu") -> ScoringGraph:
        """The scoring graph of a fitted composed detector (its public API only).

        Args:
            detector: A fitted :class:`~soundwatch.detectors.composed.ComposedDetector`.
            view: One of ``detector.views()`` (default: what its scorer needs).
            device: Where the front-end and the network run.

        Raises:
            DetectorError: A view this composition does not offer.
        """
        view = view or detector.part("scorer").needs
        frontend = detector.make_frontend(str(device))
        pooling = (detector.pooling, dict(detector.pooling_params or {}))
        if detector.encoder is None:
            if view != "vectors":
                raise DetectorError(detector.name, f"no network: no {view!r} view")
            return cls(frontend, view=view, pooling=pooling).eval()
        model = detector.network_.to(device).eval()
        spec = detector.network_spec_
        if view == "vectors":
            def make_view_fn() -> ViewFn:
                return model.embed
        else:
            objective = detector.part("objective").create()
            seed = int(detector.seed)

            def make_view_fn() -> ViewFn:
                return objective.view_fn(view, model, spec, seed, device)
        window = spec.get("window")
        hop = max(1, detector.score_hop or window // 2) if window else None
        channels = spec.get("channels")
        batch = max(ENCODE_BATCH, int(detector.train_spec().batch_size))
        return cls(frontend, model=model, view=view, make_view_fn=make_view_fn, window=window,
                   hop=hop, channels=int(channels) if channels else None, pooling=pooling,
                   batch=batch, device=device).eval()

    # ----------------------------------------------------------------- stages
    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """Stage 1: waveforms ``[B, L]`` -> the front-end's features (what the cache holds).

        Eager on the CPU, a few clips at a time (:func:`~soundwatch.features.run_frontend`);
        under the ONNX export, the front-end's ``forward`` whole.
        """
        return run_frontend(self.frontend, wave)

    def rows(self, feats: Any) -> Any:
        """Features ``[B, ...]`` as rows ``[B, n, d]`` (:func:`feature_rows`)."""
        return feature_rows(feats, self.layout)

    def items(self, feats: torch.Tensor) -> torch.Tensor:
        """Stage 2: features -> the encoder's items.

        Rows ``[B, n, d]``, or, for a windowed encoder, score windows
        ``[B, n, C, window]`` (:func:`~soundwatch.detectors.windows.score_windows`).
        """
        if self.window is None:
            return self.rows(feats)
        wins = score_windows(feature_channels(feats), self.window, self.hop)  # [B, C, n, W]
        return wins.permute(0, 2, 1, 3)

    def new_view_fn(self) -> ViewFn:
        """A fresh view function (see ``make_view_fn``)."""
        if self._make_view_fn is None:
            raise DetectorError("scoring graph", "no network: no view function")
        return self._make_view_fn()

    def encode(self, items: torch.Tensor, fn: ViewFn | None = None) -> torch.Tensor:
        """Stage 3: the view function on items ``[N, d]`` or ``[N, C, window]`` -> ``[N, d']``."""
        if fn is None:
            if self._view_fn is None:
                self._view_fn = self.new_view_fn()
            fn = self._view_fn
        return fn(items)

    def view(self, feats: torch.Tensor) -> torch.Tensor:
        """Stages 2 and 3: features ``[B, ...]`` -> view items ``[B, n, d]``."""
        items = self.items(feats)
        if self.model is None:
            return items
        b, n = items.shape[0], items.shape[1]
        # the static row size, channels and window keep the items' shape known to the exporter
        if self.window is None:
            flat = items.reshape(-1, self.channels or items.shape[-1])
        else:
            flat = items.reshape(-1, self.channels or items.shape[2], self.window)
        return self.encode(flat).reshape(b, n, -1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, L]`` float32 -> view items ``[B, n, d]`` (what the export traces)."""
        return self.view(self.features(wave))

    # ----------------------------------------------------------------- library side
    def clip_view(self, feats: np.ndarray, fn: ViewFn | None = None) -> np.ndarray:
        """One clip's view items ``[n, d]`` float64 from its features (as :meth:`view`).

        The items are cut as :meth:`items` cuts them and encoded :attr:`batch` at a time
        on the network's device, with a fresh view function per clip unless ``fn`` is given.
        """
        if self.model is None:
            return np.asarray(self.rows(np.asarray(feats)[None])[0], dtype=np.float64)
        arr = np.ascontiguousarray(feats, dtype=np.float32)
        # memmaps from the feature cache are read-only; torch wants a writable array
        x = torch.from_numpy(arr if arr.flags.writeable else arr.copy())[None]
        with torch.inference_mode():
            items = self.items(x)[0]
        if self.window is not None:
            items = items.contiguous()
        fn = fn or self.new_view_fn()
        with torch.inference_mode():
            outs = [self.encode(items[i : i + self.batch].to(self.device), fn).float().cpu()
                    for i in range(0, len(items), self.batch)]
        if not outs:
            return np.zeros((0, 0))
        return torch.cat(outs).double().numpy().reshape(len(items), -1)

    def pool(self, items: np.ndarray) -> np.ndarray:
        """One clip's items pooled to ``[1, d']`` (``"none"``: the items, as float64).

        :func:`~soundwatch.detectors.pooling.pool`, which the runtime applies to the
        exported graph's output too.
        """
        return pool(self.pooling[0], items, **self.pooling[1])

