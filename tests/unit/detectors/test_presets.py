"""Every configs/*.yaml preset names a registered detector with valid parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from soundwatch.detectors import create_detector
from soundwatch.pipeline import resolve_config

CONFIGS = sorted((Path(__file__).resolve().parents[3] / "src/soundwatch/configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_preset_creates_a_valid_detector(path):
    config = yaml.safe_load(path.read_text())
    if "detector" not in config:
        pytest.skip("not a detector preset")
    resolve_config(None, config=path)  # what `soundwatch train --config` accepts
    det = create_detector(config["detector"], **(config.get("params") or {}))
    assert det.name == config["detector"]
    if hasattr(det, "make_frontend"):
        det.make_frontend()  # front-end parameters are valid too


def test_the_core_presets_exist():
    names = {p.stem for p in CONFIGS}
    assert {"ae", "vae1d", "unet1d-ae", "gmm", "knn", "mahalanobis"} <= names
