"""Export a fitted detector (composed, or an ensemble of them) as ONNX graphs + plain arrays.

The graph is the detector's own :class:`~soundwatch.detectors.graph.ScoringGraph` (what
``score`` computes with), traced: waveforms ``[B, L]`` to the items the scorer's view holds
per clip (``[B, n, d]``): front-end rows for a classical detector; the network's embedding,
residual or probability per window (or per row) for a network detector. Pooling (the same
numpy function), the scorer (the same numpy class), the threshold and the percentiles run
in :mod:`soundwatch.runtime`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from soundwatch.decisions import DEFAULT_POLICY
from soundwatch.detectors.graph import ScoringGraph
from soundwatch.errors import ConfigError, DetectorError
from soundwatch.features.frontends import not_exportable_reason
from soundwatch.training.context import RunContext

__all__ = [
    "PARITY_RTOL",
    "detector_graph",
    "export_detector",
    "export_reason",
    "parity_scale",
    "verify_export",
]

log = logging.getLogger(__name__)

PARITY_RTOL = 1e-4
"""Largest relative score difference (runtime vs. torch) an export accepts when verified."""

_IMAGE_REASON = ("encoder input 'image' (colormap lookup of quantised levels and a uint8 "
                 "antialiased resize, soundwatch.features.render_batch) is not mirrored in ONNX; "
                 "use encoder input 'logmel'")
_ELBO_REASON = ("scorer 'elbo' draws Monte Carlo samples from torch's seeded generator, "
                "which onnxruntime cannot reproduce; use scorer 'mse' (residual view)")


def export_reason(detector: Any) -> str | None:
    """Why a fitted (or configured) detector cannot be exported (one line), or ``None``.

    Names the part and the reason. Composed detectors export, and ensembles of them.
    """
    from soundwatch.detectors.composed import ComposedDetector
    from soundwatch.detectors.ensemble import EnsembleDetector

    if isinstance(detector, EnsembleDetector):
        members = getattr(detector, "members_", None)
        if members is None:
            members = detector.configured_members()
        for i, member in enumerate(members):
            reason = export_reason(member)
            if reason is not None:
                return f"member {i} ({member.name}): {reason}"
        return None
    if not isinstance(detector, ComposedDetector):
        return f"{type(detector).__name__} is not a composed or ensemble detector"
    try:
        reason = not_exportable_reason(detector.frontend, detector.frontend_params)
    except ConfigError as exc:
        reason = f"front-end {detector.frontend!r} cannot be exported ({exc.reason})"
    if reason is not None:
        return f"front-end {detector.frontend}: {reason}"
    if detector.parts:  # added part kinds (detectors.parts.register_part) have no ONNX twin
        return f"added part {', '.join(detector.parts)} is not in the ONNX export"
    if detector.part("scorer").needs == "elbo":
        return _ELBO_REASON
    model = getattr(detector, "network_", None)
    prep = getattr(model, "prep", None)
    if getattr(prep, "mode", None) == "image":
        return f"encoder {detector.encoder}: {_IMAGE_REASON}"
    if model is None and detector.encoder is not None and \
            detector.part("encoder").prep_mode() == "image":
        return f"encoder {detector.encoder}: {_IMAGE_REASON}"
    return None


def _check_fitted(detector: Any) -> None:
    if not detector.is_fitted:
        raise DetectorError(f"detector {detector.name}", "not fitted: call fit() or load()")


def detector_graph(detector: Any) -> ScoringGraph:
    """The graph a fitted composed detector scores with, on the CPU, checked exportable.

    ``ComposedDetector.scoring_graph`` builds the same
    :class:`~soundwatch.detectors.graph.ScoringGraph` (front-end, score windows, network
    view, pooling); the export traces its ``forward`` and writes its pooling into the
    manifest.

    Raises:
        DetectorError: Not fitted, or a part that cannot be exported (named, with why).
    """
    _check_fitted(detector)
    reason = export_reason(detector)
    if reason is not None:
        raise DetectorError(f"detector {detector.name}", f"cannot be exported: {reason}")
    return ScoringGraph.from_detector(detector, device="cpu")


def parity_scale(scores: np.ndarray, train_scores: np.ndarray) -> np.ndarray:
    """What a score difference is relative to: ``max(|score|, std of the training scores)``.

    Relative to the score itself, except for scores near zero (an ensemble's z-scores
    cross it), which are compared with the spread of the training scores instead.
    """
    train = np.asarray(train_scores, dtype=np.float64).reshape(-1)
    train = train[np.isfinite(train)]
    floor = float(np.std(train)) if train.size else 0.0
    return np.maximum(np.abs(np.asarray(scores, dtype=np.float64)), max(floor, 1e-12))


def _probe_signals(sr: int, seconds: float, n: int = 3) -> list[np.ndarray]:
    """Deterministic test waveforms: tones, noise and a burst, of a few lengths."""
    rng = np.random.default_rng(12345)
    out = []
    for i in range(n):
        length = int(sr * seconds * (1.0 + 0.37 * i))
        t = np.arange(length) / sr
        x = 0.3 * np.sin(2 * np.pi * (300 + 211 * i) * t) + 0.05 * rng.standard_normal(length)
        x[length // 3 : length // 3 + sr // 20] += 0.4 * rng.standard_normal(sr // 20)
        out.append(x.astype(np.float32))
    return out


def verify_export(detector: Any, directory: Path, signals: list[np.ndarray], sr: int
                  ) -> dict[str, Any]:
    """Score ``signals`` with the detector (torch) and the export (runtime); compare.

    Returns:
        ``{"signals", "max_rel_diff", "decisions_equal"}``.
    """
    from soundwatch.runtime import load

    ref = np.asarray(detector.score_signals(signals, sr), dtype=np.float64)
    got = load(directory).score(signals, sr=sr)
    scale = parity_scale(ref, detector.train_scores_)
    rel = float(np.max(np.abs(got - ref) / scale)) if len(ref) else 0.0
    same = bool(np.array_equal(ref > detector.threshold_, got > detector.threshold_))
    return {"signals": len(signals), "max_rel_diff": rel, "decisions_equal": same}


def _export_composed(detector: Any, directory: str | Path, machine: str | None,
                     opset: int | None, channel: int | str = 0) -> tuple[Path, int, float]:
    """One composed detector's export folder; returns it, its rate and probe length (s)."""
    import dataclasses

    from soundwatch.export.frontend import frontend_kind
    from soundwatch.export.writer import ExportParts, write_export

    graph = detector_graph(detector)
    kind, cfg = frontend_kind(detector.frontend, detector.frontend_params)
    sr = int(cfg.sr)
    view = graph.view_name
    window = graph.window
    info = {
        "machine": machine,
        "detector": {"name": detector.name, "params": detector.get_params(deep=False)},
        "frontend": {"name": detector.frontend, "kind": kind,
                     "params": dataclasses.asdict(cfg), "layout": graph.layout,
                     "in_graph": True},
        "windows": {"window_frames": window, "score_hop": graph.hop,
                    "network_spec": getattr(detector, "network_spec_", None)},
    }
    seconds = 2.0
    if window:
        seconds = max(2.0, 3.0 * window * int(getattr(cfg, "hop_length", 1)) / sr)
    parts = ExportParts(graph=graph, sample_rate=sr, view=view, pooling=graph.pooling,
                        scorer=detector.scorer_,
                        threshold=(float(detector.threshold_), DEFAULT_POLICY),
                        train_scores=detector.train_scores_, info=info, channel=channel)
    return write_export(directory, parts, example_seconds=seconds, opset=opset), sr, seconds


def _export_ensemble(detector: Any, directory: str | Path, machine: str | None,
                     opset: int | None, channel: int | str = 0) -> tuple[Path, int, float]:
    """An ensemble: one member export per ``member_<i>/`` and the combination's manifest."""
    import soundwatch
    from soundwatch.atomic import atomic_path, write_json
    from soundwatch.runtime.manifest import FORMAT, FORMAT_VERSION, MANIFEST_FILE, SCORES_FILE

    _check_fitted(detector)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_FILE).unlink(missing_ok=True)
    names, rates, seconds = [], [], 2.0
    for i, member in enumerate(detector.members_):
        _, sr, sec = _export_composed(member, out / f"member_{i}", machine, opset, channel)
        names.append(f"member_{i}")
        rates.append(sr)
        seconds = max(seconds, sec)
    with atomic_path(out / SCORES_FILE) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.asarray(detector.train_scores_, dtype=np.float64),
                allow_pickle=False)
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": "ensemble",
        "soundwatch_version": soundwatch.__version__, "sample_rate": rates[0],
        "machine": machine, "channel": channel, "members": names,
        "combine": detector.combine,
        "weights": None if detector.weights is None else [float(w) for w in detector.weights],
        "normalize": detector.normalize,
        "threshold": {"value": float(detector.threshold_), "policy": "gamma"},
        "train_scores": SCORES_FILE,
        "detector": {"name": detector.name, "params": detector.get_params(deep=False)},
    }
    write_json(out / MANIFEST_FILE, json.loads(json.dumps(manifest, default=str)))
    return out, rates[0], seconds


def export_detector(
    detector: Any,
    directory: str | Path,
    *,
    machine: str | None = None,
    verify: bool = True,
    opset: int | None = None,
    channel: int | str | None = None,
) -> Path:
    """Export a fitted detector for :func:`soundwatch.runtime.load`.

    A composed detector gives ``model.onnx`` (waveform in, the scorer's view items out),
    ``scorer.npz``, ``train_scores.npy`` and ``manifest.json`` (sample rate, front-end and
    its parameters, windows, detector parameters, soundwatch version, opset, threshold);
    an ensemble one such folder per member (``member_<i>/``) plus its own manifest
    (combination, normalisation, threshold) and training scores.

    Args:
        detector: A fitted composed detector or ensemble of them.
        directory: Output folder (created).
        machine: The machine type, recorded in the manifest.
        verify: Score a few synthetic waveforms with torch and with the export and refuse
            the export when they differ by more than :data:`PARITY_RTOL` (relative) or give
            other decisions; the result is recorded in the manifest.
        opset: ONNX opset (default 17).
        channel: The audio channel the runtime reads from files (recorded in the
            manifest); default: :class:`~soundwatch.training.context.RunContext`'s (the
            first); :func:`~soundwatch.export.run.export_run` gives the run's.

    Returns:
        The export folder.

    Raises:
        DetectorError: Not fitted, not exportable (which part, why), or the export's scores
            differ from the detector's.
        ConfigError: onnx or onnxruntime missing (with the install hint).
    """
    from soundwatch.atomic import write_json
    from soundwatch.detectors.ensemble import EnsembleDetector
    from soundwatch.export.hints import require
    from soundwatch.runtime.manifest import MANIFEST_FILE

    require("onnx", "onnxruntime")
    _check_fitted(detector)
    reason = export_reason(detector)
    if reason is not None:
        raise DetectorError(f"detector {detector.name}", f"cannot be exported: {reason}")
    if channel is None:
        channel = RunContext().channel  # no context given: the default (first) channel
    if isinstance(detector, EnsembleDetector):
        out, sr, seconds = _export_ensemble(detector, directory, machine, opset, channel)
    else:
        out, sr, seconds = _export_composed(detector, directory, machine, opset, channel)
    if verify:
        check = verify_export(detector, out, _probe_signals(sr, seconds), sr)
        manifest = json.loads((out / MANIFEST_FILE).read_text(encoding="utf-8"))
        manifest["verified"] = check
        write_json(out / MANIFEST_FILE, manifest)
        if check["max_rel_diff"] > PARITY_RTOL or not check["decisions_equal"]:
            (out / MANIFEST_FILE).unlink()
            raise DetectorError(f"detector {detector.name}", "the ONNX export scores differ "
                                f"from torch (max relative difference "
                                f"{check['max_rel_diff']:.2e}); export refused")
    return out
