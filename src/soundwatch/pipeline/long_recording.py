"""Scoring one long recording in sliding windows: decisions, events and a report."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundwatch.atomic import atomic_open, atomic_path
from soundwatch.audio import DEFAULT_SR, MIN_SECONDS, info, stream
from soundwatch.decisions import section_of_path
from soundwatch.detectors.loading import load_run_detector, run_context_for
from soundwatch.errors import ConfigError, DetectorError
from soundwatch.events import merge_events, write_events
from soundwatch.pipeline.common import check_policy
from soundwatch.pipeline.scoring import NAME_CHARS, new_scoring_dir, scoring_name
from soundwatch.run_decisions import machine_decider
from soundwatch.runs import Run
from soundwatch.sensor import check_signal, rate_problem

if TYPE_CHECKING:
    import pandas as pd


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowScores:
    """Scores, decisions and events of a long recording's sliding windows.

    Attributes:
        csv_path: Time series CSV (``start_s,end_s,score,threshold,decision,percentile,
            status,status_reason``).
        png_path: Plot of the score over time with the threshold and the events shaded
            (``None`` if not drawn).
        machine: The machine type whose detector scored the windows.
        windows: Number of windows scored.
        starts: Window start times (s).
        ends: Window end times (s).
        scores: Window scores (higher = more anomalous).
        threshold: The detector's threshold (NaN when it has none).
        decisions: 1 per anomalous window.
        percentiles: Each window's percentile among the normal training scores.
        events: Flagged windows merged into events (:class:`soundwatch.events.Event`).
        events_csv: The events as CSV.
        events_json: The events as JSON.
        statuses: Each window's sensor status (``ok`` or ``sensor``; a ``sensor``
            window, e.g. a silent stretch, is never flagged).
        reasons: Why, per window (``""`` when ok).
    """

    csv_path: Path
    png_path: Path | None
    machine: str
    windows: int
    starts: tuple[float, ...]
    ends: tuple[float, ...]
    scores: tuple[float, ...]
    threshold: float = float("nan")
    decisions: tuple[int, ...] = ()
    percentiles: tuple[float, ...] = ()
    events: tuple[Any, ...] = ()
    events_csv: Path | None = None
    events_json: Path | None = None
    statuses: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """The time series as a DataFrame (the CSV's columns)."""
        import pandas as pd

        n = len(self.scores)
        return pd.DataFrame({
            "start_s": self.starts, "end_s": self.ends, "score": self.scores,
            "threshold": [self.threshold] * n,
            "decision": self.decisions or (0,) * n,
            "percentile": self.percentiles or (float("nan"),) * n,
            "status": self.statuses or ("ok",) * n,
            "status_reason": self.reasons or ("",) * n,
        })


def score_long_recording(
    run_dir: str | os.PathLike[str],
    wav: str | os.PathLike[str],
    window: float,
    hop: float,
    machine: str | None = None,
    out: str | os.PathLike[str] | None = None,
    *,
    batch_windows: int = 64,
    device: str | None = None,
    plot: bool = True,
    gap: float = 0.0,
    threshold: str | None = None,
    channel: int | str | None = None,
) -> WindowScores:
    """Score a long recording in sliding windows: scores, decisions and anomalous events.

    The file is streamed (:func:`soundwatch.audio.stream`): at most ``batch_windows``
    windows are in memory at once, so an hour of audio is fine. Each window gets the
    detector's threshold, a decision and a percentile (:mod:`soundwatch.decisions`);
    flagged windows that overlap or touch are merged into events
    (:func:`soundwatch.events.merge_events`).

    Args:
        run_dir: A run folder written by :func:`train`.
        wav: The recording.
        window: Window length (s); not longer than the recording.
        hop: Step between window starts (s).
        machine: Which trained machine type's detector to use; optional when the run
            has exactly one.
        out: Output folder (default: a new ``<run>/scores/<stem>-<timestamp>/``); files
            are ``<stem>_windows.csv``, ``<stem>_events.csv``, ``<stem>_events.json``
            and ``<stem>_windows.png``.
        batch_windows: Windows scored per call of ``Detector.score_signals``.
        device: Override the detector's device.
        plot: Draw the PNG plot.
        gap: Largest gap (s) between flagged windows merged into one event.
        threshold: Decide with this policy instead of the run's saved rule.
        channel: The audio channel to read (an index or ``"mean"``; default: the one
            the run trained on).

    Returns:
        The window scores, decisions, events and the files written.

    Raises:
        ConfigError: Bad window/hop, a window longer than the recording, or several
            machines trained and none chosen.
        DetectorError: No trained detector (for that machine).
        AudioError: The recording cannot be read.
    """
    import numpy as np


    if not window > 0 or not hop > 0:
        raise ConfigError("--window/--hop", f"must be positive seconds (got {window}, {hop})")
    if window < MIN_SECONDS:  # the same minimum as a whole file (audio.load)
        raise ConfigError("--window", f"{window:g} s is shorter than the minimum clip length "
                          f"of {MIN_SECONDS:g} s")
    if batch_windows < 1:
        raise ConfigError("batch_windows", "must be at least 1")
    run = Run.open(run_dir)
    trained = run.machines()
    if machine is None:
        if len(trained) != 1:
            raise ConfigError(
                "--machine",
                f"the run has {len(trained)} machine types ({', '.join(trained)}); pick one",
            )
        machine = trained[0]
    wav = Path(wav)
    meta = info(wav)
    if window > meta.duration + 1e-9:
        raise ConfigError("--window", f"{window:g} s is longer than {wav} "
                          f"({meta.duration:.2f} s); give a shorter window")
    det = load_run_detector(run, machine)
    context = run_context_for(run, device=device, channel=channel)
    channel = context.channel  # the run's unless given
    policy = None if threshold is None else check_policy(threshold)
    try:
        decider = machine_decider(run, machine, det, policy=policy).for_section(
            section_of_path(wav))
    except DetectorError as exc:
        log.warning("%s: no threshold, no decisions (%s)", machine, exc)
        decider = None
    sr = int(det.make_frontend().sr) if hasattr(det, "make_frontend") else DEFAULT_SR
    if out is not None:
        out_dir = Path(out)
    else:
        out_dir = new_scoring_dir(run, wav.stem)
    name = scoring_name(run, out_dir)
    stem = NAME_CHARS.sub("_", wav.stem) or "recording"
    csv_path = out_dir / f"{stem}_windows.csv"
    threshold = float(decider.threshold) if decider is not None else float("nan")
    starts: list[float] = []
    ends: list[float] = []
    values: list[float] = []
    flags: list[int] = []
    pcts: list[float] = []
    statuses: list[str] = []
    reasons: list[str] = []
    wrong_rate = rate_problem(meta.samplerate, decider.sample_rates if decider is not None else ())
    if wrong_rate:
        log.warning("%s: %s: every window has a sensor status", wav, wrong_rate)

    def flush(batch: list[tuple[float, Any]], writer: Any) -> None:
        scores = np.asarray(det.score_signals([x for _, x in batch], sr, context),
                            dtype=np.float64)
        dec = decider.decide(scores) if decider is not None else np.zeros(len(scores), int)
        pct = decider.percentile(scores) if decider is not None else np.full(len(scores), np.nan)
        for (start, x), value, d, p in zip(batch, scores, dec, pct, strict=True):
            end = start + len(x) / sr
            check = check_signal(x, sr)  # the stretch itself: silent, clipped, DC offset
            reason = "; ".join(r for r in (check.reason, wrong_rate) if r)
            status = "sensor" if reason else "ok"
            d = int(d) if status == "ok" else 0
            starts.append(start)
            ends.append(end)
            values.append(float(value))
            flags.append(d)
            pcts.append(float(p))
            statuses.append(status)
            reasons.append(reason)
            writer.writerow([f"{start:.6g}", f"{end:.6g}", repr(float(value)), repr(threshold),
                             d, f"{float(p):.4g}", status, reason])

    import csv

    with run.step(f"windows/{name}/{wav.name}") as facts, \
            atomic_open(csv_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["start_s", "end_s", "score", "threshold", "decision", "percentile",
                         "status", "status_reason"])
        batch: list[tuple[float, Any]] = []
        for start, samples in stream(wav, window, hop, sr=sr, channel=channel):
            batch.append((start, samples))
            if len(batch) >= batch_windows:
                flush(batch, writer)
                batch = []
        if batch:
            flush(batch, writer)
        facts["windows"] = len(values)
        facts["machine"] = machine
        facts["channel"] = channel
        facts["flagged"] = int(sum(flags))
        facts["sensor"] = statuses.count("sensor")
    events = merge_events(starts, ends, values, flags, gap=gap)
    events_csv, events_json = write_events(
        events, out_dir / f"{stem}_events.csv", out_dir / f"{stem}_events.json",
        file=str(wav.resolve()), machine=machine, window_s=window, hop_s=hop,
        threshold=None if decider is None else threshold,
        policy=None if decider is None else decider.policy, windows=len(values),
        flagged_windows=int(sum(flags)),
    )
    png_path = out_dir / f"{stem}_windows.png" if plot else None
    if png_path is not None:
        _plot_windows(png_path, starts, ends, values, title=f"{wav.name} ({machine})",
                      threshold=threshold, events=events)
    run.info.setdefault("scorings", {})[name] = {
        "kind": "windows", "data": str(wav.resolve()), "machines": [machine],
        "finished": True, "folder": str(out_dir.resolve()), "windows": len(values),
        "events": len(events),
    }
    run.save_info()
    return WindowScores(csv_path, png_path, machine, len(values), tuple(starts), tuple(ends),
                        tuple(values), threshold, tuple(flags), tuple(pcts), tuple(events),
                        events_csv, events_json, tuple(statuses), tuple(reasons))


def _plot_windows(
    path: Path, starts: Sequence[float], ends: Sequence[float], values: Sequence[float],
    title: str, threshold: float = float("nan"), events: Sequence[Any] = (),
) -> None:
    import math

    import numpy as np
    from matplotlib.figure import Figure

    mids = (np.asarray(starts) + np.asarray(ends)) / 2
    fig = Figure(figsize=(10, 3), dpi=100)  # no pyplot: no global backend state
    ax = fig.subplots()
    for i, ev in enumerate(events):
        ax.axvspan(ev.start_s, ev.end_s, color="tab:red", alpha=0.18, lw=0,
                   label="anomalous event" if i == 0 else None)
    ax.plot(mids, values, lw=1, color="tab:blue", label="window score")
    if not math.isnan(threshold):
        ax.axhline(threshold, color="tab:red", ls="--", lw=1, label=f"threshold {threshold:.4g}")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("anomaly score")
    ax.set_title(f"{title}: {len(events)} event(s)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
