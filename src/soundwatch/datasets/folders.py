"""Plain folders of recordings as training data: one machine, one per sub-folder, normal/abnormal.

The known dataset layouts (:data:`soundwatch.datasets.discovery.LAYOUTS`) come first and
are used unchanged whenever they recognise a file. When none does, the files are read
as an engineer keeps them (the layout ``folders``):

- ``DIR`` with ``machine="pumpA"``: every recording under ``DIR`` is normal training
  data of ``pumpA`` (whatever the names, sub-folders included);
- ``DIR/<machine>/...``: one machine per sub-folder of ``DIR``;
- a ``normal/`` folder and an optional ``abnormal/`` (``anomaly/``, ``anomalous/``) one,
  as anomalib's folder datasets: normal recordings train; abnormal ones get the ``test``
  split and label 1, so they never train and only measure detection quality.
  ``DIR/normal`` names the machine after ``DIR``; ``DIR/pumpA/normal`` after ``pumpA``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from soundwatch.datasets.clip import ANOMALY, NORMAL, Clip
from soundwatch.datasets.names import AUDIO_EXTENSIONS, LABEL_FOLDERS
from soundwatch.errors import DatasetError

__all__ = ["FOLDER_LAYOUT", "FOLDER_SHAPES", "discover_training", "layouts_hint"]

log = logging.getLogger(__name__)

FOLDER_LAYOUT = "folders"
"""Layout name of the clips found by :func:`discover_training` in plain folders."""

FOLDER_SHAPES = (
    "DIR --machine NAME (any recordings of one machine)",
    "DIR/<machine>/*.wav",
    "[<machine>/]normal/*.wav (+ abnormal/)",
)
"""The plain-folder shapes :func:`discover_training` reads, as error messages name them."""


class _HoldRecords(logging.Filter):
    """Holds the scan's log records back (replayed when a known layout matched).

    "Not in a known layout" is no news when plain folders read the files after all.
    """

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False


def layouts_hint() -> str:
    """One line naming every layout that training reads (for error messages)."""
    from soundwatch.datasets.discovery import LAYOUTS

    return (f"layouts that train: {'; '.join(FOLDER_SHAPES)}; or a dataset layout "
            f"({', '.join(LAYOUTS)}); see docs/datasets.md")


_WORD_LABELS = {k: v for k, v in LABEL_FOLDERS.items() if not k.isdigit()}
"""normal/abnormal/anomaly/anomalous: the digit folders 0/1 may be days or units here."""


def _label_of(parts: Sequence[str]) -> tuple[int | None, int | None]:
    """The label a label folder among ``parts`` (folders only) gives, and that folder's index."""
    for i in range(len(parts) - 1, -1, -1):
        label = _WORD_LABELS.get(parts[i].lower())
        if label is not None:
            return label, i
    return None, None


def classify_plain(rel: Sequence[str], root_name: str, machine: str | None) -> Clip | str:
    """What a file outside every known layout is, from its path below the data folder.

    Pure: only the path's text is used.

    Args:
        rel: Path components below the data folder, the file name last.
        root_name: The data folder's own name (names the machine of ``DIR/normal/``).
        machine: The machine every recording belongs to (``--machine``), or ``None``.

    Returns:
        The clip (its ``path`` is the relative path; the caller makes it absolute), or
        why it cannot be placed.
    """
    folders = list(rel[:-1])
    label, at = _label_of(folders)
    if machine is None:
        if at is not None:  # <machine>/normal/x.wav, normal/x.wav (DIR names the machine)
            machine = folders[at - 1] if at >= 1 else root_name
        elif folders:
            machine = folders[0]
        else:
            return "directly in the data folder: give --machine NAME to train on it"
    if not machine:
        return "no folder names the machine: give --machine NAME"
    split = "test" if label == ANOMALY else "train"
    return Clip(Path(*rel), machine, split=split,
                label=label if label is not None else None,
                layout=FOLDER_LAYOUT)


def discover_training(
    root: str | os.PathLike[str], machine: str | None = None
) -> list[Clip]:
    """The clips training reads from ``root``: a known layout, else plain folders.

    Args:
        root: The data folder.
        machine: With one machine name (``--machine NAME``) and files outside every
            known layout, all of them are that machine's recordings, unless ``NAME`` is
            one of the sub-folders' names (then it picks that machine, as for datasets).

    Returns:
        The clips, sorted by path. Plain-folder clips have layout ``folders``, split
        ``train`` (normal or unlabelled) or ``test`` (abnormal, never trained on).

    Raises:
        DatasetError: No audio at all, or audio files none of which fits; the message
            names the layouts that would (one line).
    """
    from soundwatch.datasets.discovery import scan

    held = _HoldRecords()
    disc_log = logging.getLogger("soundwatch.datasets.discovery")
    disc_log.addFilter(held)
    try:
        found = scan(root)
    finally:
        disc_log.removeFilter(held)
    if found.clips:  # a known layout: exactly as before, its warnings included
        for record in held.records:
            disc_log.handle(record)
        return found.clips
    files = [p for p, _ in found.unknown if p.suffix.lower() in AUDIO_EXTENSIONS
             and p.is_relative_to(found.root)]
    if not files:
        path, reason = found.unknown[0]
        raise DatasetError(found.root, f"no audio file can be read ({path.name}: {reason}); "
                           f"{layouts_hint()}")
    rels = [p.relative_to(found.root).parts for p in files]
    if machine is not None:
        sub = {r[0] for r in rels if len(r) > 1}
        if machine in sub:  # a sub-folder of that name: pick it, as --machine does
            rels = [r for r in rels if len(r) > 1 and r[0] == machine]
            machine = None
    clips: list[Clip] = []
    left: list[tuple[tuple[str, ...], str]] = []
    for rel in rels:
        result = classify_plain(rel, found.root.name, machine)
        if isinstance(result, Clip):
            clips.append(result.with_(path=found.root.joinpath(*rel)))
        else:
            left.append((rel, result))
    if not clips:
        rel, reason = left[0]
        raise DatasetError(found.root, f"{len(files)} audio file(s) found but none is in a "
                           f"known layout (e.g. {rel[-1]}: {reason}); {layouts_hint()}")
    if left:
        log.warning(
            "%s: %d audio file(s) left out (%s: %s)", found.root, len(left),
            "/".join(left[0][0]), left[0][1])
    if not any(c.label in (None, NORMAL) for c in clips):
        raise DatasetError(found.root, "only abnormal recordings found; training needs normal "
                           f"ones ({layouts_hint()})")
    return sorted(clips, key=lambda c: str(c.path))
