"""Readers of the CSV files that come beside DCASE data: attribute tables and ground truth."""

from __future__ import annotations

import csv
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from soundwatch.datasets.clip import ANOMALY, NORMAL
from soundwatch.errors import DatasetError

__all__ = ["GroundTruth", "read_attribute_csv", "read_ground_truth"]

log = logging.getLogger(__name__)

_PAIR_KEY = re.compile(r"d([0-9]+)p")
_GT_NAME = re.compile(
    r"ground_truth_(?P<machine>.+?)_section_(?P<section>[0-9]+)"
    r"(?:_(?P<domain>source|target))?(?:_test)?\.csv",
    re.IGNORECASE,
)
_LABEL_VALUES = {"0": NORMAL, "1": ANOMALY, "normal": NORMAL, "anomaly": ANOMALY,
                 "abnormal": ANOMALY}
_DOMAIN_VALUES = {"0": "source", "1": "target", "source": "source", "target": "target"}


def _read_numbered_rows(path: Path) -> list[tuple[int, list[str]]]:
    """All non-empty rows of a CSV file with their line numbers, cells stripped."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(path, f"cannot read CSV: {exc}") from exc
    return [(n, [cell.strip() for cell in row]) for n, row in rows
            if any(c.strip() for c in row)]


def _read_rows(path: Path) -> list[list[str]]:
    """All non-empty rows of a CSV file, cells stripped."""
    return [row for _, row in _read_numbered_rows(path)]


def _coded_value(
    cell: str, values: dict[str, object], path: Path, lineno: int, what: str
) -> object | None:
    """The value a label / domain cell stands for; ``None`` for text it does not know.

    A number is always meant as a code, so one other than 0 or 1 is an error rather
    than a row to skip: the file is not the table it is named as.
    """
    value = values.get(cell.lower())
    if value is not None:
        return value
    try:
        number = float(cell)
    except ValueError:
        return None
    if number in (0.0, 1.0):
        return values[str(int(number))]
    raise DatasetError(path, f"line {lineno}: {what} {cell!r} is not 0 or 1")


def _norm_name(name: str) -> str:
    """A CSV ``file_name`` cell as a forward-slash relative path."""
    name = name.replace("\\", "/").strip()
    while name.startswith("./"):
        name = name[2:]
    return name


def read_attribute_csv(path: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """Read a DCASE ``attributes_XX.csv`` table.

    The table has a header with a ``file_name`` column (relative paths such as
    ``fan/train/section_00_source_train_normal_0000_m-n_W.wav``) and either
    ``d1p,d1v,d2p,d2v...`` pairs (parameter name, value) or plain attribute columns.
    Empty cells are skipped. A table without a ``file_name`` column is logged and read
    as empty (attributes from names still apply).

    Args:
        path: The CSV file.

    Returns:
        ``{file_name (forward slashes): {attribute: value}}``.

    Raises:
        DatasetError: The file cannot be read as CSV text.
    """
    path = Path(path)
    rows = _read_rows(path)
    if not rows:
        return {}
    header = [h.lower() for h in rows[0]]
    name_col = next((i for i, h in enumerate(header) if h in ("file_name", "filename")), None)
    if name_col is None:
        log.warning("%s: no file_name column in the header; attribute table ignored", path)
        return {}
    pairs: list[tuple[int, int]] = []
    paired: set[int] = {name_col}
    for i, h in enumerate(header):
        match = _PAIR_KEY.fullmatch(h)
        if match and f"d{match.group(1)}v" in header:
            j = header.index(f"d{match.group(1)}v")
            pairs.append((i, j))
            paired.update((i, j))
    plain = [i for i in range(len(header)) if i not in paired]
    table: dict[str, dict[str, str]] = {}
    for row in rows[1:]:
        if name_col >= len(row) or not row[name_col]:
            continue
        attrs: dict[str, str] = {}
        for i, j in pairs:
            key = row[i] if i < len(row) else ""
            value = row[j] if j < len(row) else ""
            if key and key.lower() not in ("nan", "noattribute"):
                attrs[key] = value
        for i in plain:
            if i < len(row) and row[i] and rows[0][i]:
                attrs[rows[0][i]] = row[i]
        table[_norm_name(row[name_col])] = attrs
    return table


@dataclass
class GroundTruth:
    """Labels and domains of evaluation files, keyed by ``(machine casefolded, file name)``.

    Attributes:
        labels: 0 / 1 per file.
        domains: ``"source"`` / ``"target"`` per file.
        full_names: The development-style name per file (``ground_truth_attributes``
            tables map ``section_00_0001.wav`` to
            ``section_00_target_test_anomaly_0001_mdl_B_spd_2``; DCASE 2020's
            ``eval_data_list.csv`` maps ``id_01_00000001.wav`` to
            ``anomaly_id_01_00000003.wav``).
        files: The CSV files read.
    """

    labels: dict[tuple[str, str], int] = field(default_factory=dict)
    domains: dict[tuple[str, str], str] = field(default_factory=dict)
    full_names: dict[tuple[str, str], str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels.keys() | self.domains.keys() | self.full_names.keys())


def _read_value_table(
    path: Path,
    machine: str,
    values: dict[str, object],
    out: dict[tuple[str, str], object],
    what: str = "value",
) -> None:
    """Read ``file_name,value`` rows (header optional) into ``out``.

    With ``values`` the last cell is a code looked up there (a number other than 0/1
    raises :class:`DatasetError` naming the line); without, the second cell is kept as is.
    """
    bad = 0
    for k, (lineno, row) in enumerate(_read_numbered_rows(path)):
        if len(row) < 2:
            bad += 1
            continue
        value = _coded_value(row[-1], values, path, lineno, what) if values else row[1]
        if value is None:
            if k == 0:  # a header row such as "file_name,label"
                continue
            bad += 1
            continue
        out[(machine.casefold(), Path(_norm_name(row[0])).name)] = value
    if bad:
        log.warning("%s: %d row(s) not understood, skipped", path, bad)


def _read_dcase2020_list(path: Path, truth: GroundTruth) -> None:
    """Read DCASE 2020's ``eval_data_list.csv``: a machine line, then ``file,...,label`` rows.

    The middle cell of a ``file,original_name,label`` row (the development-style name,
    such as ``anomaly_id_01_00000003.wav``) goes into :attr:`GroundTruth.full_names`.
    """
    machine: str | None = None
    bad = 0
    for lineno, row in _read_numbered_rows(path):
        cells = [c for c in row if c]
        if len(cells) == 1:
            machine = cells[0]
            continue
        label = _coded_value(cells[-1], _LABEL_VALUES, path, lineno, "label")  # type: ignore[arg-type]
        if machine is None or label is None:
            bad += 1
            continue
        key = (machine.casefold(), Path(_norm_name(cells[0])).name)
        truth.labels[key] = label  # type: ignore[assignment]
        if len(cells) >= 3:
            truth.full_names[key] = Path(_norm_name(cells[1])).name
    if bad:
        log.warning("%s: %d row(s) not understood, skipped", path, bad)


def read_ground_truth(directory: str | os.PathLike[str]) -> GroundTruth:
    """Read every ground-truth CSV under a folder (searched recursively).

    Understood files, laid out as in the official DCASE evaluator repositories:

    * ``ground_truth_<machine>_section_XX_test.csv`` with ``file_name,label`` rows
      (label 0 normal, 1 anomaly), in ``ground_truth_data/`` or anywhere else;
    * the same name in a ``ground_truth_domain/`` folder: ``file_name,domain`` rows
      (0 source, 1 target);
    * the same name in a ``ground_truth_attributes/`` folder: ``file_name,full_name``
      rows giving the development-style name (domain, label and attributes);
    * DCASE 2021's ``ground_truth_<machine>_section_XX_{source,target}_test.csv``
      (labels; the domain comes from the file name);
    * DCASE 2020's ``eval_data_list.csv``.

    A header row is accepted but not required. Rows whose value is text the reader does
    not know are skipped with a warning; a label or domain given as a number other than
    0 or 1 is an error (the file is not what its name says).

    Args:
        directory: Folder holding the CSVs (or one CSV file).

    Returns:
        The joined tables.

    Raises:
        DatasetError: The folder is missing, holds no ground-truth CSV, a CSV cannot be
            read, or a label / domain is a number other than 0 or 1 (file and line named).
    """
    directory = Path(directory)
    if not directory.exists():
        raise DatasetError(directory, "ground-truth folder not found")
    files = [directory] if directory.is_file() else sorted(directory.rglob("*.csv"))
    truth = GroundTruth()
    for path in files:
        if path.name.lower() == "eval_data_list.csv":
            _read_dcase2020_list(path, truth)
            truth.files.append(path)
            continue
        match = _GT_NAME.fullmatch(path.name)
        if match is None:
            continue
        machine = match.group("machine")
        folder = path.parent.name.lower()
        if folder == "ground_truth_domain" or folder.endswith("_domain"):
            _read_value_table(path, machine, _DOMAIN_VALUES, truth.domains,  # type: ignore[arg-type]
                              "domain")
        elif folder == "ground_truth_attributes" or folder.endswith("_attributes"):
            _read_value_table(path, machine, {}, truth.full_names)  # type: ignore[arg-type]
        else:
            before = set(truth.labels)
            _read_value_table(path, machine, _LABEL_VALUES, truth.labels,  # type: ignore[arg-type]
                              "label")
            if match.group("domain"):
                for key in set(truth.labels) - before:
                    truth.domains.setdefault(key, match.group("domain").lower())
        truth.files.append(path)
    if not truth.files:
        raise DatasetError(
            directory,
            "no ground-truth CSV found (expected ground_truth_<machine>_section_XX_test.csv "
            "or eval_data_list.csv)",
        )
    log.info("read ground truth for %d file(s) from %d CSV(s) under %s",
             len(truth), len(truth.files), directory)
    return truth
