"""The shared training engine: one Lightning module and fit_network() for every network.

Attributes are imported on first use, so ``import soundwatch.training`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BatchDataset",
    "HistoryCallback",
    "NetworkModule",
    "RowDataset",
    "TensorBatches",
    "TrainHistory",
    "WindowDataset",
    "fit_network",
    "resolve_device",
]

_WHERE = {
    "BatchDataset": "data",
    "RowDataset": "data",
    "TensorBatches": "data",
    "WindowDataset": "data",
    "HistoryCallback": "callbacks",
    "NetworkModule": "module",
    "TrainHistory": "fit",
    "fit_network": "fit",
    "resolve_device": "fit",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        module = importlib.import_module(f"{__name__}.{_WHERE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
