"""The scores table (one row per scored clip) and its CSV and DCASE-submission writers."""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from soundwatch.atomic import atomic_open
from soundwatch.datasets.names import python_strings
from soundwatch.errors import EvaluationError

if TYPE_CHECKING:  # pandas stays out of ``import soundwatch``
    import pandas as pd

    from soundwatch.datasets.clip import Clip

__all__ = [
    "SCORE_COLUMNS",
    "DECISION_COLUMNS",
    "STATUS_COLUMNS",
    "STRING_COLUMNS",
    "add_decisions",
    "add_status",
    "table_mode",
    "make_scores_table",
    "write_scores_table",
    "read_scores_table",
    "validate_scores_table",
    "dcase_file_stem",
    "dcase2020_file_stem",
    "write_dcase_scores",
    "write_dcase_decisions",
]

log = logging.getLogger(__name__)

SCORE_COLUMNS = ["path", "machine", "section", "domain", "split", "label", "score"]
"""The columns every scores table has, in this order (``decision`` and extras may follow)."""

DECISION_COLUMNS = ["threshold", "decision", "percentile"]
"""Columns a decided scores table adds right after ``score`` (see :func:`add_decisions`)."""

STATUS_COLUMNS = ["status", "status_reason"]
"""Columns after the decision columns: ``status`` is ``ok``, ``sensor`` (a sensor problem,
:mod:`soundwatch.sensor`: never decided anomalous) or ``error``; ``status_reason`` says why."""

STRING_COLUMNS = ["path", "machine", "section", "domain", "split", "machine_id", "layout",
                  "status", "status_reason"]
"""Columns read back as strings (so that section ``"00"`` stays ``"00"``)."""

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def _as_str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


def make_scores_table(clips: Sequence[Clip], scores: Sequence[float] | np.ndarray) -> pd.DataFrame:
    """Build the scores table of some clips and their anomaly scores.

    Args:
        clips: The scored clips.
        scores: One score per clip, higher = more anomalous.

    Returns:
        A DataFrame with :data:`SCORE_COLUMNS` (plus ``machine_id`` and ``attr_*`` columns
        when the clips have them). ``label`` is float: 0.0, 1.0 or NaN when unknown;
        ``section``/``domain``/``split`` are strings or None.

    Raises:
        EvaluationError: If the lengths differ or a score is not a finite number.
    """
    import pandas as pd

    python_strings(pd)

    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(values) != len(clips):
        raise EvaluationError("scores", f"{len(values)} scores for {len(clips)} clips")
    if not np.all(np.isfinite(values)):
        bad = int(np.sum(~np.isfinite(values)))
        raise EvaluationError("scores", f"{bad} score(s) are NaN or infinite")
    rows = [clip.as_row() for clip in clips]
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=SCORE_COLUMNS)
    df["score"] = values
    df["label"] = pd.to_numeric(df["label"], errors="coerce").astype(np.float64)
    for col in ("section", "domain", "split", "machine_id"):
        if col in df:
            df[col] = [_as_str_or_none(v) for v in df[col]]
    extras = [c for c in df.columns if c not in SCORE_COLUMNS]
    return df[SCORE_COLUMNS + extras].reset_index(drop=True)


def validate_scores_table(
    df: pd.DataFrame, where: str | os.PathLike[str] = "scores"
) -> pd.DataFrame:
    """Check a scores table and normalise its dtypes.

    Args:
        df: A table with at least :data:`SCORE_COLUMNS`.
        where: What to name in an error message (usually the CSV file).

    Returns:
        A copy with ``score`` and ``label`` as float64 (label NaN = unknown), ``decision``
        (if present) as int, string columns as str/None.

    Raises:
        EvaluationError: If a column is missing or a score or label is invalid.
    """
    import pandas as pd

    missing = [c for c in SCORE_COLUMNS if c not in df.columns]
    if missing:
        raise EvaluationError(where, f"missing column(s) {', '.join(missing)}")
    out = df.copy()
    score = pd.to_numeric(out["score"], errors="coerce").astype(np.float64)
    if not np.all(np.isfinite(score.to_numpy())):
        bad = int(np.sum(~np.isfinite(score.to_numpy())))
        raise EvaluationError(where, f"{bad} score(s) are empty, NaN or not numbers")
    out["score"] = score
    label = pd.to_numeric(out["label"], errors="coerce").astype(np.float64)
    known = label.dropna()
    if not known.isin([0.0, 1.0]).all():
        raise EvaluationError(where, "label must be 0, 1 or empty")
    out["label"] = label
    for col in STRING_COLUMNS:
        if col in out:
            out[col] = [_as_str_or_none(v) for v in out[col]]
    if out["machine"].isna().any():
        raise EvaluationError(where, "some rows have no machine")
    if "decision" in out:
        decision = pd.to_numeric(out["decision"], errors="coerce")
        if decision.isna().any() or not decision.isin([0, 1]).all():
            raise EvaluationError(where, "decision must be 0 or 1")
        out["decision"] = decision.astype(np.int64)
    for col in ("threshold", "percentile"):
        if col in out:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(np.float64)
    if "status" in out:
        from soundwatch.sensor import STATUSES

        out["status"] = [_as_str_or_none(v) or "ok" for v in out["status"]]
        bad = sorted(set(out["status"]) - set(STATUSES))
        if bad:
            raise EvaluationError(where, f"status must be one of {', '.join(STATUSES)}, "
                                  f"got {', '.join(map(str, bad))}")
        if "decision" in out and (out.loc[out["status"] != "ok", "decision"] == 1).any():
            raise EvaluationError(where, "a clip with a sensor or error status is decided "
                                  "anomalous")
    if "status_reason" in out:
        out["status_reason"] = [_as_str_or_none(v) or "" for v in out["status_reason"]]
    return out[_ordered_columns(out)].reset_index(drop=True)


def _ordered_columns(df: pd.DataFrame) -> list[str]:
    """:data:`SCORE_COLUMNS`, the decision and status columns present, then the rest."""
    decided = [c for c in DECISION_COLUMNS + STATUS_COLUMNS if c in df.columns]
    extras = [c for c in df.columns if c not in SCORE_COLUMNS and c not in decided]
    return SCORE_COLUMNS + decided + extras


def add_decisions(df: pd.DataFrame, deciders: Mapping[str, Any]) -> pd.DataFrame:
    """A copy of a scores table with ``threshold``, ``decision`` and ``percentile`` columns.

    Each row is decided by its machine type's rule, the rule of its section when the
    rule has one (:class:`soundwatch.decisions.Decider`); rows whose ``status`` is not
    ``ok`` (sensor problems) get decision 0 whatever their score.

    Args:
        df: A scores table.
        deciders: machine -> :class:`soundwatch.decisions.Decider`; rows of a machine
            without one get NaN threshold and percentile and decision 0.

    Returns:
        The table with :data:`DECISION_COLUMNS` right after ``score``.
    """
    out = df.copy()
    scores = out["score"].to_numpy(dtype=np.float64)
    threshold = np.full(len(out), np.nan)
    decision = np.zeros(len(out), dtype=np.int64)
    percentile = np.full(len(out), np.nan)
    machines = out["machine"].astype(str).to_numpy()
    sections = out["section"].to_numpy(dtype=object) if "section" in out else None
    for machine, decider in deciders.items():
        rows = machines == str(machine)
        if not rows.any():
            continue
        secs = None if sections is None else list(sections[rows])
        threshold[rows] = decider.thresholds(int(rows.sum()), secs)
        decision[rows] = decider.decide(scores[rows], secs)
        percentile[rows] = decider.percentile(scores[rows], secs)
    if "status" in out:
        status = out["status"].fillna("ok").astype(str).to_numpy()
        decision[status != "ok"] = 0
    out["threshold"] = threshold
    out["decision"] = decision
    out["percentile"] = percentile
    return out[_ordered_columns(out)].reset_index(drop=True)


def add_status(df: pd.DataFrame, checks: Sequence[Any]) -> pd.DataFrame:
    """A copy of a scores table with ``status`` and ``status_reason`` from sensor checks.

    Args:
        df: A scores table.
        checks: One :class:`soundwatch.sensor.SensorCheck` per row.

    Returns:
        The table with :data:`STATUS_COLUMNS`; a decided table's non-``ok`` rows get
        decision 0.
    """
    if len(checks) != len(df):
        raise EvaluationError("scores", f"{len(checks)} sensor checks for {len(df)} rows")
    out = df.copy()
    out["status"] = [c.status for c in checks]
    out["status_reason"] = [c.reason for c in checks]
    if "decision" in out:
        out.loc[out["status"] != "ok", "decision"] = 0
    return out[_ordered_columns(out)].reset_index(drop=True)


def table_mode(df: pd.DataFrame) -> str:
    """The evaluation mode a scores table's data calls for.

    ``dcase2020`` for DCASE 2020 and MIMII layouts (clips named by machine ID, known from
    the ``layout`` column, or a ``machine_id`` on every row), ``dcase2024`` where clips
    have a source/target domain, else ``dcase2020`` when they have a section, else
    ``labelled``.
    """
    if "layout" in df.columns:
        layouts = {str(v) for v in df["layout"].dropna().unique()}
        if layouts and layouts <= {"dcase2020", "dcase2020-eval", "mimii"}:
            return "dcase2020"
    if "domain" in df.columns and df["domain"].isin(["source", "target"]).any():
        if "machine_id" in df.columns and df["machine_id"].notna().all() and len(df):
            return "dcase2020"
        return "dcase2024"
    if "section" in df.columns and df["section"].notna().any():
        return "dcase2020"
    return "labelled"


def write_scores_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a scores table to CSV atomically (with header; label as 0, 1 or empty).

    Args:
        df: The table (:data:`SCORE_COLUMNS` first, extra columns kept).
        path: Destination CSV.

    Returns:
        The path written.
    """
    path = Path(path)
    out = validate_scores_table(df, path)
    out = out[_ordered_columns(out)]
    out["label"] = out["label"].astype("Int64")
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        out.to_csv(handle, index=False, lineterminator="\n")
    return path


def _check_complete(path: Path) -> None:
    """Refuse a CSV cut mid-row: :func:`write_scores_table` ends every row with a newline."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size:
                handle.seek(size - 1)
                last = handle.read(1)
    except OSError as exc:
        raise EvaluationError(path, f"cannot read ({exc.strerror or exc})") from exc
    if size and last != b"\n":
        raise EvaluationError(path, "cut mid-row (the last line has no newline): score again")


def read_scores_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a scores table written by :func:`write_scores_table`.

    Args:
        path: The CSV file.

    Returns:
        The validated table (see :func:`validate_scores_table`).

    Raises:
        EvaluationError: If the file is missing, unreadable or lacks a column.
    """
    import pandas as pd

    python_strings(pd)

    path = Path(path)
    if not path.is_file():
        raise EvaluationError(path, "scores table not found")
    _check_complete(path)
    try:
        # surrogateescape: file names with non-UTF-8 bytes were written that way
        df = pd.read_csv(path, dtype={c: str for c in STRING_COLUMNS}, keep_default_na=False,
                         na_values=[""], encoding="utf-8", encoding_errors="surrogateescape")
    except pd.errors.EmptyDataError as exc:
        raise EvaluationError(path, "empty file, expected a header") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise EvaluationError(path, f"not a valid CSV ({exc})") from exc
    return validate_scores_table(df, path)


def dcase_file_stem(machine: str, section: str | None) -> str:
    """The ``<machine>_section_<XX>`` part of DCASE submission file names.

    A missing section is written as ``00``; numeric sections are zero-padded to two digits.
    """
    sec = "00" if section is None else str(section)
    if sec.isdigit():
        sec = f"{int(sec):02d}"
    return f"{_SAFE_NAME.sub('_', str(machine))}_section_{_SAFE_NAME.sub('_', sec)}"


def _groups(df: pd.DataFrame) -> list[tuple[str, str | None, pd.DataFrame]]:
    keys = df["section"].where(df["section"].notna(), None)
    groups = []
    for (machine, section), part in df.assign(_sec=keys.fillna("\0")).groupby(
        ["machine", "_sec"], sort=True
    ):
        groups.append((str(machine), None if section == "\0" else str(section), part))
    return groups


def dcase2020_file_stem(machine: str, section: str | None) -> str:
    """The ``<machine>_id_<XX>`` part of DCASE 2020 score file names (``id_00`` when unknown)."""
    sec = "00" if section is None else str(section)
    if sec.startswith("id_"):
        sec = sec[3:]
    if sec.isdigit():
        sec = f"{int(sec):02d}"
    return f"{_SAFE_NAME.sub('_', str(machine))}_id_{_SAFE_NAME.sub('_', sec)}"


def _file_name(prefix: str, machine: str, section: str | None, mode: str) -> str:
    if mode == "dcase2020":
        return f"{prefix}_{dcase2020_file_stem(machine, section)}.csv"
    return f"{prefix}_{dcase_file_stem(machine, section)}_test.csv"


def _write_two_column(
    df: pd.DataFrame, out_dir: Path, prefix: str, column: str, mode: str | None = None
) -> list[Path]:
    mode = mode or table_mode(df)
    paths: list[Path] = []
    seen: dict[Path, str] = {}
    for machine, section, part in _groups(df):
        path = out_dir / _file_name(prefix, machine, section, mode)
        if path in seen:
            raise EvaluationError(path, f"two groups map to one file ({seen[path]} and {machine})")
        seen[path] = machine
        with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
            for file_path, value in zip(part["path"], part[column], strict=True):
                name = Path(str(file_path)).name
                if column == "decision":
                    handle.write(f"{name},{int(value)}\n")
                else:
                    handle.write(f"{name},{float(value)!r}\n")
        paths.append(path)
        log.debug("wrote %s (%d rows)", path, len(part))
    return paths


def write_dcase_scores(
    df: pd.DataFrame, out_dir: str | os.PathLike[str], mode: str | None = None
) -> list[Path]:
    """Write DCASE submission score files, one per machine type and section.

    Files are ``anomaly_score_<machine>_section_<XX>_test.csv`` holding ``file_name,score``
    lines with no header, in the table's row order (the format of the DCASE 2021-2024
    evaluators); in DCASE 2020 mode ``anomaly_score_<machine>_id_<XX>.csv`` (the 2020
    evaluator's names).

    Args:
        df: A scores table (normally the test split only).
        out_dir: Folder to write into (created if needed).
        mode: ``dcase2020`` for the 2020 names; default from the data (:func:`table_mode`).

    Returns:
        The files written, sorted by machine and section.
    """
    df = validate_scores_table(df)
    return _write_two_column(df, Path(out_dir), "anomaly_score", "score", mode)


def write_dcase_decisions(
    df: pd.DataFrame, out_dir: str | os.PathLike[str], mode: str | None = None
) -> list[Path]:
    """Write DCASE decision files, one per machine type and section.

    Files are ``decision_result_<machine>_section_<XX>_test.csv`` holding ``file_name,0|1``
    lines with no header (1 = anomaly); ``decision_result_<machine>_id_<XX>.csv`` in DCASE
    2020 mode.

    Args:
        df: A scores table with a ``decision`` column (0 or 1).
        out_dir: Folder to write into (created if needed).
        mode: ``dcase2020`` for the 2020 names; default from the data (:func:`table_mode`).

    Returns:
        The files written.

    Raises:
        EvaluationError: If the table has no ``decision`` column.
    """
    if "decision" not in df.columns:
        raise EvaluationError("scores", "no decision column: apply a threshold first")
    df = validate_scores_table(df)
    return _write_two_column(df, Path(out_dir), "decision_result", "decision", mode)
