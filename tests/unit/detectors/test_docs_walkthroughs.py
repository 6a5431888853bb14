"""The walkthroughs of docs/detectors.md run as written (a detector, a front-end, a scorer)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "detectors.md"


def _blocks(marker: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"<!-- walkthrough: {marker} -->")
    end = text.find("<!-- walkthrough:", start + 10)
    section = text[start : end if end > 0 else None]
    section = section.split("\n## Training engine")[0]
    return "\n\n".join(re.findall(r"```python\n(.*?)```", section, flags=re.S))


def _run_as_module(code: str, name: str) -> None:
    """Execute ``code`` as an importable module (dataclasses need their module registered)."""
    import sys
    import types

    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(code, str(DOC), "exec"), module.__dict__)


@pytest.fixture()
def toy(toy_set):
    return toy_set


def test_add_a_detector_walkthrough(toy, tmp_path):
    code = _blocks("add-detector")
    assert "register_encoder" in code and "register_detector" in code
    _run_as_module(code, "walkthrough_detector")
    from soundwatch.detectors import Detector, create_detector, list_detectors
    from soundwatch.detectors.encoders import list_encoders

    assert "tinyconv" in list_encoders()
    assert "tinyconv-ae" in list_detectors()
    other = create_detector("cnn1d", encoder="tinyconv")  # any composition can use it
    assert other.part("encoder").name == "tinyconv" and other.encoder_params is None
    det = create_detector("tinyconv-ae", training__epochs=1).fit(toy.train)
    scores = det.score(toy.test)
    assert scores.shape == (len(toy.test),) and np.all(np.isfinite(scores))
    # the same network with another scorer of an offered view
    assert np.all(np.isfinite(create_detector("tinyconv-ae", training__epochs=1, scorer="mse")
                              .fit(toy.train).score(toy.test)))
    loaded = Detector.load(det.save(tmp_path / "tiny"))
    np.testing.assert_array_equal(loaded.score(toy.test), scores)


def test_add_a_frontend_walkthrough(toy):
    code = _blocks("add-frontend")
    assert "register_frontend" in code
    _run_as_module(code, "walkthrough_frontend")
    from soundwatch.detectors import create_detector
    from soundwatch.features import create_frontend, list_frontends

    assert "envelope" in list_frontends()
    fe = create_frontend("envelope", frame=256)
    assert tuple(fe(np.zeros((2, 16000), np.float32)).shape) == (2, 1, 62)
    det = create_detector("mahalanobis", frontend="envelope").fit(toy.train)
    assert np.all(np.isfinite(det.score(toy.test)))


def test_add_a_scorer_walkthrough(toy, tmp_path):
    code = _blocks("add-scorer")
    assert "register_scorer" in code
    _run_as_module(code, "walkthrough_scorer")
    from soundwatch.detectors import Detector, create_detector
    from soundwatch.detectors.scorers import list_scorers
    from soundwatch.errors import DetectorError

    assert "centroid" in list_scorers()
    det = create_detector("mahalanobis", scorer="centroid", scorer__power=2.0).fit(toy.train)
    scores = det.score(toy.test)
    assert scores.shape == (len(toy.test),) and np.all(scores >= 0)
    labels = np.array([c.label for c in toy.test])
    assert scores[labels == 1].mean() > scores[labels == 0].mean()  # it does detect
    assert det.train_scores_.shape == (len(toy.train),)  # out of fold, from the detector
    loaded = Detector.load(det.save(tmp_path / "centroid"))
    np.testing.assert_array_equal(loaded.score(toy.test), scores)
    with pytest.raises(DetectorError, match="power"):
        create_detector("mahalanobis", scorer="centroid", scorer__power=0)
    with pytest.raises(DetectorError, match="needs the 'residual' view"):
        create_detector("mahalanobis", scorer="mse")  # a view the composition lacks
