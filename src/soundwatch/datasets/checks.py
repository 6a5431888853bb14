"""Which clips can be read: the ``--skip-bad`` validation pass before training or scoring."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from soundwatch.audio import load
from soundwatch.datasets.clip import Clip
from soundwatch.errors import AudioError

__all__ = ["check_clips"]

log = logging.getLogger(__name__)


def check_clips(
    clips: Sequence[Clip], skip_bad: bool, channel: int | str = 0
) -> tuple[list[Clip], list[dict[str, str]]]:
    """Keep the clips :func:`soundwatch.audio.load` can read.

    Args:
        clips: Clips to check.
        skip_bad: When false, nothing is checked here (the first unreadable file then
            raises :class:`~soundwatch.errors.AudioError` where it is loaded).
        channel: The channel that will be read (a file without it is unreadable).

    Returns:
        ``(good_clips, skipped)`` where ``skipped`` holds ``{"path", "reason"}`` dicts.
    """
    if not skip_bad:
        return list(clips), []
    good: list[Clip] = []
    skipped: list[dict[str, str]] = []
    for clip in clips:
        try:
            load(clip.path, sr=None, channel=channel)  # decode + validate; no resampling
        except AudioError as exc:
            log.warning("skipping %s: %s", clip.path, exc.reason)
            skipped.append({"path": str(clip.path), "reason": exc.reason})
        else:
            good.append(clip)
    return good, skipped
