"""Pure parsers of the file and folder names of every supported dataset layout.

Each parser takes a name (or the path components of a file) and returns a dict of what
the name says, or ``None`` when the name does not belong to the layout. None of them
touches the file system, so they can be unit-tested and fuzzed on any string.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from soundwatch.datasets.clip import ANOMALY, NORMAL

__all__ = [
    "AUDIO_EXTENSIONS",
    "LABEL_FOLDERS",
    "SPLIT_FOLDERS",
    "parse_attribute_tokens",
    "parse_dcase2020_eval_name",
    "parse_dcase2020_name",
    "parse_dcase_dev_name",
    "parse_dcase_eval_name",
    "parse_labelled_path",
    "parse_mimii_path",
    "parse_section_name",
    "parse_snr_folder",
    "strip_audio_extension",
]

AUDIO_EXTENSIONS = (".wav", ".flac")
"""Extensions of the audio files a layout can hold (compared case-insensitively)."""

SPLIT_FOLDERS = frozenset({"train", "test", "source_test", "target_test", "supplemental"})
"""Folder names that hold one split of a machine type (DCASE 2021 had source_test/target_test)."""

LABEL_FOLDERS: dict[str, int] = {
    "0": NORMAL,
    "1": ANOMALY,
    "normal": NORMAL,
    "anomaly": ANOMALY,
    "abnormal": ANOMALY,
    "anomalous": ANOMALY,
}
"""Label folder names of the labelled-folders layout and their labels."""

EXTRA_KEY = "extra"
"""Key under which an attribute token without a partner is kept."""

_DIGITS = re.compile(r"[0-9]+")
_ID = re.compile(r"id_([0-9]+)")
_SNR = re.compile(r"([-+]?[0-9]+)_?db(?:_(.+))?", re.IGNORECASE)
_LABEL_TOKENS = {"normal": NORMAL, "anomaly": ANOMALY}
_DOMAINS = ("source", "target")
_SPLITS = ("train", "test")


def strip_audio_extension(name: str) -> str:
    """``name`` without a trailing ``.wav`` / ``.flac`` (any case); other names unchanged."""
    low = name.lower()
    for ext in AUDIO_EXTENSIONS:
        if low.endswith(ext):
            return name[: -len(ext)]
    return name


def _is_digits(token: str) -> bool:
    return _DIGITS.fullmatch(token) is not None


def _two_digits(token: str) -> str:
    return token.zfill(2)


def parse_attribute_tokens(tokens: Sequence[str]) -> dict[str, str]:
    """Turn the tokens after a DCASE file number into an attribute dict.

    Tokens alternate key and value (``["vel", "4", "loc", "A"]`` ->
    ``{"vel": "4", "loc": "A"}``). A lone ``noAttribute`` means none. A token left
    without a partner (odd counts, as in some DCASE 2021 names) is kept under
    ``"extra"``; a key seen twice gets a numbered suffix. Never raises.

    Args:
        tokens: The name's remaining ``_``-separated tokens.

    Returns:
        The attributes (keys and values as strings).
    """
    items = [t for t in tokens if t != ""]
    if len(items) == 1 and items[0].lower() == "noattribute":
        return {}
    attrs: dict[str, str] = {}

    def put(key: str, value: str) -> None:
        final, n = key, 2
        while final in attrs:
            final, n = f"{key}_{n}", n + 1
        attrs[final] = value

    for i in range(0, len(items) - 1, 2):
        put(items[i], items[i + 1])
    if len(items) % 2:
        put(EXTRA_KEY, items[-1])
    return attrs


def parse_dcase2020_name(name: str) -> dict[str, Any] | None:
    """Parse a DCASE 2020 Task 2 development file name.

    ``normal_id_01_00000000.wav`` -> label 0, ``machine_id="id_01"``, section ``"01"``.
    Extra tokens after the number are kept as attributes.

    Args:
        name: File name, with or without its extension.

    Returns:
        ``{"label", "machine_id", "section", "number", "attributes"}`` or ``None``.
    """
    tokens = strip_audio_extension(name).split("_")
    if len(tokens) < 4 or tokens[0] not in _LABEL_TOKENS or tokens[1] != "id":
        return None
    if not (_is_digits(tokens[2]) and _is_digits(tokens[3])):
        return None
    section = _two_digits(tokens[2])
    return {
        "label": _LABEL_TOKENS[tokens[0]],
        "machine_id": f"id_{section}",
        "section": section,
        "number": tokens[3],
        "attributes": parse_attribute_tokens(tokens[4:]),
    }


def parse_dcase2020_eval_name(name: str) -> dict[str, Any] | None:
    """Parse a DCASE 2020 Task 2 evaluation file name (no label): ``id_05_00000000.wav``.

    Args:
        name: File name, with or without its extension.

    Returns:
        ``{"label": None, "machine_id", "section", "number", "attributes"}`` or ``None``.
    """
    tokens = strip_audio_extension(name).split("_")
    if len(tokens) < 3 or tokens[0] != "id":
        return None
    if not (_is_digits(tokens[1]) and _is_digits(tokens[2])):
        return None
    section = _two_digits(tokens[1])
    return {
        "label": None,
        "machine_id": f"id_{section}",
        "section": section,
        "number": tokens[2],
        "attributes": parse_attribute_tokens(tokens[3:]),
    }


def parse_section_name(name: str) -> dict[str, Any] | None:
    """Parse any DCASE 2021-2024 ``section_XX_...`` name, labelled or not.

    Accepted, in this order after ``section_XX``: an optional domain (``source`` /
    ``target``), an optional split (``train`` / ``test``), an optional label (``normal`` /
    ``anomaly``), then the file number, then attribute tokens. So the development name
    ``section_00_source_train_normal_0000_vel_4_loc_A``, the DCASE 2021 evaluation name
    ``section_03_target_test_0012``, the 2022-2024 evaluation name ``section_00_0001`` and
    an evaluation name without its ``test`` token all parse.

    Args:
        name: File name, with or without its extension.

    Returns:
        ``{"section", "domain", "split", "label", "number", "attributes"}`` (``None`` for
        what the name does not say), or ``None`` if it is no section name.
    """
    tokens = strip_audio_extension(name).split("_")
    if len(tokens) < 3 or tokens[0] != "section" or not _is_digits(tokens[1]):
        return None
    pos = 2
    domain = split = label = None
    if tokens[pos] in _DOMAINS:
        domain, pos = tokens[pos], pos + 1
    if pos < len(tokens) and tokens[pos] in _SPLITS:
        split, pos = tokens[pos], pos + 1
    if pos < len(tokens) and tokens[pos] in _LABEL_TOKENS:
        label, pos = _LABEL_TOKENS[tokens[pos]], pos + 1
    if pos >= len(tokens) or not _is_digits(tokens[pos]):
        return None
    return {
        "section": _two_digits(tokens[1]),
        "domain": domain,
        "split": split,
        "label": label,
        "number": tokens[pos],
        "attributes": parse_attribute_tokens(tokens[pos + 1 :]),
    }


def parse_dcase_dev_name(name: str) -> dict[str, Any] | None:
    """Parse a DCASE 2021-2024 development name (one that carries its label).

    ``section_00_source_train_normal_0000_vel_4_loc_A.wav`` -> section ``"00"``,
    domain ``"source"``, split ``"train"``, label 0, attributes ``{"vel": "4", "loc": "A"}``.

    Args:
        name: File name, with or without its extension.

    Returns:
        As :func:`parse_section_name`, or ``None`` when the name has no label token.
    """
    parsed = parse_section_name(name)
    return parsed if parsed is not None and parsed["label"] is not None else None


def parse_dcase_eval_name(name: str) -> dict[str, Any] | None:
    """Parse a DCASE 2021-2024 evaluation name (no label): ``section_00_0001.wav``.

    Tolerates a domain and/or split token (``section_03_source_test_0000`` of DCASE
    2021), their absence, and attribute tokens after the number.

    Args:
        name: File name, with or without its extension.

    Returns:
        As :func:`parse_section_name` with ``label`` ``None``, or ``None``.
    """
    parsed = parse_section_name(name)
    return parsed if parsed is not None and parsed["label"] is None else None


def parse_snr_folder(name: str) -> tuple[str, str | None] | None:
    """Parse a MIMII signal-to-noise folder name.

    ``"-6_dB_fan"`` -> ``("-6dB", "fan")``; ``"0_dB"`` -> ``("0dB", None)``.

    Args:
        name: One folder name.

    Returns:
        ``(snr, machine or None)`` or ``None`` if it is no SNR folder.
    """
    match = _SNR.fullmatch(name)
    if match is None:
        return None
    value = match.group(1)
    if value.startswith("+"):
        value = value[1:]
    value = str(int(value))  # "-06" -> "-6", "-0" -> "0"
    return f"{value}dB", (match.group(2) or None)


def _machine_id(name: str) -> str | None:
    match = _ID.fullmatch(name)
    return f"id_{_two_digits(match.group(1))}" if match else None


def parse_mimii_path(parts: Sequence[str]) -> dict[str, Any] | None:
    """Parse the path of a raw MIMII file: ``[..., <machine>, id_XX, normal|abnormal, file]``.

    The machine type is the folder above ``id_XX``; when that folder is an SNR folder
    such as ``-6_dB_fan`` the machine comes from its suffix, and an SNR folder right
    above the machine folder (``-6_dB_fan/fan/id_00/...``) gives the SNR as well.

    Args:
        parts: Path components, the file name last (absolute paths give the most
            context: the machine folder may be above the dataset root).

    Returns:
        ``{"machine", "machine_id", "section", "label", "attributes"}`` (machine ``None``
        when no folder names it), or ``None`` if the path is no MIMII path.
    """
    if len(parts) < 3:
        return None
    label_dir, id_dir = parts[-2], parts[-3]
    if label_dir not in ("normal", "abnormal"):
        return None
    machine_id = _machine_id(id_dir)
    if machine_id is None:
        return None
    machine: str | None = None
    attributes: dict[str, str] = {}
    if len(parts) >= 4:
        above = parts[-4]
        snr = parse_snr_folder(above)
        if snr is not None:
            attributes["snr"] = snr[0]
            machine = snr[1]
        else:
            machine = above or None
            if len(parts) >= 5:
                outer = parse_snr_folder(parts[-5])
                if outer is not None:
                    attributes["snr"] = outer[0]
    return {
        "machine": machine,
        "machine_id": machine_id,
        "section": machine_id[3:],
        "label": NORMAL if label_dir == "normal" else ANOMALY,
        "attributes": attributes,
    }


def parse_labelled_path(parts: Sequence[str]) -> dict[str, Any] | None:
    """Parse a labelled-folders path: ``[..., <task>, train|test, 0|1|normal|anomaly, file]``.

    Args:
        parts: Path components, the file name last.

    Returns:
        ``{"machine", "split", "label"}`` (machine ``None`` when no folder is above the
        split folder), or ``None`` if the path is not in this layout.
    """
    if len(parts) < 3:
        return None
    label_dir, split_dir = parts[-2], parts[-3]
    if split_dir not in _SPLITS or label_dir.lower() not in LABEL_FOLDERS:
        return None
    machine = parts[-4] if len(parts) >= 4 and parts[-4] not in ("", "/") else None
    return {"machine": machine, "split": split_dir, "label": LABEL_FOLDERS[label_dir.lower()]}


def python_strings(pd: Any) -> None:
    """Keep pandas string columns as Python ``str`` objects (not pyarrow) in this process.

    File names may hold any byte; Python represents non-UTF-8 bytes as lone surrogates,
    which pyarrow-backed strings (pandas' default when pyarrow is installed) refuse with
    ``UnicodeEncodeError``. Python-backed strings hold them, so such paths go through
    the scores tables, their CSV files and the evaluation.
    """
    if pd.get_option("mode.string_storage") != "python":
        pd.set_option("mode.string_storage", "python")
