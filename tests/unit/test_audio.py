import logging

import numpy as np
import pytest
import soundfile as sf

from soundwatch import audio
from soundwatch.errors import AudioError, SoundwatchError


def test_every_corpus_file_loads_or_raises_a_specific_error(bad_corpus):
    for name, (path, expected) in bad_corpus.items():
        if expected is None:
            x = audio.load(path)
            assert x.dtype == np.float32 and x.ndim == 1 and x.size > 0, name
            assert np.isfinite(x).all(), name
        else:
            with pytest.raises(AudioError) as err:
                audio.load(path)
            message = str(err.value)
            assert expected in message, (name, message)
            assert str(path) in message, (name, message)
            assert "\n" not in message


@pytest.mark.parametrize("name", ["sr_8000", "sr_44100", "sr_48000"])
def test_resampling_gives_the_requested_rate(bad_corpus, name):
    x = audio.load(bad_corpus[name][0], sr=16000)
    assert abs(x.size - 16000) <= 1
    # a 440 Hz tone stays at 440 Hz after resampling
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    peak_hz = np.argmax(spectrum) * 16000 / x.size
    assert abs(peak_hz - 440) < 3


def test_keep_native_rate_with_sr_none(bad_corpus):
    x = audio.load(bad_corpus["sr_44100"][0], sr=None)
    assert x.size == 44100


def test_multichannel_pick_and_mean(bad_corpus):
    path = bad_corpus["eight_channel"][0]
    data, _ = sf.read(path, dtype="float32")
    np.testing.assert_allclose(audio.load(path, channel=3), data[:, 3], atol=1e-6)
    np.testing.assert_allclose(audio.load(path, channel="mean"), data.mean(axis=1), atol=1e-6)
    with pytest.raises(AudioError, match="channel 8 asked for, file has 8"):
        audio.load(path, channel=8)


@pytest.mark.parametrize("name", ["pcm_u8", "pcm_24", "pcm_32", "float32", "float64", "flac"])
def test_sample_formats_decode_to_the_same_signal(bad_corpus, name):
    reference = audio.load(bad_corpus["float32"][0])
    x = audio.load(bad_corpus[name][0])
    tolerance = 2e-2 if name == "pcm_u8" else 1e-4
    np.testing.assert_allclose(x, reference, atol=tolerance)


def test_silent_clip_loads_with_a_warning(bad_corpus, caplog):
    with caplog.at_level(logging.WARNING, logger="soundwatch.audio"):
        x = audio.load(bad_corpus["zeros"][0])
    assert not x.any()
    assert "silent" in caplog.text


def test_min_seconds_is_configurable(bad_corpus):
    path = bad_corpus["short_0.1s"][0]
    assert audio.load(path, min_seconds=0.1).size == 1600
    with pytest.raises(AudioError, match="too short"):
        audio.load(path, min_seconds=0.5)


def test_info_reads_the_header(bad_corpus):
    meta = audio.info(bad_corpus["eight_channel"][0])
    assert (meta.samplerate, meta.channels, meta.frames) == (16000, 8, 16000)
    assert meta.duration == pytest.approx(1.0)
    with pytest.raises(AudioError, match="empty file"):
        audio.info(bad_corpus["empty"][0])


def test_audio_error_is_a_soundwatch_error():
    assert issubclass(AudioError, SoundwatchError)


def test_stream_yields_windows_without_loading_everything(bad_corpus):
    path = bad_corpus["long_10min"][0]
    windows = [(start, w.size) for start, w in audio.stream(path, window=60.0, hop=30.0, sr=16000)]
    # full minutes start at 0, 30, ..., 540; the last 30 s (half a window) come as a partial one
    assert [s for s, _ in windows] == [30.0 * i for i in range(20)]
    assert all(size == 60 * 16000 for _, size in windows[:-1])
    assert windows[-1][1] == 30 * 16000


def test_stream_rejects_bad_window(bad_corpus):
    with pytest.raises(AudioError, match="window and hop must be positive"):
        list(audio.stream(bad_corpus["float32"][0], 0, 1))


def test_finite_but_huge_float_samples_are_refused(tmp_path):
    path = tmp_path / "huge.wav"
    x = np.zeros(16000, np.float32)
    x[100] = 1e30
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="samples out of range") as info:
        audio.load(path)
    assert str(path) in str(info.value)
    x[100] = 2.5  # loud but plausible float audio still loads
    sf.write(path, x, 16000, subtype="FLOAT")
    assert audio.load(path)[100] == pytest.approx(2.5)


def test_random_bytes_are_not_audio_not_missing(tmp_path):
    path = tmp_path / "random.wav"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(AudioError) as info:
        audio.load(path)
    assert "not an audio file" in str(info.value)
    assert "does not exist" not in str(info.value)
