"""Scorers: fitted on a view of the training clips (vectors, residuals...), they score clips.

Importing this package is light (numpy only); the built-in scorers are imported when the
registry is first asked for a name.
"""

from __future__ import annotations

from soundwatch.detectors.scorers.base import VIEWS, RowScorer, Scorer
from soundwatch.errors import DetectorError
from soundwatch.registry import Registry

__all__ = [
    "SCORERS",
    "VIEWS",
    "RowScorer",
    "Scorer",
    "create_scorer",
    "describe_scorers",
    "list_scorers",
    "register_scorer",
]

SCORERS: Registry[type[Scorer]] = Registry(
    "scorer",
    modules=(
        "soundwatch.detectors.scorers.simple",
        "soundwatch.detectors.scorers.mahalanobis",
        "soundwatch.detectors.scorers.knn",
        "soundwatch.detectors.scorers.gmm",
        "soundwatch.detectors.scorers.ldn",
        "soundwatch.detectors.scorers.smote",
        "soundwatch.detectors.scorers.domain",
    ),
    error=DetectorError,
)
"""Registered scorer classes (entry-point group ``soundwatch.scorers`` for plugins)."""

register_scorer = SCORERS.register


create_scorer = SCORERS.create
"""A scorer by registry name with its hyper-parameters (validated)."""
list_scorers = SCORERS.names
"""Names of the registered scorers."""
describe_scorers = SCORERS.describe
"""Name -> one-line description of each registered scorer."""
