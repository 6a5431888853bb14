"""Every shipped config (configs/*.yaml) names a registered detector with valid parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from soundwatch.detectors import create_detector, list_detectors
from soundwatch.pipeline import make_detector, resolve_config

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


PARTS = ("frontend", "encoder", "objective", "pooling", "scorer")


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.stem in list_detectors()],
                         ids=lambda p: p.stem)
def test_a_config_named_after_a_detector_preset_is_that_detector(path):
    # one name, one detector: `--config ae` once scored by selective Mahalanobis, `-d ae` by MSE
    preset = create_detector(path.stem)
    configured = make_detector(resolve_config(None, config=path))
    assert configured.name == path.stem
    assert {p: getattr(configured, p) for p in PARTS} == {p: getattr(preset, p) for p in PARTS}


def test_ae_mahalanobis_is_ae_with_the_selective_mahalanobis_scorer():
    ae, maha = create_detector("ae"), create_detector("ae-mahalanobis")
    assert (ae.scorer, maha.scorer) == ("mse", "selective_mahalanobis")
    assert ({k: v for k, v in ae.get_params().items() if k != "scorer"}
            == {k: v for k, v in maha.get_params().items() if k != "scorer"})
