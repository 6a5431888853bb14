"""Where in time and frequency a clip deviates from its machine's normal sound."""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from soundwatch.atomic import atomic_path
from soundwatch.audio import DEFAULT_SR, load
from soundwatch.datasets import discover
from soundwatch.detectors.loading import load_run_detector, run_context_for
from soundwatch.errors import AudioError, DetectorError
from soundwatch.scores import read_scores_table

if TYPE_CHECKING:
    import pandas as pd

    from soundwatch.runs import Run
    from soundwatch.training.context import RunContext

__all__ = [
    "Explanation",
    "NormalStats",
    "explain_clip",
    "explain_flagged",
    "explanation_path",
    "logmel_db",
    "normal_stats",
    "plot_explanation",
]

log = logging.getLogger(__name__)

N_FFT = 1024
HOP = 512
N_MELS = 64
MAX_TRAIN_CLIPS = 40
"""Normal training clips read for the per-bin statistics (spread over the list)."""
Z_CLIP = 6.0
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def logmel_db(signal: np.ndarray, sr: int, n_mels: int = N_MELS) -> np.ndarray:
    """Log-mel power spectrogram in dB ``[n_mels, frames]`` (librosa, 1024/512 STFT)."""
    import librosa

    n_fft = min(N_FFT, max(64, 2 ** int(math.log2(max(len(signal), 64)))))
    mel = librosa.feature.melspectrogram(y=np.asarray(signal, dtype=np.float32), sr=sr,
                                         n_fft=n_fft, hop_length=min(HOP, n_fft // 2),
                                         n_mels=n_mels, power=2.0)
    return 10.0 * np.log10(np.maximum(mel, 1e-10))


@dataclass(frozen=True)
class NormalStats:
    """Per-mel-bin statistics of a machine's normal training clips.

    Attributes:
        mean: Mean dB per mel bin.
        std: Standard deviation (dB) per mel bin.
        sr: Sample rate of the analysis.
        clips: Number of clips the statistics come from.
    """

    mean: np.ndarray
    std: np.ndarray
    sr: int
    clips: int

    def zscore(self, logmel: np.ndarray) -> np.ndarray:
        """``(logmel - mean) / std`` per bin and frame."""
        return (logmel - self.mean[:, None]) / np.maximum(self.std[:, None], 1e-3)


def _train_paths(run: Run, machine: str) -> list[Path]:
    """The machine's normal training clips (from ``scores/train_scores.csv``, else the data)."""
    path = Path(run.train_scores_path)
    if path.is_file():
        table = read_scores_table(path)
        rows = table[(table["machine"] == machine) & (table["label"].fillna(0) == 0)]
        return [Path(p) for p in rows["path"]]
    data = run.config().data
    if data is None:
        return []

    return [c.path for c in discover(data)
            if c.machine == machine and c.split == "train" and c.label in (None, 0)]


def normal_stats(run: Run, machine: str, sr: int, *, store: bool = True) -> NormalStats:
    """Per-mel-bin mean and spread of a machine's normal training clips.

    Read from ``<run>/explain/<machine>_stats.npz`` when stored there for the same sample
    rate; else computed from up to :data:`MAX_TRAIN_CLIPS` training clips and stored.

    Raises:
        DetectorError: No readable normal training clip.
    """
    cache = run.root / "explain" / f"{_SAFE.sub('_', machine)}_stats.npz"
    if cache.is_file():
        try:
            with np.load(cache) as data:
                if int(data["sr"]) == sr and data["mean"].shape == (N_MELS,):
                    return NormalStats(data["mean"], data["std"], sr, int(data["clips"]))
        except (OSError, ValueError, KeyError):
            log.warning("%s: unreadable, recomputed", cache)

    paths = _train_paths(run, machine)
    if len(paths) > MAX_TRAIN_CLIPS:
        idx = np.linspace(0, len(paths) - 1, MAX_TRAIN_CLIPS).round().astype(int)
        paths = [paths[i] for i in idx]
    frames = []
    for path in paths:
        try:
            frames.append(logmel_db(load(path, sr=sr, channel=run.channel()), sr))
        except AudioError as exc:
            log.warning("explanations: %s", exc)
    if not frames:
        raise DetectorError(run.root, f"no readable normal training clip of {machine!r} "
                            "for explanations")
    allf = np.concatenate(frames, axis=1)
    stats = NormalStats(allf.mean(axis=1), allf.std(axis=1), sr, len(frames))
    if store:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, mean=stats.mean, std=stats.std, sr=np.int64(sr),
                     clips=np.int64(stats.clips))
    return stats


@dataclass(frozen=True)
class Explanation:
    """A clip's deviation map and its per-window scores.

    Attributes:
        logmel: The clip's log-mel spectrogram (dB) ``[bins, frames]``.
        deviation: Where it deviates ``[bins, frames]``: ``|z|`` against the normal
            per-bin statistics, or the detector's own ``explain_signal`` map.
        source: ``"logmel-zscore"`` or ``"detector"``.
        duration: Clip length (s).
        sr: Sample rate.
        window_starts: Start (s) of each short window scored.
        window_ends: End (s) of each window.
        window_scores: The detector's score of each window.
        score: The whole clip's score (NaN if not given).
        threshold: The decision threshold (NaN if none).
    """

    logmel: np.ndarray
    deviation: np.ndarray
    source: str
    duration: float
    sr: int
    window_starts: np.ndarray
    window_ends: np.ndarray
    window_scores: np.ndarray
    score: float = float("nan")
    threshold: float = float("nan")

    @property
    def combined(self) -> np.ndarray:
        """The deviation map weighted by each frame's window score (0..1 over the clip)."""
        frames = self.deviation.shape[1]
        if self.window_scores.size < 2 or np.ptp(self.window_scores) == 0:
            return self.deviation
        t = (np.arange(frames) + 0.5) * self.duration / max(frames, 1)
        mids = (self.window_starts + self.window_ends) / 2
        w = np.interp(t, mids, self.window_scores)
        w = (w - self.window_scores.min()) / np.ptp(self.window_scores)
        return self.deviation * w[None, :]

    def top_band(self) -> tuple[float, float]:
        """The time (s) and frequency (Hz) where the deviation is largest."""
        import librosa

        dev = self.combined
        b, f = np.unravel_index(int(np.argmax(dev)), dev.shape)
        freqs = librosa.mel_frequencies(n_mels=dev.shape[0] + 2, fmax=self.sr / 2)[1:-1]
        return float((f + 0.5) * self.duration / dev.shape[1]), float(freqs[b])


def _windows(duration: float) -> tuple[float, float]:
    win = min(duration, max(duration / 5.0, 0.25))
    return win, max(win / 2.0, 1e-3)


def explain_clip(
    detector: Any,
    signal: np.ndarray,
    sr: int,
    stats: NormalStats | None,
    *,
    score: float = float("nan"),
    threshold: float = float("nan"),
    context: RunContext | None = None,
) -> Explanation:
    """Explain one clip: a time-frequency deviation map and per-window scores.

    Frequency resolution comes from the clip's log-mel deviation (``|z|`` per mel bin and
    frame against the normal clips' per-bin statistics), time resolution from the
    detector's scores of short sliding windows (``score_signals``). A detector with an
    ``explain_signal(signal, sr)`` method returning a ``[bins, frames]`` map gives its
    own map instead.

    Args:
        detector: A fitted detector.
        signal: The clip, mono float32 at ``sr``.
        sr: Sample rate.
        stats: Normal statistics (:func:`normal_stats`); needed unless the detector
            explains itself.
        score: The clip's score, shown in the picture.
        threshold: The decision threshold, shown in the picture.
        context: Run settings the window scores are computed with (the device).
    """
    x = np.asarray(signal, dtype=np.float32).reshape(-1)
    duration = len(x) / sr
    logmel = logmel_db(x, sr)
    own = getattr(detector, "explain_signal", None)
    if callable(own):
        deviation = np.asarray(own(x, sr), dtype=np.float64)
        if deviation.ndim != 2:
            raise DetectorError(getattr(detector, "name", "detector"),
                                f"explain_signal gave shape {deviation.shape}, expected 2-D")
        source = "detector"
    else:
        if stats is None:
            raise DetectorError("explain", "normal statistics needed for a log-mel explanation")
        deviation = np.clip(np.abs(stats.zscore(logmel)), 0.0, Z_CLIP)
        source = "logmel-zscore"
    win, hop = _windows(duration)
    n = int(len(x))
    w, h = max(1, int(round(win * sr))), max(1, int(round(hop * sr)))
    starts = list(range(0, max(n - w, 0) + 1, h))
    if starts and starts[-1] + w < n:
        starts.append(n - w)
    pieces = [x[s:s + w] for s in starts]
    try:
        wscores = np.asarray(detector.score_signals(pieces, sr, context), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - a detector may refuse short windows
        log.info("explanations: window scores unavailable (%s)", exc)
        starts, wscores = [], np.zeros(0)
    st = np.asarray(starts, dtype=np.float64) / sr
    return Explanation(logmel, deviation, source, duration, sr, st, st + w / sr, wscores,
                       float(score), float(threshold))


def plot_explanation(explanation: Explanation, path: str | os.PathLike[str],
                     title: str = "") -> Path:
    """Draw an explanation as a PNG: spectrogram, deviation map, window scores, with axes.

    Returns:
        The PNG path (written atomically).
    """
    import librosa
    from matplotlib.figure import Figure

    ex = explanation
    fig = Figure(figsize=(9, 6.4), dpi=90)
    grid = fig.subplots(3, 2, gridspec_kw={"height_ratios": [3, 3, 1.6],
                                           "width_ratios": [50, 1]})
    axes = grid[:, 0]
    axes[1].sharex(axes[0])
    axes[2].sharex(axes[0])
    grid[2, 1].axis("off")
    n_mels = ex.logmel.shape[0]
    freqs = librosa.mel_frequencies(n_mels=n_mels + 2, fmax=ex.sr / 2)[1:-1]
    ticks = [i for i in np.linspace(0, n_mels - 1, 6).round().astype(int)]
    extent = (0.0, ex.duration, 0.0, float(n_mels))
    im0 = axes[0].imshow(ex.logmel, origin="lower", aspect="auto", extent=extent,
                         cmap="magma", interpolation="nearest")
    axes[0].set_title("log-mel spectrogram", fontsize=10, loc="left")
    cb0 = fig.colorbar(im0, cax=grid[0, 1])
    cb0.set_label("dB")
    dev = ex.deviation
    dev_extent = (0.0, ex.duration, 0.0, float(dev.shape[0]))
    im1 = axes[1].imshow(dev, origin="lower", aspect="auto", extent=dev_extent, cmap="inferno",
                         vmin=0.0, vmax=max(float(np.nanmax(dev)) if dev.size else 1.0, 1e-6),
                         interpolation="nearest")
    what = ("deviation from normal (|z| per mel bin)" if ex.source == "logmel-zscore"
            else "detector's deviation map")
    axes[1].set_title(what, fontsize=10, loc="left")
    cb1 = fig.colorbar(im1, cax=grid[1, 1])
    cb1.set_label("|z|" if ex.source == "logmel-zscore" else "deviation")
    for ax, bins in ((axes[0], n_mels), (axes[1], dev.shape[0])):
        if bins == n_mels:
            ax.set_yticks([t + 0.5 for t in ticks])
            ax.set_yticklabels([f"{freqs[t]:.0f}" for t in ticks])
            ax.set_ylabel("frequency (Hz)")
        else:
            ax.set_ylabel("bin")
    ax = axes[2]
    if ex.window_scores.size:
        mids = (ex.window_starts + ex.window_ends) / 2
        ax.plot(mids, ex.window_scores, "o-", ms=3, lw=1, color="tab:blue",
                label="window score")
        if not math.isnan(ex.threshold):
            ax.axhline(ex.threshold, color="tab:red", ls="--", lw=1,
                       label=f"threshold {ex.threshold:.4g}")
            over = ex.window_scores > ex.threshold
            for s, e, flag in zip(ex.window_starts, ex.window_ends, over, strict=True):
                if flag:
                    ax.axvspan(s, e, color="tab:red", alpha=0.12, lw=0)
        ax.legend(loc="upper right", fontsize=7)
    else:
        ax.text(0.5, 0.5, "window scores unavailable", ha="center", va="center",
                transform=ax.transAxes, fontsize=8)
    ax.set_ylabel("score")
    ax.set_xlabel("time (s)")
    ax.grid(alpha=0.3)
    head = title
    if not math.isnan(ex.score):
        head += f"  score {ex.score:.4g}"
        if not math.isnan(ex.threshold):
            head += f" (threshold {ex.threshold:.4g})"
    fig.suptitle(head, fontsize=11)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    return out


def _detector_sr(det: Any, default: int) -> int:
    """The sample rate a detector reads audio at (its front-end's, else ``default``)."""
    make = getattr(det, "make_frontend", None)
    if callable(make):
        try:
            return int(make().sr)
        except (AttributeError, TypeError, ValueError):
            pass
    try:
        return int(det.get_params().get("sr") or default)
    except (AttributeError, TypeError, ValueError):
        return default


def explanation_path(folder: str | os.PathLike[str], machine: str, clip_path: str) -> Path:
    """Where the explanation PNG of a scored clip goes: ``<folder>/<machine>__<stem>.png``."""
    stem = _SAFE.sub("_", Path(str(clip_path)).stem) or "clip"
    return Path(folder) / f"{_SAFE.sub('_', machine)}__{stem}.png"


def _scoring_channel(folder: str | os.PathLike[str]) -> int | str | None:
    """The channel the scoring beside ``folder`` (``<scoring>/explain``) read, if recorded."""
    import json

    try:
        value = json.loads((Path(folder).parent / "scoring.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value.get("channel") if isinstance(value, dict) else None


def explain_flagged(
    run: Run,
    table: pd.DataFrame,
    folder: str | os.PathLike[str],
    *,
    detectors: Mapping[str, Any] | None = None,
    deciders: Mapping[str, Any] | None = None,
    context: RunContext | None = None,
    limit: int | None = None,
    rows: Sequence[int] | None = None,
) -> list[Path]:
    """Write explanation PNGs of a scores table's flagged clips (``decision == 1``).

    Args:
        run: The run that scored them.
        table: A scores table with ``decision`` (and ``threshold``) columns.
        folder: Output folder (see :func:`explanation_path`).
        detectors: Loaded detectors by machine (others are loaded).
        deciders: Deciders by machine (unused when the table has ``threshold``).
        context: The run settings of the scoring (its device and audio channel; default:
            the channel the scoring beside ``folder`` recorded, else the run's).
        limit: At most this many clips per machine, highest scores first.
        rows: Explain these row positions instead of the flagged ones.

    Returns:
        The PNGs written (existing ones are kept and returned too).
    """
    dets = dict(detectors or {})
    if context is None:  # the scoring's --channel, else the run's
        context = run_context_for(run, channel=_scoring_channel(folder))
    picked = table.iloc[list(rows)] if rows is not None else table[table["decision"] == 1]
    picked = picked.sort_values("score", ascending=False, kind="stable")
    written: list[Path] = []
    for machine, part in picked.groupby("machine", sort=True):
        machine = str(machine)
        if limit is not None:
            part = part.head(limit)
        todo = [(r, explanation_path(folder, machine, r["path"]))
                for r in part.to_dict("records")]
        todo_new = [(r, p) for r, p in todo if not p.is_file()]
        written += [p for _, p in todo if p.is_file()]
        if not todo_new:
            continue
        det = dets.get(machine)
        if det is None:
            det = load_run_detector(run, machine)
            dets[machine] = det
        sr = _detector_sr(det, DEFAULT_SR)
        stats = None
        if not callable(getattr(det, "explain_signal", None)):
            try:
                stats = normal_stats(run, machine, sr)
            except DetectorError as exc:
                log.warning("no explanations for %s: %s", machine, exc)
                continue
        threshold = float("nan")
        if deciders and machine in deciders:
            threshold = float(deciders[machine].threshold)
        for rec, png in todo_new:
            thr = rec.get("threshold", threshold)
            thr = threshold if thr is None or (isinstance(thr, float) and math.isnan(thr)) \
                else float(thr)
            try:
                signal = load(rec["path"], sr=sr, channel=context.channel)
            except AudioError as exc:
                log.warning("no explanation: %s", exc)
                continue
            ex = explain_clip(det, signal, sr, stats, score=float(rec["score"]), threshold=thr,
                              context=context)
            plot_explanation(ex, png, title=f"{machine}: {Path(str(rec['path'])).name}")
            written.append(png)
    return written
