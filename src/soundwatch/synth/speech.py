"""Synthesised speech as interference: Debian's espeak-ng, mixed into clips at an SNR."""

from __future__ import annotations

import functools
import io
import shutil
import subprocess

import numpy as np

from soundwatch.errors import ConfigError

__all__ = [
    "ESPEAK",
    "SENTENCES",
    "add_speech",
    "espeak_available",
    "speech_noise",
    "synthesize_speech",
]

ESPEAK = "espeak-ng"
"""The speech synthesiser's command (Debian package ``espeak-ng``)."""

SENTENCES = (
    "the second shift starts at six",
    "can you bring the pallet over here",
    "check the pressure on line four",
    "we are waiting for the next delivery",
    "the forklift is parked by the door",
    "please sign the inspection sheet",
    "turn left after the loading bay",
    "lunch is in the break room today",
    "the order for tomorrow has changed",
    "who moved the red toolbox",
)
"""What the synthetic workers say (short, neutral shop-floor sentences)."""

_VOICES = ("en", "en-us", "en+m3", "en+f3", "en+m7", "en+f4")
_INSTALL_HINT = "not installed; install it with `apt-get install espeak-ng`"


def espeak_available() -> bool:
    """Whether the ``espeak-ng`` command is on the ``PATH``."""
    return shutil.which(ESPEAK) is not None


@functools.lru_cache(maxsize=256)
def _espeak(text: str, voice: str, wpm: int, pitch: int) -> bytes:
    """espeak-ng's WAV output for one utterance (cached: the same call gives the same bytes)."""
    exe = shutil.which(ESPEAK)
    if exe is None:
        raise ConfigError(ESPEAK, _INSTALL_HINT)
    try:
        done = subprocess.run(
            [exe, "--stdout", "-v", voice, "-s", str(wpm), "-p", str(pitch), text],
            capture_output=True, timeout=60, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(ESPEAK, f"could not run: {exc}") from exc
    if done.returncode != 0 or not done.stdout:
        reason = done.stderr.decode("utf-8", "replace").strip() or f"exit code {done.returncode}"
        raise ConfigError(ESPEAK, f"speech synthesis failed: {reason}")
    return done.stdout


def synthesize_speech(
    text: str, sr: int, voice: str = "en", wpm: int = 160, pitch: int = 50
) -> np.ndarray:
    """Speak ``text`` with espeak-ng, as a float32 mono signal at ``sr``.

    Args:
        text: What to say.
        sr: Sample rate of the result (espeak-ng speaks at 22.05 kHz; resampled with soxr).
        voice: An espeak-ng voice (``en``, ``en-us``, ``en+f3``...).
        wpm: Speed in words per minute.
        pitch: Pitch, 0-99.

    Returns:
        The utterance.

    Raises:
        ConfigError: espeak-ng is not installed or fails.
    """
    import soundfile as sf

    from soundwatch.audio import resample

    wav = _espeak(str(text), str(voice), int(wpm), int(pitch))
    try:
        data, file_sr = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - soundfile raises several types
        raise ConfigError(ESPEAK, f"unreadable output: {exc}") from exc
    x = data.mean(axis=1)
    return resample(x, int(file_sr), int(sr)) if int(file_sr) != int(sr) else x


def speech_noise(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of people talking: random sentences, voices, speeds and pauses.

    Args:
        n: Length in samples.
        sr: Sample rate.
        rng: Random generator (the result is a pure function of its state, for one
            espeak-ng version).

    Returns:
        float32 signal (unit RMS over the talking, zero in the pauses).

    Raises:
        ConfigError: espeak-ng is not installed or fails.
    """
    pieces: list[np.ndarray] = [np.zeros(int(rng.integers(0, max(1, sr // 2))), np.float32)]
    total = pieces[0].size
    while total < n:
        text = SENTENCES[int(rng.integers(len(SENTENCES)))]
        voice = _VOICES[int(rng.integers(len(_VOICES)))]
        y = synthesize_speech(text, sr, voice, int(rng.integers(130, 200)),
                              int(rng.integers(20, 80)))
        gap = np.zeros(int(rng.uniform(0.1, 0.8) * sr), np.float32)
        pieces += [y.astype(np.float32), gap]
        total += y.size + gap.size
    out = np.concatenate(pieces)[:n]
    talk = out[np.abs(out) > 1e-4]
    level = float(np.sqrt(np.mean(talk.astype(np.float64) ** 2))) if talk.size else 0.0
    return (out / level).astype(np.float32) if level > 0 else out


def add_speech(
    x: np.ndarray, snr_db: float, sr: int, rng: np.random.Generator
) -> np.ndarray:
    """Mix synthesised speech under ``x`` at ``snr_db`` (power of ``x`` over the speech's).

    Args:
        x: Mono signal.
        snr_db: Signal-to-speech ratio in dB.
        sr: Sample rate.
        rng: Random generator.

    Returns:
        float32 ``x + scaled speech``.

    Raises:
        ConfigError: espeak-ng is not installed or fails; ``snr_db`` is not finite.
    """
    from soundwatch.synth.augment import mix_background

    x = np.asarray(x, np.float32)
    return mix_background(x, speech_noise(x.size, sr, rng), snr_db)
