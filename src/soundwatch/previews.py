"""Listenable excerpts of recordings for reports: compressed bytes and HTML audio players."""

from __future__ import annotations

import base64
import html
import io
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["PREVIEW_SR", "AudioPlayers", "encode_excerpt"]

PREVIEW_SR = 16000
"""Sample rate of embedded excerpts (machine sounds of soundwatch's data are 16 kHz)."""
MAX_EXCERPT_S = 30.0
"""Longest embedded excerpt (s); a longer clip is cut around its middle."""


def _format() -> tuple[str, str, str]:
    """(soundfile format, subtype, MIME type): MP3 when libsndfile has it, else OGG, else WAV."""
    import soundfile as sf

    formats = sf.available_formats()
    if "MP3" in formats:
        return "MP3", "MPEG_LAYER_III", "audio/mpeg"
    if "OGG" in formats:
        return "OGG", "VORBIS", "audio/ogg"
    return "WAV", "PCM_16", "audio/wav"


def encode_excerpt(path: str | os.PathLike[str], start: float = 0.0, end: float | None = None,
                   max_seconds: float = MAX_EXCERPT_S) -> tuple[bytes, str]:
    """A compressed mono excerpt of a recording (``start`` to ``end`` seconds).

    Args:
        path: Audio file.
        start: Start (s).
        end: End (s); default the end of the file.
        max_seconds: Longest excerpt; a longer span is cut to this length around its middle.

    Returns:
        ``(bytes, mime type)``.

    Raises:
        AudioError: The file cannot be read.
    """
    import numpy as np
    import soundfile as sf

    from soundwatch.audio import resample
    from soundwatch.errors import AudioError

    try:  # only the span is read: an excerpt of an hour-long recording stays cheap
        with open(path, "rb") as handle, sf.SoundFile(handle) as f:
            rate = f.samplerate
            i0 = max(0, int(round(start * rate)))
            i1 = f.frames if end is None else min(f.frames, int(round(end * rate)))
            span = int(max_seconds * rate)
            if i1 - i0 > span:
                mid = (i0 + i1) // 2
                i0, i1 = mid - span // 2, mid - span // 2 + span
            f.seek(i0)
            data = f.read(max(i1 - i0, 0), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, sf.LibsndfileError) as exc:
        raise AudioError(path, f"cannot read an excerpt: {exc}") from exc
    mono = np.ascontiguousarray(data[:, 0])  # channel 0, as soundwatch.audio.load
    if not np.isfinite(mono).all():
        raise AudioError(path, "NaN or Inf samples")
    part = resample(mono, rate, PREVIEW_SR)
    peak = float(np.max(np.abs(part))) if part.size else 0.0
    if peak > 1.0:  # float files may exceed full scale; the encoders clip
        part = part / peak
    fmt, subtype, mime = _format()
    buf = io.BytesIO()
    sf.write(buf, part, PREVIEW_SR, format=fmt, subtype=subtype)
    return buf.getvalue(), mime


class AudioPlayers:
    """HTML ``<audio>`` players for a report, embedded while a budget lasts, else linked.

    The first ``max_embedded`` players (and at most ``max_bytes`` of audio) hold their
    excerpt as a base64 data URI, so the page plays them wherever it is opened; later ones
    link to the original file by a path relative to the report's folder (they play while
    the report stays next to the data). A missing or unreadable file gets a note instead.

    Args:
        report_dir: The folder the report is written into.
        max_embedded: Most players embedded.
        max_bytes: Most bytes of compressed audio embedded.
    """

    def __init__(self, report_dir: str | os.PathLike[str], max_embedded: int = 40,
                 max_bytes: int = 4_000_000) -> None:
        self.report_dir = Path(report_dir)
        self.max_embedded = max_embedded
        self.max_bytes = max_bytes
        self.embedded = 0
        self.linked = 0
        self.missing = 0
        self.bytes = 0

    def player(self, path: str | os.PathLike[str], start: float = 0.0,
               end: float | None = None) -> str:
        """The player of a recording (or of its ``start``-``end`` excerpt)."""
        from soundwatch.errors import SoundwatchError

        target = Path(path)
        if not target.is_file():
            self.missing += 1
            return '<span class="muted">audio not found</span>'
        if self.embedded < self.max_embedded and self.bytes < self.max_bytes:
            try:
                data, mime = encode_excerpt(target, start, end)
            except (SoundwatchError, OSError, RuntimeError, ValueError) as exc:
                log.warning("%s: no audio player in the report: %s", target, exc)
                self.missing += 1
                return '<span class="muted">audio unreadable</span>'
            self.embedded += 1
            self.bytes += len(data)
            uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
            return f'<audio controls preload="none" src="{uri}"></audio>'
        self.linked += 1
        rel = os.path.relpath(target.resolve(), self.report_dir.resolve())
        fragment = ""
        if start > 0 or end is not None:  # media fragment: the browser plays that span
            fragment = f"#t={start:.2f}" + (f",{end:.2f}" if end is not None else "")
        src = html.escape(Path(rel).as_posix() + fragment, quote=True)
        return f'<audio controls preload="none" src="{src}"></audio>'

    def note(self) -> str:
        """One sentence on how the players were made (for the report)."""
        parts = []
        if self.embedded:
            parts.append(f"{self.embedded} recording(s) are embedded in this page "
                         f"({self.bytes / 1e6:.1f} MB, compressed, {PREVIEW_SR // 1000} kHz mono, "
                         f"at most {MAX_EXCERPT_S:.0f} s each)")
        if self.linked:
            parts.append(f"{self.linked} play from their original files (linked by a relative "
                         "path: keep the report next to the data)")
        if self.missing:
            parts.append(f"{self.missing} could not be read from here")
        return ("Audio players: " + "; ".join(parts) + ".") if parts else ""
