"""The scoring graph: what ``score`` computes with, stage by stage, is its ``forward``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soundwatch.detectors import create_detector, get_detector_class
from soundwatch.detectors.graph import ScoringGraph, feature_channels, feature_rows
from soundwatch.detectors.pooling import pool

SR = 16000


def _signal(rng: np.random.Generator, anomaly: bool, seconds: float) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    x = 0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.05 * rng.standard_normal(len(t))
    if anomaly:
        x += 0.15 * np.sin(2 * np.pi * 3100.0 * t)
    return x.astype(np.float32)


def _fitted(name: str, toy_set, **extra):
    params = {**get_detector_class(name).test_params, **extra}
    return create_detector(name, **params).fit(toy_set.train)


@pytest.mark.parametrize(("name", "extra"), [
    ("knn", {}),  # classical: front-end rows, mean-std pooled
    ("ae", {}),  # rows encoder (stacked frames), residual view
    ("cnn1d", {"window_frames": 8}),  # windowed encoder, embeddings, several windows a clip
])
def test_forward_is_what_score_computes(name, extra, toy_set):
    det = _fitted(name, toy_set, **extra)
    graph = det.scoring_graph()
    assert isinstance(graph, ScoringGraph) and graph.frontend is det.make_frontend()
    rng = np.random.default_rng(0)
    signals = [_signal(rng, i % 2 == 1, s) for i, s in enumerate((1.0, 1.0, 1.3))]
    # library: features (cached between stages), then items and the view a batch at a time
    feats = det.signal_features(signals, SR)
    library = det.view_items(feats)
    assert len(library) == len(signals)
    for signal, items in zip(signals, library, strict=True):
        with torch.inference_mode():  # the composition, one clip per call
            whole = graph(torch.from_numpy(signal)[None])[0].double().numpy()
        assert whole.shape == items.shape and len(items) >= 1
        np.testing.assert_allclose(whole, items, rtol=1e-5, atol=1e-6)
    equal = [f for f, s in zip(feats, signals, strict=True) if len(s) == len(signals[0])]
    with torch.inference_mode():  # a batch of equal-length clips gives each clip's items
        batch = graph.view(torch.from_numpy(np.stack(equal))).double().numpy()
    np.testing.assert_allclose(batch, np.stack(library[: len(equal)]), rtol=1e-5, atol=1e-6)
    pooled = [graph.pool(items) for items in library]
    expected = det.pooling if graph.view_name == "vectors" else "none"
    for got, items in zip(pooled, library, strict=True):
        np.testing.assert_array_equal(got, pool(expected, items, **graph.pooling[1]))
    np.testing.assert_allclose(det.scorer_.score(pooled), det.score_signals(signals, SR))


def test_the_export_traces_the_scoring_graph(toy_set):
    pytest.importorskip("onnx", reason="the [export] extra (onnx) is not installed")
    from soundwatch.export.detector import detector_graph

    det = _fitted("cnn1d", toy_set, window_frames=8)
    graph = detector_graph(det)
    assert type(graph) is ScoringGraph
    assert graph.frontend is det.make_frontend("cpu")
    assert graph.model is det.network_
    assert (graph.window, graph.hop, graph.pooling) == (
        det.scoring_graph().window, det.scoring_graph().hop, det.scoring_graph().pooling)


def test_rows_and_channels_read_numpy_and_torch_alike():
    feats = np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5)  # [B, bins, T]
    for layout, shape in (("bins_time", (2, 5, 3)), ("rows", (2, 3, 5))):
        rows = feature_rows(feats, layout)
        assert rows.shape == shape and np.shares_memory(rows, feats)
        np.testing.assert_array_equal(feature_rows(torch.from_numpy(feats), layout).numpy(), rows)
    wave = np.zeros((2, 7), dtype=np.float32)
    assert feature_rows(wave, "waveform").shape == (2, 7, 1)
    assert feature_channels(wave).shape == (2, 1, 7)
    assert feature_channels(torch.from_numpy(feats)).shape == (2, 3, 5)
