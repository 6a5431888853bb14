"""Fuzzing soundwatch.audio.load: any bytes, any WAV header, it loads or raises AudioError only."""

import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soundwatch import audio
from soundwatch.errors import AudioError, printable

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _load_or_audio_error(path, **kwargs):
    """Load ``path``; the only exception allowed is an AudioError that names the file."""
    try:
        x = audio.load(path, **kwargs)
    except AudioError as exc:
        assert printable(str(path)) in str(exc)
        assert "\n" not in str(exc)
        return None
    assert x.dtype == np.float32 and x.ndim == 1
    assert np.isfinite(x).all()
    # resampling may overshoot a little (Gibbs), never by orders of magnitude
    assert np.abs(x).max(initial=0) <= audio.MAX_ABS_SAMPLE * 10
    return x


def _wav(fmt_tag, channels, rate, bits, declared, payload, byte_rate=None, extra=b""):
    block = max(channels * bits // 8, 0)
    if byte_rate is None:
        byte_rate = (rate * block) & 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, byte_rate, block, bits) + extra
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", declared) + payload
    return b"RIFF" + struct.pack("<I", len(body) & 0xFFFFFFFF) + body


@FUZZ
@given(data=st.binary(min_size=0, max_size=4096))
def test_random_bytes_load_or_raise_audio_error(tmp_path, data):
    path = tmp_path / "random.wav"
    path.write_bytes(data)
    _load_or_audio_error(path)


@FUZZ
@given(
    fmt_tag=st.sampled_from([1, 3, 0xFFFE, 2, 0x55, 0, 6, 7]),
    channels=st.integers(0, 12),
    rate=st.one_of(st.integers(0, 200_000), st.sampled_from([1, 2, 999, 2**31 - 1, 2**32 - 1])),
    bits=st.sampled_from([0, 8, 12, 16, 24, 32, 64]),
    declared=st.integers(0, 2**32 - 1),
    payload=st.binary(min_size=0, max_size=2048),
)
def test_random_wav_headers_load_or_raise_audio_error(
    tmp_path, fmt_tag, channels, rate, bits, declared, payload
):
    path = tmp_path / "header.wav"
    path.write_bytes(_wav(fmt_tag, channels, rate, bits, declared, payload))
    _load_or_audio_error(path)


@FUZZ
@given(
    rate=st.integers(1, 400_000),
    channels=st.integers(1, 4),
    values=st.lists(
        st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=600
    ),
    double=st.booleans(),
)
def test_float_wavs_with_any_values_load_or_raise_audio_error(
    tmp_path, rate, channels, values, double
):
    dtype = np.float64 if double else np.float32
    samples = np.asarray(values, dtype=dtype)
    samples = samples[: len(samples) // channels * channels] if len(samples) >= channels \
        else np.resize(samples, channels)
    payload = samples.tobytes()
    bits = 64 if double else 32
    path = tmp_path / "float.wav"
    path.write_bytes(_wav(3, channels, rate, bits, len(payload), payload))
    _load_or_audio_error(path, min_seconds=0.0)


@FUZZ
@given(
    name=st.binary(min_size=1, max_size=20).filter(lambda b: b"/" not in b and b"\0" not in b),
    data=st.binary(min_size=0, max_size=512),
)
def test_any_file_name_bytes_load_or_raise_audio_error(tmp_path, name, data):
    import os

    path = os.fsdecode(os.fsencode(str(tmp_path)) + b"/" + name + b".wav")
    with open(path, "wb") as handle:
        handle.write(data)
    _load_or_audio_error(path)


def test_one_hz_header_is_refused_before_any_sample_is_decoded(tmp_path, monkeypatch):
    import soundfile as sf

    def no_read(*args, **kwargs):
        raise AssertionError("samples were decoded")

    monkeypatch.setattr(sf.SoundFile, "read", no_read)
    path = tmp_path / "one_hz.wav"
    payload = np.zeros(32_000, np.int16).tobytes()  # 64 KB: 9 hours at 1 Hz
    path.write_bytes(_wav(1, 1, 1, 16, len(payload), payload))
    try:
        audio.load(path)
    except AudioError as exc:
        assert "sample rate 1 Hz" in str(exc) and str(path) in str(exc)
    else:
        raise AssertionError("a 1 Hz header was accepted")


def test_a_header_claiming_more_than_the_memory_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(audio, "MAX_DECODED_BYTES", 1000)
    path = tmp_path / "long.wav"
    payload = np.zeros(16_000, np.int16).tobytes()
    path.write_bytes(_wav(1, 1, 16_000, 16, len(payload), payload))
    try:
        audio.load(path)
    except AudioError as exc:
        assert "limit" in str(exc)
    else:
        raise AssertionError("a file over the limit was loaded")
