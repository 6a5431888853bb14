"""Feature front-ends (waveform, STFT, log-mel, CQT, frames), image rendering and the feature cache.

Importing this package is light: torch, librosa and matplotlib are loaded on first use of
a name that needs them. The image path lives in :mod:`soundwatch.features.render`
(``render``, ``render_batch``); it is not re-exported here because a package attribute named
like a submodule would be replaced by the module once the submodule is imported.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FEATURE_CODE_VERSION",
    "FRONTENDS",
    "FeatureCache",
    "FrontEnd",
    "create_frontend",
    "describe_frontends",
    "extract",
    "featurize_signal",
    "frontend_layout",
    "list_frontends",
    "not_exportable_reason",
    "register_frontend",
    "run_frontend",
]

_WHERE = {
    "FEATURE_CODE_VERSION": "frontends",
    "FrontEnd": "frontends",
    "create_frontend": "frontends",
    "describe_frontends": "frontends",
    "list_frontends": "frontends",
    "FRONTENDS": "frontends",
    "frontend_layout": "frontends",
    "register_frontend": "frontends",
    "FeatureCache": "cache",
    "extract": "extraction",
    "featurize_signal": "extraction",
    "not_exportable_reason": "frontends",
    "run_frontend": "extraction",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'soundwatch.features' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"soundwatch.features.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
