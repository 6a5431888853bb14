import json
import os
import subprocess
import sys

import librosa
import numpy as np
import pytest
import torch

from soundwatch.audio import load
from soundwatch.errors import ConfigError
from soundwatch.features import FrontEnd, create_frontend, describe_frontends, list_frontends

SR = 16000


def librosa_logmel(y: np.ndarray, **kw) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=y, sr=SR, n_fft=1024, hop_length=512, n_mels=kw.get("n_mels", 128),
        power=kw.get("power", 2.0))
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=kw.get("top_db"))


def ours(fe: FrontEnd, y: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return fe(torch.from_numpy(y)[None])[0].numpy()


def rms(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.sqrt(np.mean((a.astype(np.float64) - b) ** 2)))


def test_logmel_matches_librosa_on_real_clips(real_clips):
    fe = create_frontend("logmel")
    for path in real_clips:
        y = load(path, sr=SR)
        assert rms(ours(fe, y), librosa_logmel(y)) < 1e-3, path


def test_logmel_matches_librosa_on_synthetic_clip(tone_noise):
    y = tone_noise(3.3, 440.0)
    fe = create_frontend("logmel")
    assert rms(ours(fe, y), librosa_logmel(y)) < 1e-3


def test_logmel_top_db_matches_power_to_db_default(tone_noise):
    y = tone_noise(1.0, 3000.0, noise=0.0005)
    fe = create_frontend("logmel", top_db=80.0)
    ref = librosa_logmel(y, top_db=80.0)
    assert ref.min() == pytest.approx(ref.max() - 80.0, abs=1e-3)  # clipping is active
    assert rms(ours(fe, y), ref) < 1e-3


def test_logmel_seed_preset_is_minmax_of_20log10_magnitude_mel(tone_noise):
    y = tone_noise(2.0, 700.0)
    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=1024, hop_length=512, n_mels=64,
                                         power=1.0)
    db = 20 * np.log10(np.maximum(mel, 1e-10))
    ref = (db - db.min()) / (db.max() - db.min())
    out = ours(create_frontend("logmel_seed"), y)
    assert out.shape == (64, 1 + y.size // 512)
    assert out.min() == 0.0 and out.max() == pytest.approx(1.0)
    assert np.abs(out - ref).max() < 1e-4


def test_stft_power_and_magnitude_match_librosa(tone_noise):
    y = tone_noise(1.0, 1234.0)
    mag = np.abs(librosa.stft(y, n_fft=1024, hop_length=512))
    out_mag = ours(create_frontend("stft", power=1.0), y)
    out_pow = ours(create_frontend("stft"), y)
    np.testing.assert_allclose(out_mag, mag, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out_pow, mag**2, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("name", list_frontends())
@pytest.mark.parametrize("num_samples", [8000, 16001, 20000])
def test_output_shape_matches_actual_output(name, num_samples):
    fe = create_frontend(name)
    x = torch.randn(2, num_samples)
    with torch.inference_mode():
        out = fe(x)
    assert tuple(out.shape) == (2, *fe.output_shape(num_samples))
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_output_shape_with_windows_and_fixed_length():
    fe = create_frontend("waveform", length=10000, window=3000, hop=1000)
    out = fe(torch.randn(3, 7000))
    assert tuple(out.shape) == (3, *fe.output_shape(7000)) == (3, 8, 3000)


def _hash_in_subprocess(name: str, params: dict) -> str:
    # the hash lives in the torch-free configs module (FrontEnd.config_hash delegates to it),
    # so the child process stays cheap
    code = (
        "import json, sys; from soundwatch.features.configs import config_hash, make_config; "
        "print(config_hash(*make_config(sys.argv[1], **json.loads(sys.argv[2]))))"
    )
    out = subprocess.run([sys.executable, "-c", code, name, json.dumps(params)],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "123"})
    return out.stdout.strip()


def test_config_hash_is_stable_across_processes():
    fe = create_frontend("logmel", n_mels=64)
    assert _hash_in_subprocess("logmel", {"n_mels": 64}) == fe.config_hash()
    assert _hash_in_subprocess("logmel_seed", {}) == create_frontend("logmel_seed").config_hash()
    assert len(fe.config_hash()) == 64


def test_config_hash_differs_between_configs_and_kinds():
    hashes = {
        create_frontend("logmel").config_hash(),
        create_frontend("logmel", n_mels=64).config_hash(),
        create_frontend("logmel", hop_length=256).config_hash(),
        create_frontend("logmel_seed").config_hash(),
        create_frontend("frames").config_hash(),
        create_frontend("stft").config_hash(),
        create_frontend("waveform").config_hash(),
        create_frontend("waveform_seed").config_hash(),
        create_frontend("cqt").config_hash(),
    }
    assert len(hashes) == 9
    # the same parameters give the same key, whatever name or value spelling reached them
    assert (create_frontend("logmel", n_mels="128").config_hash()
            == create_frontend("logmel").config_hash())
    seed = create_frontend("logmel_seed")
    plain = create_frontend("logmel", n_mels=64, power=1, log_mult=20, normalize="minmax")
    assert seed.config_hash() == plain.config_hash()


def test_unknown_name_and_parameters_raise_config_error():
    with pytest.raises(ConfigError, match="unknown front-end 'mfcc'"):
        create_frontend("mfcc")
    with pytest.raises(ConfigError, match="unknown parameter"):
        create_frontend("logmel", n_mel=64)
    with pytest.raises(ConfigError, match="expected int"):
        create_frontend("logmel", n_mels=64.5)
    with pytest.raises(ConfigError):
        create_frontend("logmel", n_mels=0)
    with pytest.raises(ConfigError):
        create_frontend("logmel", fmax=9000)
    with pytest.raises(ConfigError):
        create_frontend("waveform", low_hz=5000, high_hz=4000)
    with pytest.raises(ConfigError):
        create_frontend("logmel", normalize="zscore")


def test_params_from_strings_are_converted():
    fe = create_frontend("logmel", n_mels="64", fmax="none", center="false", power="1")
    assert fe.config.n_mels == 64 and fe.config.fmax is None
    assert fe.config.center is False and fe.config.power == 1.0


def test_list_and_describe_frontends():
    names = list_frontends()
    assert names == sorted(names)
    assert {"waveform", "stft", "logmel", "cqt", "frames", "logmel_seed"} <= set(names)
    assert set(describe_frontends()) == set(names)


def test_frontend_is_module_with_buffers_and_sr():
    fe = create_frontend("logmel")
    assert isinstance(fe, torch.nn.Module)
    assert "mel_basis" in dict(fe.named_buffers())
    assert fe.sr == 16000 and create_frontend("cqt").sr == 8000
    mel = librosa.filters.mel(sr=SR, n_fft=1024, n_mels=128)
    np.testing.assert_array_equal(fe.mel_basis.numpy(), mel)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_logmel_on_cuda_matches_cpu(tone_noise):
    y = torch.from_numpy(tone_noise(1.0))[None]
    fe = create_frontend("logmel")
    cpu = fe(y)
    gpu = fe.to("cuda")(y.cuda()).cpu()
    assert rms(gpu.numpy(), cpu.numpy()) < 1e-3


# ----------------------------------------------------------------------------- waveform


def test_waveform_pad_appends_zeros_never_repeats():
    x = torch.arange(1, 1001, dtype=torch.float32)[None]
    out = create_frontend("waveform", standardize=False, length=1500)(x)[0]
    assert torch.equal(out[:1000], x[0])
    assert torch.count_nonzero(out[1000:]) == 0


def test_waveform_crop_keeps_the_start():
    x = torch.arange(1, 1001, dtype=torch.float32)[None]
    out = create_frontend("waveform", standardize=False, length=300)(x)[0]
    assert torch.equal(out, x[0, :300])


def test_waveform_standardizes_each_clip():
    x = torch.stack([torch.randn(4000) * 5 + 3, torch.randn(4000) * 0.1 - 1])
    out = create_frontend("waveform")(x)
    torch.testing.assert_close(out.mean(dim=1), torch.zeros(2), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.std(dim=1, unbiased=False), torch.ones(2), atol=1e-3, rtol=0)


def test_waveform_windows_match_manual_slices():
    x = torch.randn(2, 1000)
    out = create_frontend("waveform", standardize=False, window=300, hop=200)(x)
    assert out.shape == (2, 4, 300)
    for k in range(4):
        assert torch.equal(out[:, k], x[:, 200 * k:200 * k + 300])


def test_waveform_pad_centres_windows():
    x = torch.randn(1, 1000)
    fe = create_frontend("waveform", standardize=False, window=200, hop=200, pad=100)
    out = fe(x)
    assert out.shape[1:] == fe.output_shape(1000) == (6, 200)
    # window k is centred on sample 200 k: its first half is zeros for k = 0
    assert torch.count_nonzero(out[0, 0, :100]) == 0
    assert torch.equal(out[0, 0, 100:], x[0, :100])
    assert torch.equal(out[0, 2], x[0, 300:500])


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_waveform_pad_refuses_bad_values(bad):
    with pytest.raises(ConfigError, match="waveform.pad"):
        create_frontend("waveform", pad=bad)


def _tone(freq: float, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    return torch.sin(2 * np.pi * freq * t).float()[None]


def _rms(x: torch.Tensor) -> float:
    mid = x[..., 2000:-2000]  # ignore the edges' transients
    return float(mid.pow(2).mean().sqrt())


def test_bandpass_attenuates_out_of_band_tones():
    fe = create_frontend("waveform", low_hz=2000, high_hz=4000, filter_order=8,
                         standardize=False)
    passed = _rms(fe(_tone(3000))) / _rms(_tone(3000))
    assert passed == pytest.approx(1.0, abs=0.05)
    for freq in (300.0, 1000.0, 6000.0, 7500.0):
        assert _rms(fe(_tone(freq))) / _rms(_tone(freq)) < 0.01, freq


def test_waveform_seed_band_is_relative_to_the_30khz_design_rate():
    # designed at 30 kHz, 10-14 kHz becomes 16000 * (10/30)..(14/30) = 5.33-7.47 kHz at 16 kHz
    fe = create_frontend("waveform_seed", standardize=False, band_gain=False)
    assert _rms(fe(_tone(6400))) / _rms(_tone(6400)) == pytest.approx(1.0, abs=0.05)
    assert _rms(fe(_tone(3000))) / _rms(_tone(3000)) < 0.01
    assert fe.config.filter_order == 16 and fe.config.design_sr == 30000


# ----------------------------------------------------------------------------- frames, cqt


def test_frames_equal_manual_dcase_stack(tone_noise):
    y = tone_noise(1.0)
    fe = create_frontend("frames", n_mels=128, n_frames=5)
    mel = ours(create_frontend("logmel"), y)  # [128, F]
    n_vec = mel.shape[1] - 5 + 1
    manual = np.zeros((n_vec, 640), dtype=np.float32)
    for t in range(5):  # the DCASE baseline's loop
        manual[:, 128 * t:128 * (t + 1)] = mel[:, t:t + n_vec].T
    np.testing.assert_array_equal(ours(fe, y), manual)


def test_cqt_shape_and_tone_peak():
    fe = create_frontend("cqt")
    assert fe.config.sr == 8000 and fe.config.hop_length == 248
    t = np.arange(8000 * 2) / 8000
    y = np.sin(2 * np.pi * 2000 * 2 ** (6 / 12) * t).astype(np.float32)  # bin 6 of 12
    out = ours(fe, y)
    assert out.shape == fe.output_shape(y.size) == (12, 1 + y.size // 248)
    assert int(out[:, 5:-5].mean(axis=1).argmax()) == 6


@pytest.mark.parametrize("name", ["stft", "logmel", "frames"])
def test_cpu_chunks_give_the_same_features_as_one_clip_at_a_time(name, monkeypatch):
    import soundwatch.features.extraction as extraction

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((5, 4000)).astype(np.float32))
    mels = {} if name == "stft" else {"n_mels": 32}  # more leave empty bands at n_fft 256
    fe = create_frontend(name, n_fft=256, hop_length=128, **mels)
    monkeypatch.setattr(extraction, "CPU_CHUNK_SAMPLES", 8000)  # chunks of 2 clips
    calls = []
    fe.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    with torch.inference_mode():
        batched = extraction.run_frontend(fe, x)
        single = torch.cat([fe(x[i : i + 1]) for i in range(len(x))])
    assert calls[:3] == [2, 2, 1]  # the caller chunks; the module's forward never does
    assert batched.shape == (5, *fe.output_shape(4000))
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-5)


def test_magnitude_with_gradients_equals_the_fast_inference_path():
    x = torch.randn(2, 4000)
    fe = create_frontend("stft", n_fft=256, hop_length=128, power=1.0)
    with torch.inference_mode():
        fast = fe(x)
    xg = x.clone().requires_grad_(True)
    slow = fe(xg)  # torch's own complex abs, differentiable
    slow.sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()
    torch.testing.assert_close(fast, slow.detach(), rtol=1e-5, atol=1e-6)
