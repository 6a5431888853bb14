"""Find the audio files of a dataset folder and tell what each one is (layout detection)."""

from __future__ import annotations

import logging
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from soundwatch.datasets.clip import Clip
from soundwatch.datasets.metadata import GroundTruth, read_attribute_csv, read_ground_truth
from soundwatch.datasets.names import (
    AUDIO_EXTENSIONS,
    LABEL_FOLDERS,
    SPLIT_FOLDERS,
    parse_dcase2020_eval_name,
    parse_dcase2020_name,
    parse_labelled_path,
    parse_mimii_path,
    parse_section_name,
)
from soundwatch.datasets.recent import RECENT_LAYOUTS, classify_supplemental, mark_two_channel
from soundwatch.errors import DatasetError

__all__ = [
    "LAYOUTS",
    "Discovery",
    "classify",
    "discover",
    "scan",
]

log = logging.getLogger(__name__)

LAYOUTS = {
    "dcase2020": "DCASE 2020 Task 2 development: "
    "<machine>/{train,test}/{normal,anomaly}_id_XX_N.wav",
    "dcase2020-eval": "DCASE 2020 Task 2 evaluation: <machine>/test/id_XX_N.wav",
    "dcase-dev": "DCASE 2021-2024 development: <machine>/{train,test}/"
    "section_XX_<domain>_<split>_<label>_NNNN[_key_value...].wav",
    "dcase-eval": "DCASE 2021-2024 evaluation: <machine>/test/section_XX_NNNN.wav",
    "mimii": "MIMII raw: [<snr>_dB_<machine>/]<machine>/id_XX/{normal,abnormal}/N.wav",
    "labelled": "labelled folders: <task>/{train,test}/{0,1,normal,anomaly,abnormal}/*.wav",
    **RECENT_LAYOUTS,
}
"""Name of each layout :func:`scan` recognises, with its shape."""

OTHER_AUDIO_EXTENSIONS = frozenset(
    {".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".wma", ".au", ".caf"}
)
"""Audio extensions that no layout reads: reported as unknown instead of ignored."""

_SKIPPED_FOLDERS = frozenset({"__MACOSX", "__pycache__"})
_SHOWN_UNKNOWN = 5


@dataclass
class Discovery:
    """What :func:`scan` found under a dataset root.

    Attributes:
        root: The dataset root (absolute).
        clips: Recognised clips, sorted by path.
        unknown: ``(path, reason)`` for each audio file that no layout recognises (and
            folders that could not be listed).
        ignored: Number of non-audio files skipped (CSV, JSON, README...).
        ground_truth: The ground truth joined, if any was given.
    """

    root: Path
    clips: list[Clip] = field(default_factory=list)
    unknown: list[tuple[Path, str]] = field(default_factory=list)
    ignored: int = 0
    ground_truth: GroundTruth | None = None

    @property
    def layouts(self) -> dict[str, int]:
        """Number of clips per layout name."""
        return dict(sorted(Counter(c.layout for c in self.clips).items()))

    @property
    def machines(self) -> list[str]:
        """Sorted machine types."""
        return sorted({c.machine for c in self.clips})


def _machine_dir(path: Path) -> Path:
    """The machine folder of a DCASE file: the folder holding its split folder."""
    parent = path.parent
    return parent.parent if parent.name in SPLIT_FOLDERS else parent


def _folder_name(folder: Path, fallback: str) -> str:
    return folder.name or fallback


def _folder_split(path: Path) -> str | None:
    name = path.parent.name
    if name in ("train", "test"):
        return name
    if name in ("source_test", "target_test"):
        return "test"
    return None


def classify(path: str | os.PathLike[str]) -> Clip | str:
    """Tell what one audio file is from its name and the folders above it.

    Pure with respect to the file system: only the path's text is used. The path should
    be absolute, so that folders above a dataset root (the machine folder when the root
    is a split folder) still give context.

    Args:
        path: The audio file.

    Returns:
        The :class:`Clip` (without attribute-CSV or ground-truth information), or the
        reason why no layout recognises it.
    """
    path = Path(path)
    parts = path.parts
    name = path.name

    labelled = parse_labelled_path(parts)
    if labelled is not None:
        machine = labelled["machine"] or "task"
        return Clip(path, machine, split=labelled["split"], label=labelled["label"],
                    section="00", domain="source", layout="labelled")

    mimii = parse_mimii_path(parts)
    if mimii is not None:
        machine = mimii["machine"] or "unknown"
        return Clip(path, machine, split=None, label=mimii["label"], section=mimii["section"],
                    domain="source", machine_id=mimii["machine_id"],
                    attributes=mimii["attributes"], layout="mimii")

    supplemental = classify_supplemental(path)  # DCASE 2025 (datasets/recent.py)
    if supplemental is not None:
        return supplemental

    machine = _folder_name(_machine_dir(path), "unknown")
    for parser, layout in ((parse_dcase2020_name, "dcase2020"),
                           (parse_dcase2020_eval_name, "dcase2020-eval")):
        parsed = parser(name)
        if parsed is not None:
            split = _folder_split(path)
            if layout == "dcase2020-eval" and split is None:
                split = "test"
            return Clip(path, machine, split=split, label=parsed["label"],
                        section=parsed["section"], domain="source",
                        machine_id=parsed["machine_id"], attributes=parsed["attributes"],
                        layout=layout)

    section = parse_section_name(name)
    if section is not None:
        split = section["split"] or _folder_split(path)
        labelled_name = section["label"] is not None
        if split is None and not labelled_name:
            split = "test"
        domain = section["domain"]
        if domain is None and path.parent.name in ("source_test", "target_test"):
            domain = path.parent.name.split("_")[0]
        return Clip(path, machine, split=split, label=section["label"],
                    section=section["section"], domain=domain,
                    attributes=section["attributes"],
                    layout="dcase-dev" if labelled_name else "dcase-eval")

    if name.startswith("section_"):
        return ("section name not understood (expected "
                "section_XX_[source|target_][train|test_][normal|anomaly_]NNNN[_key_value...])")
    if path.parent.name.lower() in LABEL_FOLDERS:
        return (f"label folder '{path.parent.name}' is not inside a train/test folder "
                "(labelled layout) or an id_XX folder (MIMII layout)")
    return "file name matches no known layout (see `soundwatch inspect --help`)"


def _walk(root: Path, discovery: Discovery) -> tuple[list[Path], list[Path]]:
    """Audio files and other-audio files under ``root``; counts ignored files."""
    audio: list[Path] = []
    other: list[Path] = []
    seen: set[str] = set()

    def on_error(exc: OSError) -> None:
        discovery.unknown.append((Path(exc.filename or root), f"cannot list folder: "
                                  f"{exc.strerror or exc}"))

    for folder, dirs, files in os.walk(root, onerror=on_error, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symbolic link back into the tree
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_FOLDERS)
        for file in sorted(files):
            if file.startswith("."):
                continue
            ext = os.path.splitext(file)[1].lower()
            if ext in AUDIO_EXTENSIONS:
                audio.append(Path(folder) / file)
            elif ext in OTHER_AUDIO_EXTENSIONS:
                other.append(Path(folder) / file)
            else:
                discovery.ignored += 1
    return audio, other


def _merge_attribute_tables(clips: list[Clip]) -> list[Clip]:
    """Merge ``attributes_*.csv`` found in each DCASE machine folder into its clips."""
    by_dir: dict[Path, list[int]] = defaultdict(list)
    for i, clip in enumerate(clips):
        if clip.layout in ("dcase-dev", "dcase-eval", "dcase2025-supplemental"):
            by_dir[_machine_dir(clip.path)].append(i)
    for folder, indices in by_dir.items():
        tables = sorted(folder.glob("attributes_*.csv"))
        if not tables:
            continue
        by_rel: dict[str, int] = {}
        by_base: dict[str, list[int]] = defaultdict(list)
        for i in indices:
            rel = clips[i].path.relative_to(folder).as_posix()
            by_rel[rel] = i
            by_base[clips[i].path.name].append(i)
        unmatched = 0
        for table_path in tables:
            try:
                table = read_attribute_csv(table_path)
            except DatasetError as exc:
                log.warning("%s; attribute table ignored", exc)
                continue
            for file_name, attrs in table.items():
                pieces = file_name.split("/")
                index = by_rel.get("/".join(pieces[-2:]))
                if index is None and len(by_base.get(pieces[-1], [])) == 1:
                    index = by_base[pieces[-1]][0]
                if index is None:
                    unmatched += 1
                    continue
                if attrs:
                    clip = clips[index]
                    clips[index] = clip.with_(attributes={**clip.attributes, **attrs})
        if unmatched:
            log.info("%s: %d attribute row(s) match no audio file found (partial data set?)",
                     folder, unmatched)
    return clips


def _join_ground_truth(clips: list[Clip], truth: GroundTruth) -> list[Clip]:
    """Fill labels, domains and attributes of clips from ground-truth tables."""
    used: set[tuple[str, str]] = set()
    conflicts = 0
    for i, clip in enumerate(clips):
        key = (clip.machine.casefold(), clip.file_name)
        changes: dict[str, object] = {}
        full = truth.full_names.get(key)
        if full is not None:
            used.add(key)
            parsed = parse_section_name(full)
            if parsed is not None:
                if clip.label is None and parsed["label"] is not None:
                    changes["label"] = parsed["label"]
                if clip.domain is None and parsed["domain"] is not None:
                    changes["domain"] = parsed["domain"]
                if parsed["attributes"]:
                    changes["attributes"] = {**parsed["attributes"], **clip.attributes}
        for name, known in (("label", truth.labels), ("domain", truth.domains)):
            value = known.get(key)
            if value is not None:
                used.add(key)
                if getattr(clip, name) is None:
                    changes[name] = value
                elif getattr(clip, name) != value:
                    conflicts += 1
        if changes:
            clips[i] = clip.with_(**changes)
    if conflicts:
        log.warning("%d ground-truth value(s) disagree with what file names say; "
                    "the file names were kept", conflicts)
    unused = len(truth) - len(used)
    if unused:
        log.info("%d ground-truth row(s) match no clip found", unused)
    missing = sum(1 for c in clips if c.label is None)
    if missing:
        log.warning("%d clip(s) still have no label after joining the ground truth", missing)
    return clips


def _log_unknown(root: Path, unknown: list[tuple[Path, str]]) -> None:
    if not unknown:
        return
    for path, reason in unknown:
        log.info("unknown file %s: %s", path, reason)
    shown = "; ".join(f"{p.relative_to(root) if p.is_relative_to(root) else p} ({r})"
                      for p, r in unknown[:_SHOWN_UNKNOWN])
    more = f"; and {len(unknown) - _SHOWN_UNKNOWN} more" if len(unknown) > _SHOWN_UNKNOWN else ""
    log.warning("%s: %d audio file(s) not recognised, left out: %s%s",
                root, len(unknown), shown, more)


def scan(
    root: str | os.PathLike[str],
    ground_truth: str | os.PathLike[str] | None = None,
) -> Discovery:
    """Find and classify every audio file under ``root``.

    ``root`` may hold several machine types, one machine type's folder, one split
    folder, a MIMII SNR folder or a labelled-folders task. Files are classified one by
    one (see :data:`LAYOUTS`), so layouts may be mixed. DCASE ``attributes_*.csv``
    tables beside the data are merged into the clips' attributes; ground truth (see
    :func:`~soundwatch.datasets.metadata.read_ground_truth`) fills labels and domains
    of evaluation clips. Audio files no layout recognises are returned in
    ``unknown`` and logged (a warning with their count); non-audio files are skipped.

    Args:
        root: Dataset folder.
        ground_truth: Folder of ground-truth CSVs for evaluation sets.

    Returns:
        The clips (sorted by path) and the files left out.

    Raises:
        DatasetError: ``root`` is missing, not a folder, or holds no audio file; the
            ground-truth folder is missing or holds no ground-truth CSV.
    """
    root = Path(os.path.abspath(root))
    if not root.exists():
        raise DatasetError(root, "no such folder")
    if not root.is_dir():
        raise DatasetError(root, "not a folder (give the dataset's folder)")
    truth = read_ground_truth(ground_truth) if ground_truth is not None else None
    discovery = Discovery(root=root, ground_truth=truth)
    audio, other = _walk(root, discovery)
    if not audio:
        if discovery.unknown:  # folders that could not be listed
            where, reason = discovery.unknown[0]
            raise DatasetError(root, f"no audio files found; {len(discovery.unknown)} folder(s) "
                               f"could not be listed ({where}: {reason})")
        if other:
            kinds = ", ".join(sorted({p.suffix.lower() for p in other}))
            raise DatasetError(root, f"no audio files found (.wav, .flac); {len(other)} file(s) "
                               f"in unsupported formats ({kinds})")
        raise DatasetError(root, "no audio files found (.wav, .flac)")
    clips: list[Clip] = []
    for path in audio:
        result = classify(path)
        if isinstance(result, Clip):
            clips.append(result)
        else:
            discovery.unknown.append((path, result))
    for path in other:
        discovery.unknown.append(
            (path, f"unsupported audio format ({path.suffix.lower()}); convert to WAV or FLAC"))
    clips = _merge_attribute_tables(clips)
    clips = mark_two_channel(clips)  # DCASE 2026 (datasets/recent.py)
    if truth is not None:
        clips = _join_ground_truth(clips, truth)
    discovery.clips = sorted(clips, key=lambda c: str(c.path))
    discovery.unknown.sort(key=lambda item: str(item[0]))
    _log_unknown(root, discovery.unknown)
    log.info("%s: %d clip(s) found (%s)", root, len(discovery.clips),
             ", ".join(f"{k} {v}" for k, v in discovery.layouts.items()))
    return discovery


def discover(
    root: str | os.PathLike[str],
    ground_truth: str | os.PathLike[str] | None = None,
) -> list[Clip]:
    """The clips of a dataset folder (see :func:`scan`; unknown files are logged).

    Args:
        root: Dataset folder.
        ground_truth: Folder of ground-truth CSVs for evaluation sets.

    Returns:
        The recognised clips, sorted by path.

    Raises:
        DatasetError: As :func:`scan`, and when audio files exist but none of them is
            in a known layout.
    """
    found = scan(root, ground_truth=ground_truth)
    if not found.clips:
        path, reason = found.unknown[0]
        raise DatasetError(found.root, f"{len(found.unknown)} audio file(s) found but none is in "
                           f"a known layout (e.g. {path.name}: {reason})")
    return found.clips
