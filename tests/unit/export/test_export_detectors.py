"""Every exportable registered detector scores the same through soundwatch.runtime as in torch."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the [export] extra (onnx) is not installed")
pytest.importorskip("onnxruntime", reason="the [export] extra (onnxruntime) is not installed")

import soundwatch.runtime  # noqa: E402
from soundwatch.decisions import Decider  # noqa: E402
from soundwatch.detectors import create_detector, list_detectors  # noqa: E402
from soundwatch.detectors.registry import preset_test_params  # noqa: E402
from soundwatch.errors import DetectorError  # noqa: E402
from soundwatch.export.detector import (  # noqa: E402
    export_detector,
    export_reason,
    parity_scale,
)

NAMES = list_detectors()
#: Registered presets that must export (a regression in one of them fails here).
MUST_EXPORT = {"ae", "cnn1d", "gmm", "knn", "mahalanobis", "unet1d-ae"}
#: Exportable when registered (added after the core presets).
EXPORT_IF_PRESENT = {"knn-frames", "embedding", "ensemble"}
#: Variants of non-exportable presets that export once the blocking part is swapped.
VARIANTS = {"vae1d": {"scorer": "mse"}, "wavevision": {"encoder__input": "logmel"}}
_FITTED: dict[tuple[str, str], object] = {}


def _fitted(name: str, toy, **extra):
    key = (name, json.dumps(extra, sort_keys=True))
    if key not in _FITTED:
        det = create_detector(name, **{**preset_test_params(name), **extra})
        if det.supervised:
            det.fit(toy.train_labelled, np.array([c.label for c in toy.train_labelled]))
        else:
            det.fit(toy.train)
        _FITTED[key] = det
    return _FITTED[key]


def _check_parity(det, toy, out):
    ref = det.score(toy.test)
    runtime = soundwatch.runtime.load(out)
    got = runtime.score([c.path for c in toy.test])
    # 1e-4 relative to the score, or to the training scores' spread for scores near zero
    # (an ensemble's z-scores cross it)
    rel = np.abs(got - ref) / parity_scale(ref, det.train_scores_)
    assert rel.max() <= 1e-4, (rel.max(), got, ref)
    if not any(np.abs(ref) < np.std(det.train_scores_)):
        np.testing.assert_allclose(got, ref, rtol=1e-4)  # plain relative where it applies
    decider = Decider.from_detector(det)
    np.testing.assert_array_equal(runtime.predict([c.path for c in toy.test]),
                                  decider.decide(ref))
    assert runtime.threshold == pytest.approx(det.threshold_)
    np.testing.assert_array_equal(runtime.percentile(got), decider.percentile(ref))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["verified"]["max_rel_diff"] <= 1e-4
    assert manifest["verified"]["decisions_equal"]
    assert manifest["detector"]["name"] == det.name
    assert manifest["sample_rate"] == 16000


def test_the_core_presets_are_exportable():
    missing = MUST_EXPORT - set(NAMES)
    assert not missing, f"presets gone from the registry: {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_registered_detector_exports_with_parity_or_says_why(name, export_toy_set, tmp_path):
    det = _fitted(name, export_toy_set)
    reason = export_reason(det)
    if name in MUST_EXPORT | EXPORT_IF_PRESENT:
        assert reason is None, reason
    if reason is not None:
        assert "\n" not in reason and len(reason) > 20
        with pytest.raises(DetectorError, match="cannot be exported"):
            export_detector(det, tmp_path / name)
        return
    out = export_detector(det, tmp_path / name, machine="toy")
    _check_parity(det, export_toy_set, out)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variants_of_blocked_presets_export(name, export_toy_set, tmp_path):
    if name not in NAMES:
        pytest.skip(f"{name} is not registered")
    blocked = _fitted(name, export_toy_set)
    assert export_reason(blocked) is not None  # the preset itself is blocked ...
    det = _fitted(name, export_toy_set, **VARIANTS[name])
    assert export_reason(det) is None  # ... the variant is not
    _check_parity(det, export_toy_set, export_detector(det, tmp_path / name))


def test_export_of_an_unfitted_detector_raises(tmp_path):
    with pytest.raises(DetectorError, match="not fitted"):
        export_detector(create_detector("mahalanobis"), tmp_path / "x")


def test_a_differing_export_is_refused(export_toy_set, tmp_path, monkeypatch):
    """The built-in verification catches an export that silently differs."""
    import soundwatch.export.detector as mod

    det = _fitted("mahalanobis", export_toy_set)
    real = mod.detector_graph

    def skewed(detector):
        graph = real(detector)
        forward = graph.forward
        graph.forward = lambda x: forward(x * 1.01)  # a 1 % gain error
        return graph

    monkeypatch.setattr(mod, "detector_graph", skewed)
    with pytest.raises(DetectorError, match="differ"):
        export_detector(det, tmp_path / "bad")
    assert not (tmp_path / "bad" / "manifest.json").exists()


def test_ensemble_export_scores_without_torch(export_toy_set, tmp_path):
    import subprocess
    import sys
    import textwrap

    if "ensemble" not in NAMES:
        pytest.skip("no ensemble detector registered")
    det = _fitted("ensemble", export_toy_set)
    out = export_detector(det, tmp_path / "ensemble")
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        f"member_{i}" for i in range(len(det.members_))]
    paths = [str(c.path) for c in export_toy_set.test]
    code = textwrap.dedent(f"""
        import json, sys
        import soundwatch.runtime
        det = soundwatch.runtime.load({str(out)!r})
        print(json.dumps(det.score({paths!r}).tolist()))
        assert "torch" not in sys.modules
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    ref = det.score(export_toy_set.test)
    rel = np.abs(np.array(json.loads(res.stdout)) - ref) / parity_scale(ref, det.train_scores_)
    assert rel.max() <= 1e-4


def test_a_front_end_inside_an_encoder_exports_through_its_traced_branch(export_toy_set,
                                                                          tmp_path):
    # soundwatch-machines computes its log-mel with the library's LogMel module inside the
    # network: the exporter traces that module's ONNX branch too (numpy's magnitude, the
    # eager branch, cannot be traced)
    det = _fitted("embedding", export_toy_set, encoder="soundwatch-machines",
                  frontend_params={"window": None, "hop": None, "pad": 0},
                  window_frames=8000, score_hop=4000)
    assert export_reason(det) is None
    _check_parity(det, export_toy_set, export_detector(det, tmp_path / "machines"))
