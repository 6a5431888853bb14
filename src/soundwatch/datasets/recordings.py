"""Any files or folders of recordings: known layouts keep their metadata, others are test clips."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from soundwatch.audio import special_file
from soundwatch.datasets.clip import Clip
from soundwatch.datasets.discovery import OTHER_AUDIO_EXTENSIONS, classify
from soundwatch.datasets.names import AUDIO_EXTENSIONS
from soundwatch.errors import ConfigError, DatasetError

__all__ = ["ANY_LAYOUT", "READABLE_EXTENSIONS", "collect_recordings", "find_audio_files"]

log = logging.getLogger(__name__)

ANY_LAYOUT = "any"
"""Layout name of a recording no dataset layout recognises."""

READABLE_EXTENSIONS = frozenset(
    {*AUDIO_EXTENSIONS, ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".caf", ".w64", ".rf64"}
)
"""Extensions scored as recordings: every format libsndfile (soundfile) reads."""

_SKIPPED_FOLDERS = frozenset({"__MACOSX", "__pycache__"})


def find_audio_files(root: str | os.PathLike[str]) -> list[Path]:
    """Audio files under a folder (recursive, hidden files and folders left out), sorted.

    Raises:
        DatasetError: The folder cannot be listed.
    """
    found: list[Path] = []
    errors: list[OSError] = []
    for folder, dirs, files in os.walk(root, onerror=errors.append, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_FOLDERS)
        for name in sorted(files):
            if name.startswith("."):
                continue
            if os.path.splitext(name)[1].lower() in READABLE_EXTENSIONS:
                found.append(Path(folder) / name)
    if errors and not found:
        exc = errors[0]
        raise DatasetError(exc.filename or root, f"cannot list folder ({exc.strerror or exc})")
    return sorted(found, key=str)


def _machine_of(clip: Clip | None, path: Path, trained: Sequence[str],
                machine: str | None) -> tuple[str | None, bool]:
    """The machine type a recording belongs to and whether its name said so."""
    if clip is not None and clip.machine in trained:
        return clip.machine, True
    for part in reversed(path.parent.parts):  # a folder named like a trained machine type
        if part in trained:
            return part, True
    if machine is not None:
        return machine, False
    if len(trained) == 1:
        return trained[0], False
    return None, False


def collect_recordings(
    paths: Iterable[str | os.PathLike[str]],
    trained: Sequence[str],
    machine: str | None = None,
) -> list[Clip]:
    """The clips to score among some files and folders of recordings.

    Each audio file found (folders are searched recursively) is classified
    (:func:`~soundwatch.datasets.discovery.classify`): a clip of a known layout keeps its
    metadata (machine, section, domain, label, split); a folder holding known-layout
    test clips gives those only (as ``soundwatch score RUN DATASET`` always did). Any
    other recording becomes a clip of layout ``"any"``, split ``"test"``, label unknown,
    whose machine type is the trained one its path names (a folder called ``fan``), else
    ``machine``, else the run's only machine type.

    Args:
        paths: Files and folders.
        trained: The run's trained machine types.
        machine: The machine type for recordings whose names say nothing (``--machine``).

    Returns:
        Clips sorted by path (duplicates removed).

    Raises:
        DatasetError: A path is missing or holds no audio file.
        ConfigError: A recording's machine type cannot be told (several trained, no
            ``machine``), or ``machine`` is not trained.
    """
    if machine is not None and machine not in trained:
        raise ConfigError("--machine", f"no trained detector for {machine!r} "
                          f"(trained: {', '.join(trained) or 'none'})")
    clips: dict[str, Clip] = {}
    for raw in paths:
        path = Path(os.path.abspath(raw))
        if not path.exists():
            raise DatasetError(path, "no such file or folder")
        kind = special_file(path.stat().st_mode)
        if kind is not None:
            raise DatasetError(path, f"not an audio file or folder: {kind}")
        if path.is_file():
            if path.suffix.lower() in OTHER_AUDIO_EXTENSIONS - READABLE_EXTENSIONS:
                raise DatasetError(path, f"unsupported audio format ({path.suffix.lower()}); "
                                   "convert to WAV or FLAC")
            files, whole = [path], True
        else:
            files, whole = find_audio_files(path), False
            if not files:
                raise DatasetError(path, "no audio files found (.wav, .flac, .ogg, .mp3...)")
        known: list[Clip] = []
        other: list[Path] = []
        for file in files:
            result = classify(file)
            if isinstance(result, Clip):
                known.append(result)
            else:
                other.append(file)
        if known and not whole and any(c.split == "test" for c in known):
            left = [c for c in known if c.split not in ("test", None)]
            if left:
                log.info("%s: %d known-layout clip(s) outside the test split left out",
                         path, len(left))
            known = [c for c in known if c.split in ("test", None)]
        # a dataset holding trained and other machine types: the others keep their own
        # type and are left out by the caller (with a warning), never scored by another
        # type's detector; otherwise (e.g. evaluation files in a folder named anyhow) the
        # type comes from the path, ``machine`` or the run's only one
        mixed = any(c.machine in trained for c in known)
        for clip in known:
            name, _ = _machine_of(clip, clip.path, trained, machine)
            if name is None or (mixed and clip.machine and clip.machine not in trained):
                name = clip.machine
            clips[str(clip.path)] = clip.with_(machine=name)
        for file in other:
            name, _ = _machine_of(None, file, trained, machine)
            if name is None:
                raise ConfigError(
                    "--machine", f"{file}: the run has {len(trained)} machine types "
                    f"({', '.join(trained)}) and the file's name and folders say nothing; "
                    "pick one with --machine")
            clips[str(file)] = Clip(file, name, split="test", label=None, layout=ANY_LAYOUT)
    return sorted(clips.values(), key=lambda c: str(c.path))
