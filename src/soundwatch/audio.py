"""Audio loading: decode, validate, pick or mix channels, resample; also streaming windows."""

from __future__ import annotations

import errno
import logging
import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundwatch.errors import AudioError

__all__ = [
    "AudioError",
    "AudioInfo",
    "DEFAULT_SR",
    "MAX_ABS_SAMPLE",
    "MAX_DECODED_BYTES",
    "MAX_SAMPLERATE",
    "MIN_SAMPLERATE",
    "MIN_SECONDS",
    "info",
    "load",
    "stream",
]

log = logging.getLogger(__name__)

DEFAULT_SR = 16000
MIN_SECONDS = 0.05
"""Shortest clip :func:`load` accepts by default (50 ms: below one STFT frame at 16 kHz)."""

MIN_SAMPLERATE = 1000
"""Lowest sample rate accepted (Hz): a header saying 1 Hz is a corrupt or hostile file."""
MAX_SAMPLERATE = 768_000
"""Highest sample rate accepted (Hz)."""
MAX_DECODED_BYTES = 2 * 1024**3
"""Most memory :func:`load` may allocate for one file's samples (float32, before and after
resampling); a header claiming more is refused before anything is allocated. Longer
recordings are read in windows by :func:`stream`."""
MAX_ABS_SAMPLE = 1e6
"""Largest sample magnitude accepted. Float files normally hold values in [-1, 1] (some
tools write integer-scaled floats up to 32768); finite values like 1e30 overflow the
front-ends' float32 power spectra to infinity, so such files are refused as corrupt."""

Channel = int | str


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says.

    Attributes:
        path: The file.
        samplerate: Sample rate in Hz.
        channels: Number of channels.
        frames: Number of sample frames.
        format: Container (``WAV``, ``FLAC``...).
        subtype: Sample encoding (``PCM_16``, ``FLOAT``...).
    """

    path: Path
    samplerate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.samplerate if self.samplerate else 0.0


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "no such file"
    if exc.errno == errno.EACCES:
        return "permission denied"
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if exc.errno == errno.EISDIR:
        return "is a directory, not an audio file"
    return exc.strerror or str(exc)


def special_file(mode: int) -> str | None:
    """What a non-regular, non-folder file is (``"a named pipe (FIFO)"``...), else ``None``.

    Opening a FIFO blocks until a writer comes and a device never ends, so such files are
    refused before they are opened.
    """
    for test, kind in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return None


def _check_readable(path: Path) -> int:
    """Open the file once so OS problems get a precise reason; return its size in bytes."""
    try:
        kind = special_file(os.stat(path).st_mode)
    except OSError as exc:
        raise AudioError(path, _os_reason(exc)) from exc
    if kind is not None:
        raise AudioError(path, f"not a regular file: {kind}")
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        raise AudioError(path, _os_reason(exc)) from exc
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    return size


def _check_riff(path: Path, size: int) -> None:
    """Reject WAV files whose data chunk claims more bytes than the file holds.

    libsndfile silently shortens such files, which would hide a truncated download,
    so the RIFF chunk list is walked here (no library exposes the declared size).
    """
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return
        endian = "<" if head[:4] == b"RIFF" else ">"
        pos = 12
        while pos + 8 <= size:
            handle.seek(pos)
            chunk = handle.read(8)
            if len(chunk) < 8:
                break
            cid, csize = chunk[:4], struct.unpack(endian + "I", chunk[4:])[0]
            if cid == b"data":
                available = size - (pos + 8)
                if csize != 0xFFFFFFFF and csize > available:
                    raise AudioError(
                        path,
                        f"truncated data: header declares {csize} data bytes, "
                        f"file holds {available}",
                    )
                return
            pos += 8 + csize + (csize & 1)
        if pos + 8 > size and pos != size:
            raise AudioError(path, "truncated header: no complete data chunk")


NOT_AUDIO = "not audio: not an audio file format soundwatch reads, or a corrupt header"


def _check_header(path: Path, meta: object, out_sr: int | None = None) -> None:
    """Refuse absurd header values before any sample is decoded or allocated."""
    rate = int(getattr(meta, "samplerate", 0))
    channels = int(getattr(meta, "channels", 0))
    frames = int(getattr(meta, "frames", 0))
    if not MIN_SAMPLERATE <= rate <= MAX_SAMPLERATE:
        raise AudioError(
            path, f"implausible sample rate {rate} Hz in the header "
            f"(accepted: {MIN_SAMPLERATE}-{MAX_SAMPLERATE} Hz)",
        )
    if channels < 1:
        raise AudioError(path, f"implausible channel count {channels} in the header")
    decoded = frames * channels * 4
    resampled = frames * (out_sr / rate if out_sr else 1.0) * 4
    if max(decoded, resampled) > MAX_DECODED_BYTES:
        raise AudioError(
            path, f"header claims {frames} frames x {channels} channel(s) "
            f"({max(decoded, resampled) / 2**30:.1f} GiB as float32), over the "
            f"{MAX_DECODED_BYTES / 2**30:.0f} GiB limit of load(); use stream() for long files",
        )


def _soundfile_error(path: Path, exc: Exception) -> AudioError:
    text = str(exc)
    low = text.lower()
    if "unsupported" in low or "not supported" in low:
        reason = f"unsupported format ({text.split(':')[-1].strip()})"
    elif ("format not recognised" in low or "unknown format" in low or "not recognised" in low
          or "does not exist" in low or "not a regular file" in low or text.rstrip().endswith(":")):
        # the file exists (it was opened above): libsndfile's "does not exist or is not a
        # regular file" and its empty messages mean it found no audio format it knows
        reason = NOT_AUDIO
    else:
        reason = f"cannot decode: {text.split(':')[-1].strip() or type(exc).__name__}"
    return AudioError(path, reason)


def info(path: str | os.PathLike[str]) -> AudioInfo:
    """Read a file's header without decoding the samples.

    Args:
        path: Audio file.

    Returns:
        The header's facts.

    Raises:
        AudioError: The file cannot be opened or is not audio.
    """
    import soundfile as sf

    path = Path(path)
    size = _check_readable(path)
    _check_riff(path, size)
    try:
        with open(path, "rb") as handle:  # a file object: soundfile cannot open non-UTF-8 names
            meta = sf.info(handle)
    except OSError as exc:
        raise AudioError(path, _os_reason(exc)) from exc
    except Exception as exc:  # soundfile raises several types (LibsndfileError, RuntimeError)
        raise _soundfile_error(path, exc) from exc
    if not MIN_SAMPLERATE <= int(meta.samplerate) <= MAX_SAMPLERATE or int(meta.channels) < 1:
        _check_header(path, meta)
    return AudioInfo(path, int(meta.samplerate), int(meta.channels), int(meta.frames),
                     str(meta.format), str(meta.subtype))


def _select_channel(path: Path, data: np.ndarray, channel: Channel) -> np.ndarray:
    if channel == "mean":
        return data.mean(axis=1, dtype=np.float64).astype(np.float32)
    if isinstance(channel, str):
        if not channel.lstrip("-").isdigit():
            raise AudioError(path, f"channel must be an integer or 'mean', got {channel!r}")
        channel = int(channel)
    n = data.shape[1]
    if not -n <= channel < n:
        raise AudioError(path, f"channel {channel} asked for, file has {n} channel(s)")
    return np.ascontiguousarray(data[:, channel])


def _validate(path: Path, x: np.ndarray, file_sr: int, min_seconds: float) -> None:
    if x.size == 0:
        raise AudioError(path, "zero samples")
    if x.size < min_seconds * file_sr:
        raise AudioError(
            path, f"too short: {x.size / file_sr:.3f} s, minimum is {min_seconds:g} s"
        )
    finite = np.isfinite(x)
    if not finite.all():
        kind = "NaN" if np.isnan(x).any() else "Inf"
        raise AudioError(path, f"{kind} samples ({int((~finite).sum())} of {x.size})")
    _check_range(path, x)
    if not np.any(x):
        log.warning("%s: all samples are zero (silent clip)", path)


def _check_range(path: Path, x: np.ndarray, at: str = "") -> None:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > MAX_ABS_SAMPLE:
        raise AudioError(
            path, f"samples out of range{at}: peak magnitude {peak:.3g}, over {MAX_ABS_SAMPLE:g} "
            "(a corrupt float file?)",
        )


def resample(x: np.ndarray, from_sr: int, to_sr: int) -> np.ndarray:
    """Resample a mono float32 signal with soxr (high quality); no-op if rates agree."""
    if from_sr == to_sr:
        return x
    import soxr

    return soxr.resample(x, from_sr, to_sr, quality="HQ").astype(np.float32, copy=False)


def load(
    path: str | os.PathLike[str],
    sr: int | None = DEFAULT_SR,
    channel: Channel = 0,
    min_seconds: float = MIN_SECONDS,
) -> np.ndarray:
    """Load an audio file as a float32 mono array.

    Args:
        path: WAV (PCM 8/16/24/32, float 32/64, WAVE_FORMAT_EXTENSIBLE), FLAC, or any
            other format libsndfile reads.
        sr: Output sample rate; the signal is resampled with soxr when the file's rate
            differs. ``None`` keeps the file's rate.
        channel: Channel index to keep (default 0; MIMII raw files have 8), or
            ``"mean"`` to mix all channels down.
        min_seconds: Shortest accepted length, in seconds.

    Returns:
        A 1-D float32 array at ``sr``.

    Raises:
        AudioError: Not audio, a corrupt or truncated file, zero samples, too short,
            NaN or Inf samples, samples beyond :data:`MAX_ABS_SAMPLE`, a header with an
            implausible rate or a size over :data:`MAX_DECODED_BYTES` (refused before
            allocating), an unsupported format, or an unreadable path.
    """
    import soundfile as sf

    path = Path(path)
    size = _check_readable(path)
    _check_riff(path, size)
    try:
        with open(path, "rb") as handle:  # a file object: soundfile cannot open non-UTF-8 names
            with sf.SoundFile(handle) as sound:
                _check_header(path, sound, sr)  # before allocating the samples
                data = sound.read(dtype="float32", always_2d=True)
                file_sr = sound.samplerate
    except AudioError:
        raise
    except MemoryError as exc:
        raise AudioError(path, "too large to load into memory (use stream())") from exc
    except OSError as exc:
        raise AudioError(path, _os_reason(exc)) from exc
    except Exception as exc:  # soundfile raises several types (LibsndfileError, RuntimeError)
        raise _soundfile_error(path, exc) from exc
    x = _select_channel(path, data, channel)
    _validate(path, x, int(file_sr), min_seconds)
    return resample(x, int(file_sr), sr) if sr else x


def stream(
    path: str | os.PathLike[str],
    window: float,
    hop: float,
    sr: int = DEFAULT_SR,
    channel: Channel = 0,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield sliding windows of a long recording without loading the whole file.

    Args:
        path: Audio file (an hour of monitoring audio is fine: memory stays at a few
            windows).
        window: Window length in seconds.
        hop: Step between window starts in seconds.
        sr: Output sample rate of each window.
        channel: As in :func:`load`.

    Yields:
        ``(start_seconds, samples)`` for each full window; a last partial window is
        yielded too when it holds at least half a window.

    Raises:
        AudioError: As in :func:`load`, for the file or for any window.
    """
    import soundfile as sf

    if window <= 0 or hop <= 0:
        raise AudioError(path, f"window and hop must be positive (got {window}, {hop})")
    meta = info(path)
    path = meta.path
    _check_header(path, AudioInfo(path, meta.samplerate, meta.channels, 0, "", ""))
    win = int(round(window * meta.samplerate))
    step = int(round(hop * meta.samplerate))
    try:
        with open(path, "rb") as raw, sf.SoundFile(raw) as handle:
            start = 0
            while start < meta.frames:
                handle.seek(start)
                block = handle.read(win, dtype="float32", always_2d=True)
                if block.shape[0] == 0 or (block.shape[0] < win and block.shape[0] < win // 2):
                    break
                x = _select_channel(path, block, channel)
                finite = np.isfinite(x)
                at = start / meta.samplerate
                if not finite.all():
                    raise AudioError(path, f"NaN or Inf samples near {at:.1f} s")
                _check_range(path, x, f" near {at:.1f} s")
                yield start / meta.samplerate, resample(x, meta.samplerate, sr)
                if block.shape[0] < win:
                    break
                start += step
    except AudioError:
        raise
    except Exception as exc:  # soundfile raises several types (LibsndfileError, RuntimeError)
        raise _soundfile_error(path, exc) from exc
