"""The one-line hint shown when the optional ``[export]`` packages are missing."""

from __future__ import annotations

import importlib.util

from soundwatch.errors import ConfigError

__all__ = ["EXPORT_HINT", "require"]

EXPORT_HINT = "install the export extra: pip install 'soundwatch[export]' (onnx, onnxruntime)"


def require(*modules: str) -> None:
    """Raise a one-line :class:`ConfigError` naming the missing package and the extra.

    Raises:
        ConfigError: One of ``modules`` cannot be imported.
    """
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise ConfigError(module, f"not installed; {EXPORT_HINT}")
