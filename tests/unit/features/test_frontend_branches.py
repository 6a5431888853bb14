"""Each front-end's eager branch (what scoring runs) and traced branch (what ONNX holds) agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soundwatch.features import FRONTENDS, create_frontend
from soundwatch.features.frontends import NOT_EXPORTABLE

SR = 16000

CASES = [
    ("waveform", {}),
    ("waveform", {"window": 4000, "hop": 1000}),
    ("waveform", {"length": 20000, "window": 1000, "standardize": False, "pad": 7}),
    ("waveform", {"length": 9000}),
    ("stft", {"power": 1.0}),
    ("stft", {"power": 2.0, "n_fft": 256}),
    ("stft", {"power": 0.5, "n_fft": 400, "hop_length": 160, "win_length": 320}),
    ("logmel", {}),
    ("logmel", {"n_fft": 400, "hop_length": 160, "win_length": 320, "n_mels": 40,
                "pad_mode": "reflect", "top_db": 80.0}),  # the conv DFT
    ("logmel", {"center": False, "htk": True, "mel_norm": None}),
    ("logmel_seed", {}),
    ("frames_dcase", {}),
    ("frames", {"n_fft": 509, "hop_length": 200, "n_mels": 32, "n_frames": 3}),  # a prime
]


def _signals(n: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    x = [0.3 * np.sin(2 * np.pi * (440 + 100 * b) * t) + 0.05 * rng.standard_normal(n)
         for b in range(batch)]
    return torch.from_numpy(np.stack(x).astype(np.float32))


def test_every_exportable_kind_is_covered():
    kinds = {create_frontend(name, **params).name for name, params in CASES}
    built_in = {name for name in FRONTENDS.names()  # plug-ins registered by other tests aside
                if FRONTENDS.get(name).__module__ == "soundwatch.features.frontends"}
    assert kinds == built_in - set(NOT_EXPORTABLE)


@pytest.mark.parametrize(("name", "params"), CASES)
def test_traced_branch_gives_the_eager_numbers(name, params):
    fe = create_frontend(name, **params)
    assert not fe.traced()
    for n in (12000, 33333):
        x = _signals(n, seed=n)
        with torch.inference_mode():
            eager = fe(x)
            fe.traceable = True
            traced = fe(x)
            fe.traceable = False
        assert traced.shape == eager.shape == (2, *fe.output_shape(n))
        if fe.layout == "waveform":
            torch.testing.assert_close(traced, eager, rtol=1e-5, atol=1e-5)
        elif name.startswith("stft"):  # magnitudes: relative to the largest
            scale = float(eager.abs().max())
            torch.testing.assert_close(traced, eager, rtol=1e-4, atol=2e-5 * scale)
        else:  # log-mel dB (or 0..1 for the min-max scaled seed preset)
            rms = float((traced - eager).square().mean().sqrt())
            assert rms < (1e-5 if fe.config.normalize == "minmax" else 1e-3), rms


@pytest.mark.parametrize("dft", ["fft2", "conv", "stft"])
def test_every_dft_operator_gives_the_eager_logmel(dft):
    from soundwatch.export.frontend import frontend_graph

    params = {"n_fft": 256, "hop_length": 128, "n_mels": 32}
    fe = frontend_graph("logmel", params, dft=dft)
    x = _signals(12345)
    with torch.inference_mode():
        eager = fe(x)
        fe.traceable = True
        traced = fe(x)
    assert float((traced - eager).square().mean().sqrt()) < 1e-3


def test_the_onnx_exporter_switches_to_the_traced_branch(monkeypatch):
    fe = create_frontend("logmel")
    assert not fe.traced()
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    assert fe.traced()


def test_a_filter_cannot_be_traced():
    from soundwatch.errors import ConfigError

    fe = create_frontend("waveform", high_hz=4000.0)
    assert "band-pass filter" in fe.export_reason()
    fe.traceable = True
    with pytest.raises(ConfigError, match="cannot be traced"):
        fe(_signals(4000))


def test_stacked_frames_of_a_clip_shorter_than_n_frames_agree():
    """Fewer log-mel frames than ``n_frames``: no vector in either branch (a negative slice
    end in the traced branch once counted from the end and gave rows)."""
    fe = create_frontend("frames", n_fft=256, hop_length=128, n_mels=16, n_frames=5)
    for n in (256, 384, 512, 640):  # 3 to 6 frames with centring
        x = _signals(n)
        with torch.inference_mode():
            eager = fe(x)
            fe.traceable = True
            traced = fe(x)
            fe.traceable = False
        assert traced.shape == eager.shape == (2, *fe.output_shape(n)), n
        if eager.numel():
            assert float((traced - eager).abs().max()) < 1e-3
