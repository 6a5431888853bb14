"""A plugin's own Detector subclass is saved and loaded back like the built-in ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from soundwatch.detectors import Detector
from soundwatch.detectors.base import read_npz, write_npz
from soundwatch.errors import DetectorError


class LoudnessDetector(Detector):
    """Scores a clip by how far its RMS level is from the training clips' mean level."""

    def __init__(self, *, scale: float = 1.0) -> None:
        self.scale = scale

    def score_signals(self, signals, sr, context=None):  # noqa: D102
        self._check_fitted()
        rms = np.array([np.sqrt(np.mean(np.square(s))) for s in signals], dtype=np.float64)
        return self.scale * np.abs(rms - self.level_)

    def fit(self, clips, labels=None, context=None):  # noqa: D102
        raise NotImplementedError  # not needed here: the level is set directly

    def score(self, clips, context=None):  # noqa: D102
        raise NotImplementedError

    def _save_state(self, directory: Path) -> dict[str, Any]:
        write_npz(directory / "state.npz", {"level": np.array([self.level_])})
        return {"threshold": float(self.threshold_)}

    def _load_state(self, directory: Path, meta: dict[str, Any]) -> None:
        self.level_ = float(read_npz(directory / "state.npz")["level"][0])
        self.threshold_ = float(meta["threshold"])
        self.train_scores_ = np.zeros(1)


def test_a_plugin_detector_subclass_loads_back(tmp_path):
    det = LoudnessDetector(scale=2.0)
    det.level_, det.threshold_, det.train_scores_ = 0.1, 0.5, np.zeros(1)
    loaded = Detector.load(det.save(tmp_path / "d"))
    assert type(loaded) is LoudnessDetector and loaded.scale == 2.0
    signal = np.full(100, 0.3, dtype=np.float32)
    np.testing.assert_allclose(loaded.score_signals([signal], 16000), [0.4], rtol=1e-6)


def test_an_unknown_class_lists_the_known_ones(tmp_path):
    import json

    det = LoudnessDetector()
    det.level_, det.threshold_, det.train_scores_ = 0.1, 0.5, np.zeros(1)
    path = det.save(tmp_path / "d") / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "class": "NoSuchDetector"}))
    with pytest.raises(DetectorError, match="unknown detector class 'NoSuchDetector' "
                       r"\(known: .*ComposedDetector.*LoudnessDetector"):
        Detector.load(path.parent)
