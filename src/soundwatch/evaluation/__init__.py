"""Evaluation of scores tables: DCASE metrics, thresholds, decisions, plots and reports.

Submodules import numpy/pandas/scipy/matplotlib; names are loaded on first use so that
``import soundwatch.evaluation`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EvaluationResult": "soundwatch.evaluation.evaluate",
    "evaluate_run": "soundwatch.evaluation.evaluate",
    "evaluate_scores": "soundwatch.evaluation.evaluate",
    "roc_auc": "soundwatch.evaluation.metrics",
    "partial_auc": "soundwatch.evaluation.metrics",
    "decision_metrics": "soundwatch.evaluation.metrics",
    "floored_hmean": "soundwatch.evaluation.metrics",
    "metric_table": "soundwatch.evaluation.dcase",
    "summarise": "soundwatch.evaluation.dcase",
    "bootstrap": "soundwatch.evaluation.dcase",
    "infer_mode": "soundwatch.evaluation.dcase",
    "parse_threshold": "soundwatch.thresholds",
    "fit_thresholds": "soundwatch.thresholds",
    "apply_thresholds": "soundwatch.thresholds",
    "gamma_threshold": "soundwatch.thresholds",
    "best_f1_threshold": "soundwatch.thresholds",
    "contamination_threshold": "soundwatch.thresholds",
    "join_ground_truth": "soundwatch.evaluation.ground_truth",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'soundwatch.evaluation' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
