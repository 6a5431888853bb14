"""The files of an exported detector folder, shared by the exporter and the runtime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from soundwatch.errors import ConfigError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "DECISION_FILE",
    "INDEX_FILE",
    "MANIFEST_FILE",
    "MODEL_FILE",
    "SCORER_FILE",
    "SCORES_FILE",
    "read_arrays",
    "read_manifest",
]

FORMAT = "soundwatch-onnx"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
"""Per detector: what the graph computes and how the runtime finishes the score."""
MODEL_FILE = "model.onnx"
"""Waveforms ``[batch, samples]`` float32 -> per-clip items ``[batch, n, d]``."""
SCORER_FILE = "scorer.npz"
"""The scorer's learned arrays (``allow_pickle=False``)."""
SCORES_FILE = "train_scores.npy"
"""The out-of-fold training scores (percentiles)."""
DECISION_FILE = "decision.json"
"""The run's decision rule (:class:`soundwatch.decisions.Decider`: threshold per machine
type and section, policy, training scores); named by ``manifest["threshold"]["file"]``."""
INDEX_FILE = "index.json"
"""In a folder holding one export per machine type: the machine names."""


def read_manifest(directory: Path) -> dict[str, Any]:
    """Read and check ``manifest.json`` of an export folder.

    Raises:
        ConfigError: Missing, unreadable, or not a soundwatch export of a known version.
    """
    path = directory / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(path, "missing: not a soundwatch ONNX export folder") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(path, f"cannot read manifest: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ConfigError(path, f"not a {FORMAT} manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ConfigError(path, f"format version {version!r}; this soundwatch reads "
                          f"{FORMAT_VERSION} (export again with this version)")
    kind = manifest.get("kind", "detector")
    needed = {"detector": ("sample_rate", "model", "scorer", "pooling", "threshold"),
              "ensemble": ("sample_rate", "members", "combine", "normalize", "threshold")}
    if kind not in needed:
        raise ConfigError(path, f"unknown export kind {kind!r}")
    for key in needed[kind]:
        if key not in manifest:
            raise ConfigError(path, f"no {key!r} entry")
    return manifest


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` (or one ``.npy`` as ``{"": array}``), never unpickling.

    Raises:
        ConfigError: Missing or unreadable file.
    """
    try:
        if path.suffix == ".npy":
            return {"": np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError as exc:
        raise ConfigError(path, "missing from the export folder") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(path, f"cannot read arrays: {exc}") from exc
