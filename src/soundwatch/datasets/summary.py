"""Counts, durations and audio formats of a set of clips (what `soundwatch inspect` shows)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundwatch.audio import AudioInfo, info
from soundwatch.datasets.clip import ANOMALY, NORMAL, Clip
from soundwatch.datasets.discovery import Discovery, scan
from soundwatch.datasets.names import python_strings
from soundwatch.errors import SoundwatchError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["GROUP_COLUMNS", "DatasetReport", "DatasetSummary", "inspect_dataset", "summary"]

GROUP_COLUMNS = ["machine", "section", "domain", "split", "label"]
"""Columns the summary table counts clips by."""

_LABEL_NAMES = {NORMAL: "normal", ANOMALY: "anomaly"}
_HEADER_THREADS = 8


@dataclass
class DatasetSummary:
    """Clip counts per group, plus durations and audio formats.

    Attributes:
        table: One row per machine x section x domain x split x label with columns
            :data:`GROUP_COLUMNS` + ``clips``, ``seconds`` (``None`` when headers were
            not read), ``sample_rates`` and ``channels`` (comma-separated values seen).
        total_clips: Number of clips.
        total_seconds: Summed duration of the readable clips (``None`` if not read).
        sample_rates: Clip count per sample rate.
        channels: Clip count per channel count.
        bad: ``(path, reason)`` for each clip whose header cannot be read.
    """

    table: pd.DataFrame
    total_clips: int
    total_seconds: float | None = None
    sample_rates: dict[int, int] = field(default_factory=dict)
    channels: dict[int, int] = field(default_factory=dict)
    bad: list[tuple[Path, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready values."""
        rows = self.table.astype(object).where(self.table.notna(), None).to_dict("records")
        return {
            "total_clips": self.total_clips,
            "total_seconds": self.total_seconds,
            "sample_rates": {str(k): v for k, v in self.sample_rates.items()},
            "channels": {str(k): v for k, v in self.channels.items()},
            "groups": rows,
            "bad": [{"path": str(p), "reason": r} for p, r in self.bad],
        }


def _read_header(path: Path) -> AudioInfo | str:
    try:
        return info(path)
    except SoundwatchError as exc:
        return exc.reason
    except OSError as exc:  # pragma: no cover - info() maps OS errors itself
        return exc.strerror or str(exc)


def summary(clips: Sequence[Clip], audio_info: bool = True) -> DatasetSummary:
    """Count clips by machine, section, domain, split and label; read their headers.

    Only headers are read (no decoding). A file whose header cannot be read is listed
    in ``bad`` and left out of durations and formats, never raised.

    Args:
        clips: The clips, e.g. from :func:`~soundwatch.datasets.discover`.
        audio_info: Read headers for durations, sample rates and channel counts.

    Returns:
        The summary.
    """
    import pandas as pd

    python_strings(pd)  # machine names from non-UTF-8 folder names
    headers: list[AudioInfo | str | None] = [None] * len(clips)
    if audio_info and clips:
        workers = min(_HEADER_THREADS, max(1, len(clips) // 64), os.cpu_count() or 1)
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                headers = list(pool.map(_read_header, [c.path for c in clips]))
        else:
            headers = [_read_header(c.path) for c in clips]

    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    rates: Counter[int] = Counter()
    channels: Counter[int] = Counter()
    bad: list[tuple[Path, str]] = []
    total = 0.0
    for clip, head in zip(clips, headers, strict=True):
        key = (clip.machine, clip.section, clip.domain, clip.split,
               _LABEL_NAMES.get(clip.label) if clip.label is not None else None)
        group = groups.setdefault(key, {"clips": 0, "seconds": 0.0, "rates": set(),
                                        "channels": set()})
        group["clips"] += 1
        if isinstance(head, str):
            bad.append((clip.path, head))
        elif head is not None:
            group["seconds"] += head.duration
            group["rates"].add(head.samplerate)
            group["channels"].add(head.channels)
            rates[head.samplerate] += 1
            channels[head.channels] += 1
            total += head.duration

    def order(key: tuple[Any, ...]) -> tuple[str, ...]:
        return tuple("" if v is None else str(v) for v in key)

    rows = []
    for key in sorted(groups, key=order):
        group = groups[key]
        rows.append({
            **dict(zip(GROUP_COLUMNS, key, strict=True)),
            "clips": group["clips"],
            "seconds": round(group["seconds"], 3) if audio_info else None,
            "sample_rates": ",".join(str(r) for r in sorted(group["rates"])) or None,
            "channels": ",".join(str(c) for c in sorted(group["channels"])) or None,
        })
    columns = [*GROUP_COLUMNS, "clips", "seconds", "sample_rates", "channels"]
    table = pd.DataFrame(rows, columns=columns)
    return DatasetSummary(
        table=table,
        total_clips=len(clips),
        total_seconds=round(total, 3) if audio_info else None,
        sample_rates=dict(sorted(rates.items())),
        channels=dict(sorted(channels.items())),
        bad=bad,
    )


@dataclass
class DatasetReport:
    """A dataset's discovery and summary together (what `soundwatch inspect` prints).

    Attributes:
        discovery: The clips and the files left out.
        summary: Counts, durations and formats.
    """

    discovery: Discovery
    summary: DatasetSummary

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values."""
        found = self.discovery
        return {
            "root": str(found.root),
            "clips": len(found.clips),
            "machines": found.machines,
            "layouts": found.layouts,
            **{k: v for k, v in self.summary.to_dict().items() if k != "total_clips"},
            "unknown": [{"path": str(p), "reason": r} for p, r in found.unknown],
            "ignored_non_audio": found.ignored,
        }


def inspect_dataset(
    root: str | os.PathLike[str],
    ground_truth: str | os.PathLike[str] | None = None,
    audio_info: bool = True,
) -> DatasetReport:
    """Scan a dataset folder and summarise it.

    Args:
        root: Dataset folder.
        ground_truth: Folder of ground-truth CSVs for evaluation sets.
        audio_info: Read headers for durations, sample rates and channel counts.

    Returns:
        The report.

    Raises:
        DatasetError: As :func:`~soundwatch.datasets.scan`.
    """
    found = scan(root, ground_truth=ground_truth)
    return DatasetReport(found, summary(found.clips, audio_info=audio_info))
