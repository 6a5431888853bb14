"""The detector registry: timm-style preset entry functions that return composed detectors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundwatch.errors import DetectorError
from soundwatch.registry import Registry

if TYPE_CHECKING:
    from soundwatch.detectors.base import Detector

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "create_detector",
    "describe_detectors",
    "detector_class",
    "get_detector_class",
    "list_detectors",
    "preset_test_params",
    "register",
    "register_detector",
    "resolve_detector_name",
]

DEFAULT_ALIAS = "default"
"""A name that stands for the recommended preset (:data:`DEFAULT_DETECTOR`)."""

DEFAULT_DETECTOR = "robust"
"""The preset ``soundwatch train DATA`` uses when no detector is named (docs/benchmarks.md,
"Robustness suite": chosen by its worst case over 17 visible sets, benchmarks/robustness.py)."""

log = logging.getLogger(__name__)

DETECTORS: Registry[Callable[..., Detector]] = Registry(
    "detector",
    modules=("soundwatch.detectors.presets",),
    error=DetectorError,
)
"""Registered detector presets (entry-point group ``soundwatch.detectors`` for plugins)."""


def register_detector(
    name: str, *, test_params: dict[str, Any] | None = None
) -> Callable[[Callable[..., Detector]], Callable[..., Detector]]:
    """Decorator registering a preset: an entry function ``(**overrides) -> Detector``.

    The entry function returns a detector with the preset's values; ``create_detector``
    then applies the caller's overrides with ``set_params`` (``part__key`` or a bare key
    that one part owns). The first docstring line is the preset's description.

    Args:
        name: Registry name (lower case, ``-`` allowed).
        test_params: Small overrides that make the preset fast enough for unit tests.
    """

    def decorator(fn: Callable[..., Detector]) -> Callable[..., Detector]:
        fn.test_params = dict(test_params or {})  # type: ignore[attr-defined]
        return DETECTORS.register(name)(fn)

    return decorator


register = register_detector
"""Alias of :func:`register_detector`."""


def get_detector_class(name: str) -> Callable[..., Detector]:
    """The entry function registered under ``name`` (with its ``test_params``).

    Raises:
        DetectorError: If no detector has that name.
    """
    return DETECTORS.get(name)


def preset_test_params(name: str) -> dict[str, Any]:
    """The preset's small unit-test settings (empty for an unknown name)."""
    if name not in DETECTORS:
        return {}
    return dict(getattr(DETECTORS.get(name), "test_params", {}))


def resolve_detector_name(name: str) -> str:
    """The registered name ``name`` stands for: ``default`` is the recommended preset."""
    if name == DEFAULT_ALIAS and DEFAULT_ALIAS not in DETECTORS:
        return DEFAULT_DETECTOR
    return name


def create_detector(name: str, **params: Any) -> Detector:
    """Create a detector by preset name, with hyper-parameter overrides.

    Args:
        name: Registry name (see :func:`list_detectors`); ``default`` is the recommended
            preset.
        **params: Overrides: top-level detector parameters, ``part__key`` (e.g.
            ``scorer__n_neighbors=3``) or a bare key one part owns (``epochs=5``). A
            part's params dict (``scorer_params={...}``) updates the preset's, unless
            the same call switches that part (``scorer="gmm"``).

    Returns:
        An unfitted detector.

    Raises:
        DetectorError: Unknown name, unknown parameter or invalid parameter value.
    """
    name = resolve_detector_name(name)
    detector = DETECTORS.get(name)()
    detector._preset = name
    params = dict(params)
    for part, dict_name in detector._nested.items():
        # a part's params dict refines the preset's (unless the part itself is switched)
        if isinstance(params.get(dict_name), dict) and part not in params:
            params[dict_name] = {**(getattr(detector, dict_name) or {}), **params[dict_name]}
    if params:
        detector.set_params(**params)
    else:
        detector.validate_params()
    return detector


def list_detectors() -> list[str]:
    """Sorted names of every registered detector (built-in and plugins)."""
    return DETECTORS.names()


def describe_detectors() -> dict[str, str]:
    """Map each registered detector name to the first line of its docstring."""
    return DETECTORS.describe()


def detector_class(class_name: str, where: str | Path) -> type[Detector]:
    """The detector class a saved ``config.json`` names (``ComposedDetector``...).

    Any concrete :class:`Detector` subclass defined once the built-in detectors and the
    entry-point plugins are imported is found by its class name, so a plugin's own
    subclass loads back like the built-in ones.

    Raises:
        DetectorError: Unknown class name (the file is named).
    """
    import inspect

    from soundwatch.detectors.base import Detector

    DETECTORS.names()  # imports the built-in presets and the plugins: their classes exist
    classes: dict[str, type[Detector]] = {}
    todo: list[type[Detector]] = [Detector]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if not inspect.isabstract(sub):
                classes.setdefault(sub.__name__, sub)
    if class_name not in classes:
        raise DetectorError(where, f"unknown detector class {class_name!r} (known: "
                            f"{', '.join(sorted(classes))})")
    return classes[class_name]
