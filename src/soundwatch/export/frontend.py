"""ONNX export of a front-end: the library's own module, traced.

There are no twins: :func:`frontend_graph` returns the same
:class:`~soundwatch.features.FrontEnd` the library extracts features with. Its ``forward``
branches to traceable operators while ``torch.onnx.export`` runs (the TorchScript exporter,
opset 17+): the spectrogram as DFT matrix products (or a strided ``Conv``, or the ``STFT``
operator: the front-end's ``dft``), ``MatMul`` with librosa's mel basis, ``Log``, slices for
stacked frames, a ``Gather`` for waveform windows. What cannot be traced (the CQT, the
waveform band-pass filter) is refused with the reason
(:func:`soundwatch.features.not_exportable_reason`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from soundwatch.errors import ConfigError
from soundwatch.features.configs import make_config
from soundwatch.features.frontends import (
    DFT_MODES,
    FRONTENDS,
    NOT_EXPORTABLE,
    STFT,
    FrontEnd,
    not_exportable_reason,
)

__all__ = [
    "DEFAULT_OPSET",
    "DFT_MODES",
    "NOT_EXPORTABLE",
    "export_frontend",
    "export_module",
    "frontend_graph",
    "frontend_kind",
    "not_exportable_reason",
]

DEFAULT_OPSET = 17
"""ONNX opset of every export (17 introduced the ``STFT`` operator)."""


def frontend_kind(name: str, params: dict[str, Any] | None = None) -> tuple[str, Any]:
    """The front-end kind and its validated config for a name (a kind or a preset)."""
    return make_config(name, **(params or {}))


def frontend_graph(
    name: str, params: dict[str, Any] | None = None, *, dft: str = "auto"
) -> FrontEnd:
    """The front-end ``name`` with ``params``, checked exportable (a new module, eval mode).

    The same class the library scores with; ``dft`` chooses the traced spectrogram's
    operator (see :class:`soundwatch.features.frontends.STFT`).

    Raises:
        ConfigError: Unknown front-end or parameter, or a front-end that cannot be exported
            (the reason says which part and why).
    """
    kind, cfg = frontend_kind(name, params)
    reason = not_exportable_reason(name, params)
    if reason is not None:
        raise ConfigError(f"frontend {name}", f"cannot be exported to ONNX: {reason}")
    cls = FRONTENDS.get(kind)
    if issubclass(cls, STFT):
        return cls(cfg, dft=dft).eval()
    if dft != "auto":
        raise ConfigError("dft", f"front-end {name} computes no spectrogram")
    return cls(cfg).eval()


def _dynamic_unfold(g: Any, x: Any, dimension: Any, size: Any, step: Any) -> Any:
    """ONNX for ``Tensor.unfold`` on the last dimension, also when its length is dynamic.

    The built-in symbolic needs the dimension's size at export time; encoders that cut
    frames inside a window (CREPE) see windows whose batch size is dynamic and lose it.
    Here: frame starts from ``Shape``, ``Range`` and one ``Gather``.
    """
    from torch.onnx import symbolic_helper as sh

    dim = sh._get_const(dimension, "i", "dimension")
    size = sh._get_const(size, "i", "size")
    step = sh._get_const(step, "i", "step")
    rank = sh._get_tensor_rank(x)
    if dim != -1 and (rank is None or dim != rank - 1):
        return sh._unimplemented("unfold", "only the last dimension is supported", x)

    def const(value: Any) -> Any:
        return g.op("Constant", value_t=torch.tensor(value, dtype=torch.int64))

    length = g.op("Gather", g.op("Shape", x), const(-1), axis_i=0)
    count = g.op("Add", g.op("Div", g.op("Sub", length, const(size)), const(step)), const(1))
    starts = g.op("Mul", g.op("Range", const(0), count, const(1)), const(step))
    offsets = g.op("Range", const(0), const(size), const(1))
    index = g.op("Add", g.op("Unsqueeze", starts, const([1])),
                 g.op("Unsqueeze", offsets, const([0])))
    return g.op("Gather", x, index, axis_i=-1)


def export_module(
    module: nn.Module,
    path: str | Path,
    example: torch.Tensor,
    *,
    input_name: str = "waveform",
    output_name: str = "features",
    dynamic: dict[str, dict[int, str]] | None = None,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export ``module`` (one input, one output) to an ONNX file, written atomically.

    Uses the TorchScript exporter (``dynamo=False``, no onnxscript needed), with
    ``Tensor.unfold`` exported for dynamic lengths (:func:`_dynamic_unfold`).

    Raises:
        ConfigError: ``onnx`` is not installed (with the install hint).
    """
    from soundwatch.atomic import atomic_path
    from soundwatch.export.hints import require

    require("onnx")
    path = Path(path)
    if dynamic is None:
        dynamic = {input_name: {0: "batch", 1: "samples"}, output_name: {0: "batch"}}
    module = module.eval()
    torch.onnx.register_custom_op_symbolic("aten::unfold", _dynamic_unfold, opset)
    try:
        with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and constant-folding chatter
            torch.onnx.export(
                module, (example,), str(tmp), input_names=[input_name],
                output_names=[output_name], dynamic_axes=dynamic, opset_version=opset,
                dynamo=False, do_constant_folding=True,
            )
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::unfold", opset)
    return path


def export_frontend(
    name: str,
    path: str | Path,
    params: dict[str, Any] | None = None,
    *,
    opset: int = DEFAULT_OPSET,
    dft: str = "auto",
) -> Path:
    """Export a front-end as an ONNX graph from waveforms ``[B, L]`` float32 to its features.

    Args:
        name: Front-end name or preset (see ``soundwatch.features.list_frontends``).
        path: The ``.onnx`` file to write.
        params: The front-end's parameters.
        opset: ONNX opset (17 or later).
        dft: The spectrogram's operator (see :class:`soundwatch.features.frontends.STFT`).

    Returns:
        The written path. Input ``waveform`` ``[batch, samples]``, output ``features``.

    Raises:
        ConfigError: The front-end cannot be exported (reason given) or onnx is missing.
    """
    graph = frontend_graph(name, params, dft=dft)
    example = torch.zeros(2, max(4 * _frame_span(graph.config), 4096))
    example[:, ::7] = 0.1
    return export_module(graph, path, example, opset=opset)


def _frame_span(cfg: Any) -> int:
    return int(getattr(cfg, "n_fft", 0) or getattr(cfg, "window", 0) or 1)
