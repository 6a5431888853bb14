"""ExportedDetector: score clips with an exported detector (onnxruntime + numpy, no torch)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from soundwatch.errors import AudioError, ConfigError
from soundwatch.runtime.manifest import (
    INDEX_FILE,
    MANIFEST_FILE,
    read_arrays,
    read_manifest,
)

__all__ = ["ExportedDetector", "ExportedEnsemble", "load", "machines"]

log = logging.getLogger(__name__)

Item = str | os.PathLike[str] | np.ndarray

BATCH_SAMPLES = 1 << 17
"""Most waveform samples given to the graph in one run (about 8 s at 16 kHz)."""

RUNTIME_HINT = "install onnxruntime: pip install onnxruntime (or soundwatch[export])"


def _session(path: Path, threads: int) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ConfigError("onnxruntime", f"not installed; {RUNTIME_HINT}") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not path.is_file():
        raise ConfigError(path, "missing from the export folder")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ConfigError(path, f"onnxruntime cannot load the model: {exc}") from exc


class _Exported:
    """What every export shares: its decision rule, read from the manifest."""

    directory: Path
    manifest: dict[str, Any]
    decider: Any

    def _read_decider(self, train_scores: np.ndarray) -> None:
        import json

        from soundwatch.decisions import Decider

        m = self.manifest
        rule = m["threshold"].get("file")
        if rule:  # the run's rule, with its section thresholds (soundwatch export of a run)
            path = self.directory / str(rule)
            try:
                self.decider = Decider.from_dict(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ConfigError(path, f"unreadable decision rule ({exc})") from exc
            return
        self.decider = Decider(float(m["threshold"]["value"]),
                               np.sort(np.asarray(train_scores, dtype=np.float64)),
                               str(m["threshold"].get("policy", "gamma")))

    @property
    def threshold(self) -> float:
        """The decision threshold (``score > threshold`` is an anomaly)."""
        return self.decider.threshold

    @property
    def train_scores(self) -> np.ndarray:
        """The sorted training scores used for percentiles."""
        return self.decider.train_scores

    def score(self, items: Sequence[Item], sr: int | None = None) -> np.ndarray:
        """Anomaly score per item (see the subclasses)."""
        raise NotImplementedError

    def predict(self, items: Sequence[Item], sr: int | None = None) -> np.ndarray:
        """0/1 per item (1 = anomalous: score above the exported threshold)."""
        return self.decider.decide(self.score(items, sr=sr))

    def percentile(self, scores: np.ndarray | Sequence[float]) -> np.ndarray:
        """Percentile (0-100) of each score among the training scores."""
        return self.decider.percentile(scores)


class ExportedDetector(_Exported):
    """A detector exported by ``soundwatch export``, scored with onnxruntime and numpy.

    The ONNX graph computes the front-end and the network's view for each clip; pooling,
    the scorer (the same numpy code as the trained detector's), the threshold and the
    percentiles run here. Nothing imports torch.

    Args:
        directory: An export folder (holding ``manifest.json``).
        threads: onnxruntime intra-op threads (1 is the fastest on a busy small box).

    Attributes:
        manifest: The export's manifest (sample rate, front-end, detector parameters...).
        sample_rate: Rate the graph expects; other rates are resampled (soxr).
        threshold: Scores above it are anomalous (``predict`` gives 1).
        train_scores: The out-of-fold training scores behind :meth:`percentile`.
    """

    def __init__(self, directory: str | os.PathLike[str], threads: int = 1,
                 channel: int | str | None = None) -> None:
        from soundwatch.detectors.pooling import pool
        from soundwatch.detectors.scorers import create_scorer

        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        m = self.manifest
        self.sample_rate = int(m["sample_rate"])
        self.channel = m.get("channel", 0) if channel is None else channel
        self.min_seconds = float(m.get("min_seconds", 0.05))
        self._pool = pool
        self._session = _session(self.directory / m["model"]["file"], threads)
        self._input = m["model"].get("input", "waveform")
        self._output = m["model"].get("output", "items")
        self._batch = bool(m["model"].get("batch", True))
        scorer = m["scorer"]
        self.scorer = create_scorer(scorer["name"], **scorer.get("params", {}))
        if scorer.get("state"):
            self.scorer.load_state(read_arrays(self.directory / scorer["state"]))
        scores = read_arrays(self.directory / m["train_scores"])[""] if m.get(
            "train_scores") else np.zeros(0)
        self._read_decider(scores)

    def __repr__(self) -> str:
        det = self.manifest.get("detector", {}).get("name", "?")
        return f"ExportedDetector({det!r}, {str(self.directory)!r})"


    # ------------------------------------------------------------------ inputs
    def _signal(self, item: Item, sr: int | None, index: int) -> np.ndarray:
        from soundwatch.audio import load, resample

        if isinstance(item, str | os.PathLike):
            return load(item, sr=self.sample_rate, channel=self.channel,
                        min_seconds=self.min_seconds)
        x = np.asarray(item, dtype=np.float32)
        where = f"signal {index}"
        if x.ndim != 1:
            raise AudioError(where, f"expected a 1-D array of samples, got shape {x.shape}")
        if x.size == 0:
            raise AudioError(where, "zero samples")
        if not np.isfinite(x).all():
            raise AudioError(where, "NaN or Inf samples")
        rate = self.sample_rate if sr is None else int(sr)
        if rate != self.sample_rate:
            try:
                x = resample(x, rate, self.sample_rate)
            except ImportError as exc:
                raise AudioError(where, f"at {rate} Hz, the export expects {self.sample_rate} "
                                 "Hz and soxr (pip install soxr) is not installed to "
                                 "resample") from exc
        return np.ascontiguousarray(x, dtype=np.float32)

    # ------------------------------------------------------------------ pipeline
    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run([self._output], {self._input: batch})[0]

    def views(self, signals: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The graph's per-clip items ``[n, d]`` for waveforms already at ``sample_rate``.

        Clips of equal length run as one batch, up to :data:`BATCH_SAMPLES` samples in
        all (a 10 s clip runs alone: batching saves little there and multiplies the
        network's peak memory).
        """
        out: list[np.ndarray | None] = [None] * len(signals)
        groups: dict[int, list[int]] = {}
        for i, x in enumerate(signals):
            groups.setdefault(len(x) if self._batch else -1 - i, []).append(i)
        for members in groups.values():
            step = max(1, BATCH_SAMPLES // max(1, len(signals[members[0]])))
            for start in range(0, len(members), step):
                chunk = members[start : start + step]
                batch = np.stack([signals[i] for i in chunk]).astype(np.float32, copy=False)
                result = self._run(batch)
                for row, i in enumerate(chunk):
                    item = np.asarray(result[row], dtype=np.float64)
                    out[i] = item.reshape(1, -1) if item.ndim <= 1 else item.reshape(
                        len(item), -1)
        return [x for x in out if x is not None]

    def score_signals(self, signals: Sequence[np.ndarray], sr: int | None = None) -> np.ndarray:
        """Scores of in-memory waveforms (1-D float arrays at ``sr``, default the export's)."""
        return self.score(list(signals), sr=sr)

    def score(self, items: Sequence[Item], sr: int | None = None) -> np.ndarray:
        """Anomaly scores (float64, higher = more anomalous), one per item.

        Args:
            items: Audio file paths, or 1-D float arrays of samples.
            sr: Sample rate of the arrays (default: the export's ``sample_rate``); files
                carry their own rate. Other rates are resampled with soxr.

        Raises:
            AudioError: A file that cannot be read, or a bad array (named by its index).
        """
        if isinstance(items, str | os.PathLike | np.ndarray) and not (
            isinstance(items, np.ndarray) and items.ndim == 2
        ):
            items = [items]
        signals = [self._signal(item, sr, i) for i, item in enumerate(items)]
        if not signals:
            return np.zeros(0)
        pooling = self.manifest["pooling"]
        views = self.views(signals)
        pooled = [self._pool(pooling["name"], v, **pooling.get("params", {})) for v in views]
        return np.asarray(self.scorer.score(pooled), dtype=np.float64).reshape(-1)

    decision_function = score



class ExportedEnsemble(_Exported):
    """An exported ensemble: member exports whose normalised scores are combined.

    Each member's score is expressed against its own training scores (``zscore`` or
    ``percentile``) and the normalised scores are averaged (weighted) or maxed, as
    :class:`soundwatch.detectors.ensemble.EnsembleDetector` does.

    Args:
        directory: The ensemble's export folder (``manifest.json`` + ``member_<i>/``).
        threads: onnxruntime intra-op threads of each member.
    """

    def __init__(self, directory: str | os.PathLike[str], threads: int = 1,
                 channel: int | str | None = None) -> None:
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        m = self.manifest
        self.members = [ExportedDetector(self.directory / name, threads=threads,
                                         channel=channel) for name in m["members"]]
        self.sample_rate = int(m["sample_rate"])
        scores = read_arrays(self.directory / m["train_scores"])[""]
        self._read_decider(scores)

    def __repr__(self) -> str:
        return f"ExportedEnsemble({len(self.members)} members, {str(self.directory)!r})"


    def score(self, items: Sequence[Item], sr: int | None = None) -> np.ndarray:
        """Combined normalised scores, one per item (see :meth:`ExportedDetector.score`)."""
        from soundwatch.detectors.normalize import combine_scores, normalize_scores

        m = self.manifest
        if isinstance(items, str | os.PathLike):
            items = [items]
        rates = {member.sample_rate for member in self.members}
        if len(rates) == 1:  # decode (and resample) each file once for every member
            first = self.members[0]
            items = [first._signal(item, sr, i) for i, item in enumerate(items)]
            sr = first.sample_rate
        if len(items) == 0:
            return np.zeros(0)
        normed = [normalize_scores(member.score(items, sr=sr), member.train_scores,
                                   m["normalize"]) for member in self.members]
        return combine_scores(normed, m["combine"], m.get("weights"))

    decision_function = score

    def score_signals(self, signals: Sequence[np.ndarray], sr: int | None = None) -> np.ndarray:
        """Scores of in-memory waveforms (1-D float arrays at ``sr``, default the export's)."""
        return self.score(list(signals), sr=sr)



def _open(directory: Path, threads: int, channel: int | str | None = None
          ) -> ExportedDetector | ExportedEnsemble:
    if read_manifest(directory).get("kind", "detector") == "ensemble":
        return ExportedEnsemble(directory, threads=threads, channel=channel)
    return ExportedDetector(directory, threads=threads, channel=channel)


def machines(directory: str | os.PathLike[str]) -> list[str]:
    """The machine types of a folder written by ``soundwatch export`` for a whole run."""
    import json

    path = Path(directory) / INDEX_FILE
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text(encoding="utf-8"))["machines"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(path, f"cannot read the index: {exc}") from exc


def load(
    directory: str | os.PathLike[str], machine: str | None = None, threads: int = 1,
    channel: int | str | None = None,
) -> ExportedDetector | ExportedEnsemble:
    """Load an exported detector for scoring.

    Args:
        directory: A folder written by ``soundwatch export``: one detector's folder
            (``manifest.json``), or a run's export with one sub-folder per machine type.
        machine: Which machine type, in a run's export (optional when it holds one).
        threads: onnxruntime intra-op threads.
        channel: The audio channel read from files (an index or ``"mean"``; default: the
            one recorded in the export, the run's).

    Returns:
        An :class:`ExportedDetector` (or :class:`ExportedEnsemble`) with ``score``,
        ``predict`` and ``percentile``.

    Raises:
        ConfigError: Not an export folder, an unknown machine, or onnxruntime missing.
    """
    root = Path(directory)
    if machine is None and (root / MANIFEST_FILE).is_file():
        return _open(root, threads, channel)
    names = machines(root)
    if not names:
        if not root.is_dir():
            raise ConfigError(root, "no such export folder")
        raise ConfigError(root, f"neither {MANIFEST_FILE} nor {INDEX_FILE}: not a soundwatch "
                          "export folder")
    if machine is None:
        if len(names) > 1:
            raise ConfigError(root, f"holds {len(names)} machine types ({', '.join(names)}); "
                              "choose one with machine=")
        machine = names[0]
    if machine not in names:
        raise ConfigError(root, f"no export for machine {machine!r}; it holds "
                          f"{', '.join(names)}")
    return _open(root / machine, threads, channel)
