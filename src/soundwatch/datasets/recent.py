"""DCASE 2025 and 2026 Task 2 layouts: supplementary clips and two-channel (near/far) clips.

What the official records and the baseline repository (nttcslab/dcase2023_task2_baseline_ae)
say, and so what this module reads (sources in docs/datasets.md):

* DCASE 2025 development, additional-training and evaluation sets use the DCASE 2024 names
  (``<machine>/{train,test}/section_00_<domain>_<split>_<label>_NNNN_<attrs>.wav``,
  ``<machine>/test/section_00_NNNN.wav``); those clips keep the ``dcase-dev`` /
  ``dcase-eval`` layouts. The additional-training set adds, for some machine types, a
  ``<machine>/supplemental/`` folder of clean machine sounds and noise-only clips
  (``section_00_machine_0001_.wav``; the noise clips ``section_00_noise_NNNN_...``):
  layout ``dcase2025-supplemental``, split ``"supplemental"``, never training or test
  clips of their own.
* DCASE 2026 clips have the same names but every file holds two channels recorded at the
  same time, one microphone near the machine and one far from it. Machine folders whose
  clips have two channels get the layouts ``dcase2026-dev`` / ``dcase2026-eval``, and the
  channels are named (:data:`TWO_CHANNEL_NAMES`). Channel selection itself stays with
  :func:`soundwatch.audio.load`'s ``channel`` (index 0, the near microphone, by default);
  :func:`channel_index` turns a channel name into that index.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

from soundwatch.datasets.clip import NORMAL, Clip
from soundwatch.datasets.names import parse_attribute_tokens, strip_audio_extension
from soundwatch.errors import ConfigError, SoundwatchError

__all__ = [
    "RECENT_LAYOUTS",
    "SUPPLEMENTAL_FOLDER",
    "SUPPLEMENTAL_KINDS",
    "SUPPLEMENTAL_SPLIT",
    "TWO_CHANNEL_NAMES",
    "channel_index",
    "channel_names",
    "classify_supplemental",
    "mark_two_channel",
    "parse_supplemental_name",
    "supplemental_clips",
]

log = logging.getLogger(__name__)

SUPPLEMENTAL_FOLDER = "supplemental"
"""Folder of a DCASE 2025 machine type holding clean-machine and noise-only clips."""

SUPPLEMENTAL_SPLIT = "supplemental"
"""Split of the supplementary clips (neither ``train`` nor ``test``)."""

SUPPLEMENTAL_KINDS = ("machine", "noise")
"""Kinds of supplementary clips: the clean machine sound, or the environment's noise alone."""

TWO_CHANNEL_NAMES = ("near", "far")
"""Names of the channels of a DCASE 2026 clip, in channel order."""

RECENT_LAYOUTS = {
    "dcase2025-supplemental": "DCASE 2025 supplementary clips: "
    "<machine>/supplemental/section_XX_{machine,noise}_NNNN_[...].wav",
    "dcase2026-dev": "DCASE 2026 development (two channels: near, far): "
    "<machine>/{train,test}/section_XX_<domain>_<split>_<label>_NNNN[_key_value...].wav",
    "dcase2026-eval": "DCASE 2026 evaluation (two channels: near, far): "
    "<machine>/test/section_XX_NNNN.wav",
}
"""The layouts this module adds to :data:`soundwatch.datasets.discovery.LAYOUTS`."""

_TWO_CHANNEL = {"dcase-dev": "dcase2026-dev", "dcase-eval": "dcase2026-eval"}


def parse_supplemental_name(name: str) -> dict[str, Any] | None:
    """Parse a DCASE 2025 supplementary clip name: ``section_00_machine_0001_.wav``.

    Args:
        name: File name, with or without its extension.

    Returns:
        ``{"section", "kind", "number", "attributes"}`` or ``None``.
    """
    tokens = strip_audio_extension(name).split("_")
    if len(tokens) < 4 or tokens[0] != "section" or not tokens[1].isdigit():
        return None
    if not tokens[1].isascii() or tokens[2] not in SUPPLEMENTAL_KINDS:
        return None
    if not (tokens[3].isascii() and tokens[3].isdigit()):
        return None
    return {
        "section": tokens[1].zfill(2),
        "kind": tokens[2],
        "number": tokens[3],
        "attributes": parse_attribute_tokens(tokens[4:]),
    }


def classify_supplemental(path: Path) -> Clip | None:
    """The clip of a file in a DCASE 2025 ``supplemental`` folder, or ``None``.

    Args:
        path: The audio file (absolute).

    Returns:
        A clip with split ``"supplemental"``, label 0 and the attribute
        ``supplemental`` (``machine`` or ``noise``), or ``None`` for any other file.
    """
    if path.parent.name != SUPPLEMENTAL_FOLDER:
        return None
    parsed = parse_supplemental_name(path.name)
    if parsed is None:
        return None
    machine = path.parent.parent.name or "unknown"
    attributes = {"supplemental": parsed["kind"], **parsed["attributes"]}
    return Clip(path, machine, split=SUPPLEMENTAL_SPLIT, label=NORMAL,
                section=parsed["section"], domain=None, attributes=attributes,
                layout="dcase2025-supplemental")


def supplemental_clips(clips: list[Clip], machine: str, kind: str | None = None) -> list[Clip]:
    """A machine type's DCASE 2025 supplementary clips (for detectors that use them).

    Args:
        clips: Discovered clips.
        machine: The machine type.
        kind: ``"machine"`` (clean machine sound), ``"noise"`` (noise only) or ``None`` (both).

    Returns:
        Those clips, in path order.

    Raises:
        ConfigError: An unknown ``kind``.
    """
    if kind is not None and kind not in SUPPLEMENTAL_KINDS:
        raise ConfigError("kind", f"must be one of {', '.join(SUPPLEMENTAL_KINDS)}, got {kind!r}")
    return sorted((c for c in clips if c.machine == machine and c.split == SUPPLEMENTAL_SPLIT
                   and (kind is None or c.attributes.get("supplemental") == kind)),
                  key=lambda c: str(c.path))


def mark_two_channel(clips: list[Clip]) -> list[Clip]:
    """Give the DCASE clips of two-channel folders the DCASE 2026 layouts.

    One header per folder is read (every clip of a DCASE folder has the same format);
    an unreadable header leaves the folder as it is (the clip's own error comes when it
    is loaded).

    Args:
        clips: Classified clips.

    Returns:
        The clips, those of two-channel ``dcase-dev`` / ``dcase-eval`` folders relabelled.
    """
    from soundwatch.audio import info

    by_dir: dict[Path, list[int]] = defaultdict(list)
    for i, clip in enumerate(clips):
        if clip.layout in _TWO_CHANNEL:
            by_dir[clip.path.parent].append(i)
    for folder, indices in by_dir.items():
        try:
            channels = info(clips[indices[0]].path).channels
        except SoundwatchError:
            continue
        if channels != len(TWO_CHANNEL_NAMES):
            continue
        for i in indices:
            clips[i] = clips[i].with_(layout=_TWO_CHANNEL[clips[i].layout])
        log.debug("%s: two-channel clips (%s)", folder, ", ".join(TWO_CHANNEL_NAMES))
    return clips


def channel_names(clip: Clip) -> tuple[str, ...] | None:
    """The names of a clip's channels in channel order, where its layout names them."""
    return TWO_CHANNEL_NAMES if clip.layout in _TWO_CHANNEL.values() else None


def channel_index(clip: Clip, channel: str | int) -> int:
    """The channel index for a channel name (``near`` / ``far``) or an index.

    Args:
        clip: The clip.
        channel: A name its layout gives, or an index (returned as is).

    Returns:
        The index for :func:`soundwatch.audio.load`.

    Raises:
        ConfigError: A name the clip's layout does not have.
    """
    if isinstance(channel, int) or str(channel).lstrip("-").isdigit():
        return int(channel)
    names = channel_names(clip) or ()
    if channel not in names:
        known = ", ".join(names) or "none (give an index)"
        raise ConfigError("--channel", f"{clip.path.name}: no channel named {channel!r} "
                          f"(named channels: {known})")
    return names.index(str(channel))
