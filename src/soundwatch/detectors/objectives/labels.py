"""Auxiliary classes of a clip: what is known about it (machine, section, attributes...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from soundwatch.errors import ConfigError

if TYPE_CHECKING:
    from soundwatch.datasets.clip import Clip

__all__ = ["AUX_FIELDS", "auxiliary_labels", "clip_class_key"]

AUX_FIELDS = ("machine", "section", "attributes", "domain", "machine_id")
"""Clip fields the auxiliary classes may be built from."""


def clip_class_key(clip: Clip, fields: Sequence[str] = ("machine", "section", "attributes")) -> str:
    """The auxiliary class of a clip: the values of ``fields`` that it has, joined.

    ``attributes`` contributes every ``name=value`` pair (sorted); a field that is
    ``None`` (or empty) is left out, so a clip without attributes falls back to its
    section, and one without a section to its machine ID or machine type.

    Args:
        clip: The clip.
        fields: Names among :data:`AUX_FIELDS`.

    Returns:
        A string such as ``"fan|00|vel=6|loc=A"``.
    """
    parts: list[str] = []
    for name in fields:
        if name not in AUX_FIELDS:
            known = ", ".join(AUX_FIELDS)
            raise ConfigError("aux_fields", f"unknown field {name!r} (known: {known})")
        if name == "attributes":
            parts.extend(f"{k}={v}" for k, v in sorted((clip.attributes or {}).items()))
            continue
        value = getattr(clip, name)
        if value not in (None, ""):
            parts.append(str(value))
    if "section" in fields and clip.section is None and clip.machine_id and (
        "machine_id" not in fields
    ):
        parts.append(str(clip.machine_id))
    return "|".join(parts) or "all"


def auxiliary_labels(
    clips: Sequence[Clip], fields: Sequence[str] = ("machine", "section", "attributes")
) -> tuple[np.ndarray, list[str]]:
    """Integer class labels for the auxiliary classifier.

    Args:
        clips: Training clips.
        fields: Clip fields that define a class (see :func:`clip_class_key`).

    Returns:
        ``(labels, class_names)``: labels[i] indexes class_names (sorted).
    """
    keys = [clip_class_key(c, fields) for c in clips]
    names = sorted(set(keys))
    index = {k: i for i, k in enumerate(names)}
    return np.array([index[k] for k in keys], dtype=np.int64), names
