"""Anomaly detectors: the Detector contract, registries of parts and presets, composition.

Importing this package is light (no torch, no scikit-learn); detector modules are
imported when a registry is first asked for a name.
"""

from soundwatch.detectors.base import Detector, clone
from soundwatch.detectors.registry import (
    DETECTORS,
    create_detector,
    describe_detectors,
    get_detector_class,
    list_detectors,
    register,
    register_detector,
)

__all__ = [
    "DETECTORS",
    "Detector",
    "clone",
    "create_detector",
    "describe_detectors",
    "get_detector_class",
    "list_detectors",
    "register",
    "register_detector",
]
