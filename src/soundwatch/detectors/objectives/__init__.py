"""Training objectives (registered), the synthetic-anomaly generator and auxiliary labels.

- ``reconstruction``: an autoencoder learns to reconstruct normal inputs (MSE).
- ``vae``: a variational autoencoder (ELBO with KL warm-up).
- ``supervised``: true normal/anomaly labels, binary cross-entropy.
- ``synthetic``: normal clips only; anomalies made from them on the fly.
- ``auxiliary``: normal clips only; a cosine-margin classifier learns what is known about
  each clip (machine, section, attributes), optionally with synthetic anomaly classes.
"""

from __future__ import annotations

from soundwatch.detectors.objectives.anomalies import ANOMALY_KINDS, SyntheticAnomalies
from soundwatch.detectors.objectives.base import Objective, Plan, TrainInput
from soundwatch.detectors.objectives.labels import AUX_FIELDS, auxiliary_labels, clip_class_key
from soundwatch.errors import DetectorError
from soundwatch.registry import Registry

__all__ = [
    "ANOMALY_KINDS",
    "AUX_FIELDS",
    "OBJECTIVES",
    "Objective",
    "Plan",
    "SyntheticAnomalies",
    "TrainInput",
    "auxiliary_labels",
    "clip_class_key",
    "create_objective",
    "describe_objectives",
    "list_objectives",
    "register_objective",
]

OBJECTIVES: Registry[type[Objective]] = Registry(
    "objective",
    modules=(
        "soundwatch.detectors.objectives.reconstruction",
        "soundwatch.detectors.objectives.classification",
    ),
    error=DetectorError,
)
"""Registered objective classes (entry-point group ``soundwatch.objectives`` for plugins)."""

register_objective = OBJECTIVES.register


create_objective = OBJECTIVES.create
"""A objective by registry name with its hyper-parameters (validated)."""
list_objectives = OBJECTIVES.names
"""Names of the registered objectives."""
describe_objectives = OBJECTIVES.describe
"""Name -> one-line description of each registered objective."""
