"""The Clip record: one audio file and everything its layout says about it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

NORMAL = 0
ANOMALY = 1


@dataclass(frozen=True)
class Clip:
    """One audio file of a dataset.

    Attributes:
        path: The audio file.
        machine: Machine type (``fan``, ``pump``...), or the task name for labelled folders.
        split: ``"train"`` or ``"test"``; ``None`` where the layout has no split (MIMII raw).
        label: 0 normal, 1 anomaly, ``None`` when unknown (evaluation sets without
            ground truth).
        section: Two-digit section (DCASE 2021-2024) or machine ID number (DCASE 2020,
            MIMII), as a string such as ``"00"``; ``None`` if the layout has none.
        domain: ``"source"`` or ``"target"``; ``None`` if unknown.
        machine_id: ``"id_00"`` style ID where the layout has one.
        attributes: Operating conditions from the file name or the attribute CSV.
        layout: Name of the layout that recognised the file.
    """

    path: Path
    machine: str
    split: str | None = None
    label: int | None = None
    section: str | None = None
    domain: str | None = None
    machine_id: str | None = None
    attributes: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    layout: str = ""

    @property
    def file_name(self) -> str:
        """The file's base name, as DCASE CSVs name it."""
        return self.path.name

    def with_(self, **changes: Any) -> Clip:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def as_row(self) -> dict[str, Any]:
        """The clip as a flat dict (scores-table columns plus attributes)."""
        row: dict[str, Any] = {
            "path": str(self.path),
            "machine": self.machine,
            "section": self.section,
            "domain": self.domain,
            "split": self.split,
            "label": self.label,
            "machine_id": self.machine_id,
        }
        if self.layout:
            row["layout"] = self.layout
        row.update({f"attr_{k}": v for k, v in self.attributes.items()})
        return row
