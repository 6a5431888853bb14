"""Write an export folder: the ONNX graph, the scorer's arrays, threshold, scores, manifest."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from soundwatch.errors import ConfigError, DetectorError
from soundwatch.runtime.manifest import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_FILE,
    MODEL_FILE,
    SCORER_FILE,
    SCORES_FILE,
)

__all__ = ["ExportParts", "write_export"]

log = logging.getLogger(__name__)


class ExportParts:
    """Everything one export folder holds, gathered from a fitted detector.

    Args:
        graph: A torch module from waveforms ``[B, L]`` float32 to items ``[B, n, d]``.
        sample_rate: The rate the graph expects.
        view: The scorer's view the graph outputs (``vectors``, ``residual``...).
        pooling: ``(name, params)`` applied to each clip's items before the scorer.
        scorer: The fitted scorer (its ``state()`` arrays are written).
        threshold: The fitted threshold and its policy name.
        train_scores: The out-of-fold training scores.
        info: Extra manifest entries (detector name and params, front-end, windows...).
        channel: Channel the audio loader keeps.
        batch: Whether clips of equal length may share a batch in the graph.
    """

    def __init__(
        self,
        *,
        graph: Any,
        sample_rate: int,
        view: str,
        pooling: tuple[str, Mapping[str, Any]],
        scorer: Any,
        threshold: tuple[float, str],
        train_scores: np.ndarray,
        info: Mapping[str, Any],
        channel: int | str = 0,
        batch: bool = True,
    ) -> None:
        self.graph = graph
        self.sample_rate = int(sample_rate)
        self.view = view
        self.pooling = pooling
        self.scorer = scorer
        self.threshold = threshold
        self.train_scores = np.asarray(train_scores, dtype=np.float64).reshape(-1)
        self.info = dict(info)
        self.channel = channel
        self.batch = batch


def _plain(obj: Any) -> Any:
    """JSON-able copy (tuples to lists, numpy scalars to numbers)."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else
                                 str(o)))


def write_export(
    directory: str | Path, parts: ExportParts, *, example_seconds: float = 2.0,
    opset: int | None = None,
) -> Path:
    """Write ``parts`` into ``directory`` (created) and check the graph loads.

    Files: ``model.onnx``, ``scorer.npz`` (``allow_pickle=False``), ``train_scores.npy``,
    ``manifest.json`` (written last, atomically: a folder without it is incomplete).

    Args:
        directory: The export folder.
        parts: What to export.
        example_seconds: Length of the tracing example (any length works afterwards).
        opset: ONNX opset (default :data:`soundwatch.export.frontend.DEFAULT_OPSET`).

    Returns:
        The folder.

    Raises:
        ConfigError: onnx missing.
        DetectorError: The graph cannot be exported (the exporter's first line).
    """
    import torch

    import soundwatch
    from soundwatch.atomic import atomic_path, write_json
    from soundwatch.export.frontend import DEFAULT_OPSET, export_module
    from soundwatch.export.hints import require

    require("onnx")
    opset = opset or DEFAULT_OPSET
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_FILE).unlink(missing_ok=True)
    n = max(int(example_seconds * parts.sample_rate), 1)
    gen = torch.Generator().manual_seed(0)
    example = 0.1 * torch.randn(2, n, generator=gen)
    try:
        export_module(parts.graph, out / MODEL_FILE, example, output_name="items",
                      dynamic={"waveform": {0: "batch", 1: "samples"},
                               "items": {0: "batch", 1: "items"}}, opset=opset)
    except ConfigError:
        raise
    except Exception as exc:  # the exporter raises many types; one short line for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = first.split(" [Caused by")[0]
        if len(first) > 200:
            first = first[:197] + "..."
        raise DetectorError(out / MODEL_FILE, f"torch.onnx.export failed: {first}") from exc

    state = {k: np.asarray(v) for k, v in parts.scorer.state().items()}
    for key, value in state.items():
        if value.dtype == object:
            raise ConfigError(out / SCORER_FILE, f"scorer array {key!r} holds Python objects")
    with atomic_path(out / SCORER_FILE) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **state)
    with atomic_path(out / SCORES_FILE) as tmp, open(tmp, "wb") as handle:
        np.save(handle, parts.train_scores, allow_pickle=False)

    import onnx

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "soundwatch_version": soundwatch.__version__,
        "opset": opset,
        "onnx_version": onnx.__version__,
        "torch_version": torch.__version__,
        "sample_rate": parts.sample_rate,
        "channel": parts.channel,
        "model": {"file": MODEL_FILE, "input": "waveform", "output": "items",
                  "view": parts.view, "batch": parts.batch},
        "pooling": {"name": parts.pooling[0], "params": dict(parts.pooling[1])},
        "scorer": {"name": parts.scorer.name, "params": parts.scorer.get_params(),
                   "state": SCORER_FILE},
        "threshold": {"value": float(parts.threshold[0]), "policy": parts.threshold[1]},
        "train_scores": SCORES_FILE,
        **parts.info,
    }
    write_json(out / MANIFEST_FILE, _plain(manifest))
    log.info("exported to %s", out)
    return out
