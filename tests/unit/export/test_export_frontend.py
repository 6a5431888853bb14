"""The ONNX front-ends give soundwatch's features (log-mel within 1e-3 dB RMS)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the [export] extra (onnx) is not installed")
ort = pytest.importorskip("onnxruntime", reason="the [export] extra (onnxruntime) is missing")

import torch  # noqa: E402

from soundwatch.errors import ConfigError  # noqa: E402
from soundwatch.export.frontend import (  # noqa: E402
    export_frontend,
    frontend_graph,
    not_exportable_reason,
)
from soundwatch.features import create_frontend  # noqa: E402

SR = 16000


def _signals(n: int, batch: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    out = []
    for b in range(batch):
        x = 0.3 * np.sin(2 * np.pi * (440 + 100 * b) * t) + 0.05 * rng.standard_normal(n)
        x[n // 3 : n // 3 + 400] += 0.5 * rng.standard_normal(400)  # a click
        out.append(x)
    return np.stack(out).astype(np.float32)


def _session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


CASES = [
    ("logmel", {}),
    ("logmel", {"n_mels": 64, "n_fft": 512, "hop_length": 256, "fmin": 50.0, "fmax": 7000.0}),
    ("logmel", {"n_fft": 400, "hop_length": 160, "win_length": 320, "n_mels": 40,
                "pad_mode": "reflect", "top_db": 80.0}),  # conv DFT path
    ("logmel_seed", {}),
    ("logmel", {"center": False, "htk": True, "mel_norm": None}),
]


@pytest.mark.parametrize(("name", "params"), CASES)
def test_onnx_logmel_matches_within_1e3_db_rms(name, params, tmp_path):
    path = export_frontend(name, tmp_path / "fe.onnx", params)
    session = _session(path)
    fe = create_frontend(name, **params)
    db_scale = 1.0 if fe.config.normalize == "none" else None
    for n in (16000, 24001, 160000):  # lengths other than the tracing example's
        x = _signals(n)
        got = session.run(None, {"waveform": x})[0]
        with torch.no_grad():
            ref = fe(torch.from_numpy(x)).numpy()
        assert got.shape == ref.shape
        rms = float(np.sqrt(np.mean((got - ref) ** 2)))
        if db_scale is not None:
            assert rms < 1e-3, f"{name} {params} n={n}: {rms:.2e} dB RMS"
        else:  # min-max scaled 0..1: compare against 1e-3 dB of the 20*log10 range
            assert rms < 1e-5
        assert np.isfinite(got).all()


@pytest.mark.parametrize(("name", "params"), [
    ("frames_dcase", {}), ("stft", {"power": 1.0}), ("stft", {"power": 2.0, "n_fft": 256}),
    ("waveform", {}), ("waveform", {"window": 4000, "hop": 1000}),
    ("waveform", {"length": 20000, "window": 1000, "standardize": False}),
])
def test_other_exportable_frontends_match(name, params, tmp_path):
    session = _session(export_frontend(name, tmp_path / "fe.onnx", params))
    fe = create_frontend(name, **params)
    for n in (16000, 33333):
        x = _signals(n, seed=n)
        got = session.run(None, {"waveform": x})[0]
        with torch.no_grad():
            ref = fe(torch.from_numpy(x)).numpy()
        assert got.shape == ref.shape
        scale = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(got, ref, atol=2e-5 * scale, rtol=1e-4)


@pytest.mark.parametrize("dft", ["fft2", "conv", "stft"])
@pytest.mark.parametrize("params", [
    {"n_fft": 256, "hop_length": 128, "n_mels": 32},
    {"n_fft": 400, "hop_length": 150, "n_mels": 32},  # hop does not divide n_fft: a Gather
])
def test_every_dft_operator_gives_the_logmel(dft, params, tmp_path):
    fe = create_frontend("logmel", **params)
    session = _session(export_frontend("logmel", tmp_path / "fe.onnx", params, dft=dft))
    x = _signals(12345)
    with torch.no_grad():
        ref = fe(torch.from_numpy(x)).numpy()
        traced = frontend_graph("logmel", params, dft=dft)
        traced.traceable = True  # the branch the export traces, run eagerly
        eager = traced(torch.from_numpy(x)).numpy()
    got = session.run(None, {"waveform": x})[0]
    tol = 1e-3 if dft != "stft" or params["n_fft"] == 256 else 3e-3  # ORT's direct DFT
    for out in (eager, got):
        assert out.shape == ref.shape
        assert float(np.sqrt(np.mean((out - ref) ** 2))) < tol


def test_auto_dft_choice():
    assert frontend_graph("logmel", {"n_fft": 1024}).dft == "fft2"
    assert frontend_graph("logmel", {"n_fft": 509, "n_mels": 32}).dft == "conv"  # a prime
    with pytest.raises(ConfigError, match="dft"):
        frontend_graph("logmel", {}, dft="fast")


@pytest.mark.parametrize(("name", "params", "part"), [
    ("cqt", {}, "CQT"),
    ("waveform_seed", {}, "band-pass filter"),
    ("waveform", {"high_hz": 4000.0}, "band-pass filter"),
])
def test_non_exportable_frontends_say_why(name, params, part, tmp_path):
    assert part in not_exportable_reason(name, params)
    with pytest.raises(ConfigError, match="cannot be exported to ONNX"):
        export_frontend(name, tmp_path / "fe.onnx", params)
