"""The scoring core of ``watch`` and ``serve``: each run's detectors and deciders, loaded once."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soundwatch.audio import info, load, special_file
from soundwatch.config import parse_channel
from soundwatch.decisions import section_of_path
from soundwatch.detectors.loading import load_run_detector, run_context_for
from soundwatch.errors import AudioError, ConfigError, DetectorError
from soundwatch.run_decisions import machine_decider
from soundwatch.runs import Run
from soundwatch.sensor import check_file, check_signal
from soundwatch.training.context import RunContext

__all__ = [
    "AUDIO_SUFFIXES",
    "LoadedMachine",
    "MachineScorer",
    "Verdict",
    "file_key",
    "guess_machine",
    "load_native",
]

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".aifc"})
"""File name endings the watcher and ``feed`` treat as audio."""


@dataclass(frozen=True)
class Verdict:
    """What one clip's scoring gave.

    Attributes:
        machine: Machine type.
        score: Anomaly score (higher is more anomalous).
        threshold: The machine's decision threshold.
        decision: 1 for an anomaly, else 0.
        percentile: The score's percentile among the normal training clips' scores.
        seconds: The clip's length.
        scoring_s: Wall time of the detector call.
        status: ``"ok"`` or ``"sensor"`` (a sensor problem, :mod:`soundwatch.sensor`:
            decision is 0 whatever the score).
        status_reason: Why, for ``"sensor"`` (``""`` when ok).
        section: The section whose threshold decided (None: the machine type's).
    """

    machine: str
    score: float
    threshold: float
    decision: int
    percentile: float
    seconds: float
    scoring_s: float
    status: str = "ok"
    status_reason: str = ""
    section: str | None = None

    def fields(self) -> dict[str, Any]:
        """The history columns of this verdict."""
        return {"score": self.score, "threshold": self.threshold, "decision": self.decision,
                "percentile": self.percentile, "seconds": self.seconds}


@dataclass
class LoadedMachine:
    """One machine type's loaded detector and decider.

    Attributes:
        machine: Machine type.
        run: The run folder it comes from.
        detector: The loaded detector.
        decider: Its :class:`~soundwatch.decisions.Decider`.
        context: The run context its detector scores with; ``context.channel`` is the
            audio channel its files are read from (the run's, or ``--channel``).
    """

    machine: str
    run: Path
    detector: Any
    decider: Any
    context: RunContext

    @property
    def detector_name(self) -> str:
        """The detector's registry name."""
        return str(getattr(self.detector, "name", type(self.detector).__name__))

    def describe(self) -> dict[str, Any]:
        """JSON-ready facts: machine, run, detector, threshold, policy, false-alarm rate."""
        return {"machine": self.machine, "run": str(self.run), "detector": self.detector_name,
                "threshold": float(self.decider.threshold), "policy": str(self.decider.policy),
                "false_alarm": self.decider.false_alarm.as_dict()}


class MachineScorer:
    """Every machine type of one or more run folders, ready to score clips.

    Detectors and deciders (:func:`soundwatch.run_decisions.machine_decider`) are loaded once.
    Scoring is thread-safe for concurrent callers: detectors are only read.

    Args:
        runs: Run folders written by ``soundwatch train``.
        threshold: Decide with this policy instead of each run's saved rule (refitted on
            the same out-of-fold training scores; ``--threshold`` of watch and serve).
        channel: The audio channel to read from files (an index or ``"mean"``; default:
            each run's own, as it trained).

    Raises:
        ConfigError: No run given, a missing run folder, or a machine type in two runs.
        DetectorError: A run without a trained detector or a fitted threshold.
        EvaluationError: A bad policy.
    """

    def __init__(self, runs: Sequence[str | os.PathLike[str]],
                 threshold: str | None = None,
                 channel: int | str | None = None) -> None:

        if not runs:
            raise ConfigError("RUN", "give at least one run folder")
        self.machines: dict[str, LoadedMachine] = {}
        for root in runs:
            run = Run.open(root)
            context = run_context_for(
                run, channel=None if channel is None else parse_channel(channel))
            for machine in run.machines():
                if machine in self.machines:
                    raise ConfigError(root, f"machine type {machine!r} is also in run "
                                      f"{self.machines[machine].run}; give each type once")
                detector = load_run_detector(run, machine)  # once: the decider reuses it
                decider = machine_decider(run, machine, detector, policy=threshold)
                self.machines[machine] = LoadedMachine(machine, Path(run.root), detector,
                                                       decider, context)
        log.info("loaded %d machine type(s): %s", len(self.machines), ", ".join(self.machines))

    def warm_up(self, seconds: float = 2.0, sr: int = 16000) -> None:
        """Score a little noise with every detector, so the first real clip is not slow.

        The first call of a detector pays for lazy imports and allocations (a second or
        more on a small CPU). Failures are logged, not raised: real clips will tell.
        """
        noise = (0.01 * np.random.default_rng(0).standard_normal(int(seconds * sr)))
        for name in self.machines:
            try:
                self.score_signal(name, noise.astype(np.float32), sr)
            except Exception as exc:  # noqa: BLE001 - a warm-up must never stop the service
                log.warning("%s: warm-up scoring failed (%s)", name, exc)

    def get(self, machine: str) -> LoadedMachine:
        """A loaded machine type.

        Raises:
            DetectorError: No run holds that machine type.
        """
        found = self.machines.get(machine)
        if found is None:
            known = ", ".join(sorted(self.machines)) or "none"
            raise DetectorError(machine, f"unknown machine type (known: {known})")
        return found

    def score_signal(self, machine: str, signal: np.ndarray, sr: int,
                     section: str | None = None, raw: np.ndarray | None = None,
                     check: Any = None) -> Verdict:
        """Score one mono signal, with its sensor check.

        Args:
            machine: Machine type.
            signal: 1-D float32 samples (validated, finite).
            sr: Their sample rate (the detector resamples when it needs another).
            section: The clip's section (its threshold applies), or None.
            raw: All the recording's channels ``(frames, channels)`` for the sensor
                check (default: ``signal``).
            check: A :class:`soundwatch.sensor.SensorCheck` already made (e.g. of the
                whole file), used instead of checking ``raw``/``signal``.

        Returns:
            The verdict.

        Raises:
            DetectorError: Unknown machine type, or the detector gave a non-finite score.
        """
        loaded = self.get(machine)
        start = time.perf_counter()
        scores = np.asarray(loaded.detector.score_signals([signal], int(sr),
                                                       loaded.context), dtype=np.float64)
        elapsed = time.perf_counter() - start
        score = float(scores.reshape(-1)[0])
        if not math.isfinite(score):
            raise DetectorError(machine, f"the detector gave a non-finite score ({score})")

        decider = loaded.decider.for_section(section)
        if check is None:
            check = check_signal(signal if raw is None else raw, int(sr),
                                 loaded.decider.sample_rates)
        decision = int(decider.decide([score])[0]) if check.ok else 0
        return Verdict(machine=machine, score=score, threshold=float(decider.threshold),
                       decision=decision, percentile=float(decider.percentile([score])[0]),
                       seconds=float(signal.shape[0]) / float(sr), scoring_s=elapsed,
                       status=check.status, status_reason=check.reason,
                       section=section if decider is not loaded.decider else None)

    def score_file(self, machine: str, path: str | os.PathLike[str]) -> Verdict:
        """Load (validate) and score one audio file.

        Raises:
            AudioError: The file is not usable audio (one-line reason).
            DetectorError: As in :meth:`score_signal`.
        """
        loaded = self.get(machine)  # an unknown machine before decoding
        signal, sr = load_native(path, loaded.context.channel)
        check = check_file(path, loaded.decider.sample_rates,
                           loaded.context.channel)  # as score does
        return self.score_signal(machine, signal, sr, section=section_of_path(path),
                                 check=check if check.status != "error" else None)


def load_native(path: str | os.PathLike[str], channel: int | str = 0
                ) -> tuple[np.ndarray, int]:
    """Load a clip at its own rate through :func:`soundwatch.audio.load` (all its checks).

    Args:
        path: The audio file.
        channel: The channel to keep (an index or ``"mean"``).

    Returns:
        ``(samples, sample_rate)``.
    """
    meta = info(path)
    return load(path, sr=None, channel=channel), int(meta.samplerate)


def file_key(path: str | os.PathLike[str]) -> tuple[int, int, str]:
    """A file's ``(size, mtime_ns, sha256)``: with its path, the watcher's resume key.

    Raises:
        AudioError: The file cannot be read.
    """
    path = Path(path)
    digest = hashlib.sha256()
    try:
        kind = special_file(os.stat(path).st_mode)
        if kind is not None:  # opening a FIFO would block the watcher until a writer comes
            raise AudioError(path, f"not a regular file: {kind}")
        with open(path, "rb") as handle:
            before = os.fstat(handle.fileno())
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise AudioError(path, exc.strerror or str(exc)) from exc
    return int(before.st_size), int(before.st_mtime_ns), digest.hexdigest()


_TOKEN = re.compile(r"[A-Za-z0-9]+")


def guess_machine(path: str | os.PathLike[str], machines: Iterable[str],
                  root: str | os.PathLike[str] | None = None) -> str:
    """The machine type of a file from its place and name.

    The only machine type when there is one; else a folder below ``root`` named after a
    type (``DIR/fan/...``, the DCASE layouts); else a type named in the file name
    (``fan_0001.wav``, ``section_00_fan_...``).

    Raises:
        ConfigError: No type, or more than one, can be told from the path.
    """
    known = sorted(set(machines))
    path = Path(path)
    if len(known) == 1:
        return known[0]
    parts: Sequence[str] = path.parts[:-1]
    if root is not None:
        try:
            parts = path.relative_to(root).parts[:-1]
        except ValueError:
            pass
    for part in parts:
        if part in known:
            return part
    tokens = {t.lower() for t in _TOKEN.findall(path.stem)}
    hits = [m for m in known if m.lower() in tokens]
    if len(hits) == 1:
        return hits[0]
    raise ConfigError(path, "cannot tell the machine type from the path "
                      f"(known: {', '.join(known) or 'none'}); use --machine")
