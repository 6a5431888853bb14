"""ONNX-exportable twins of the feature front-ends: the same numbers from traceable operators.

The front-ends in :mod:`soundwatch.features.frontends` take shortcuts that a graph cannot hold
(numpy magnitude, chunking, scipy filters). The modules here recompute the same features from
the same configuration with operators that ``torch.onnx.export`` (TorchScript exporter, opset
17+) turns into ONNX: ``STFT`` for the spectrogram, ``MatMul`` with librosa's mel basis,
``Log``, and slices for stacked frames.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from soundwatch.errors import ConfigError
from soundwatch.features.configs import (
    FramesConfig,
    LogMelConfig,
    STFTConfig,
    WaveformConfig,
    make_config,
)

__all__ = [
    "DEFAULT_OPSET",
    "NOT_EXPORTABLE",
    "FrontEndGraph",
    "export_frontend",
    "frontend_graph",
    "frontend_kind",
    "not_exportable_reason",
]

DEFAULT_OPSET = 17
"""ONNX opset of every export (17 introduced the ``STFT`` operator)."""

NOT_EXPORTABLE = {
    "cqt": "the nnAudio CQT (a complex convolution with reflect padding per octave) is not "
    "mirrored for ONNX",
}
"""Front-end kinds that cannot be exported, with the reason."""

_FILTER_REASON = (
    "the waveform band-pass filter (zero-phase IIR, scipy sosfiltfilt) has no ONNX operator"
)


def _frames(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Frames ``[B, F, n_fft]`` every ``hop`` samples of ``[B, L]`` (no padding).

    When ``hop`` divides ``n_fft`` the frames are ``n_fft / hop`` shifted slices of
    ``hop``-sample chunks concatenated (cheap in onnxruntime); otherwise a Gather.
    """
    if n_fft % hop == 0:
        r = n_fft // hop
        chunks = x[:, : x.shape[-1] // hop * hop].reshape(x.shape[0], -1, hop)
        count = chunks.shape[1] - r + 1
        return torch.cat([chunks[:, i : count + i] for i in range(r)], dim=-1)
    count = torch.div(torch._shape_as_tensor(x)[-1] - n_fft, hop, rounding_mode="floor") + 1
    index = (torch.arange(count) * hop)[:, None] + torch.arange(n_fft)[None, :]
    return x[:, index]


DFT_MODES = ("fft2", "conv", "stft")
"""Ways :class:`SpectrogramGraph` computes the spectrogram (``dft=``)."""


def _factor(n: int) -> int:
    """The largest factor of ``n`` not above its square root (1 for a prime)."""
    for f in range(int(np.sqrt(n)), 1, -1):
        if n % f == 0:
            return f
    return 1


def frontend_kind(name: str, params: dict[str, Any] | None = None) -> tuple[str, Any]:
    """The front-end kind and its validated config for a name (a kind or a preset)."""
    return make_config(name, **(params or {}))


def not_exportable_reason(name: str, params: dict[str, Any] | None = None) -> str | None:
    """Why a front-end cannot be exported (one line), or ``None`` when it can."""
    kind, cfg = frontend_kind(name, params)
    from soundwatch.features.noise_aware import export_reason  # a noise-aware option

    if (noise := export_reason(params)) is not None:
        return noise
    if kind in NOT_EXPORTABLE:
        return NOT_EXPORTABLE[kind]
    if isinstance(cfg, WaveformConfig) and (cfg.low_hz is not None or cfg.high_hz is not None):
        return _FILTER_REASON
    return None


class FrontEndGraph(nn.Module):
    """Base of the exportable front-ends: waveforms ``[B, L]`` float32 to features."""

    kind: str = ""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    def config_dict(self) -> dict[str, Any]:
        """The front-end's configuration as a plain dict (for the export manifest)."""
        return dataclasses.asdict(self.config)


class WaveformGraph(FrontEndGraph):
    """The ``waveform`` front-end without a filter: standardise, crop or pad, cut windows."""

    kind = "waveform"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, L]`` -> ``[B, L']`` or ``[B, n_windows, window]``."""
        cfg = self.config
        if cfg.standardize:
            mean = x.mean(dim=-1, keepdim=True)
            std = (x - mean).square().mean(dim=-1, keepdim=True).sqrt()
            x = (x - mean) / (std + 1e-8)
        if cfg.length is not None:
            x = nn.functional.pad(x, (0, cfg.length))[..., : cfg.length]
        if cfg.pad:
            x = nn.functional.pad(x, (cfg.pad, cfg.pad))
        if cfg.window is not None:
            hop = cfg.hop or cfg.window
            length = torch._shape_as_tensor(x)[-1]
            n_win = torch.clamp(torch.div(length - cfg.window, hop, rounding_mode="floor") + 1,
                                min=0)
            starts = torch.arange(n_win, device=x.device) * hop
            index = starts[:, None] + torch.arange(cfg.window, device=x.device)[None, :]
            x = x[:, index]
        return x


class SpectrogramGraph(FrontEndGraph):
    """The ``stft``, ``logmel`` and ``frames`` front-ends as an ONNX graph.

    Three ways to compute the spectrogram, all with the same numbers (float32):

    - ``"fft2"``: frames gathered from the padded signal, then one Cooley-Tukey step
      written as matrix products: ``n_fft = N1 * N2``, a DFT of size ``N1`` (MatMul),
      twiddle factors, a DFT of size ``N2`` (MatMul). About 5x fewer multiplications than
      a direct DFT and onnxruntime's fast GEMM: the default when ``n_fft`` has a factor
      pair with both factors >= 4;
    - ``"conv"``: a strided ``Conv`` with the windowed cosine and sine kernels (a direct
      DFT), the default for other sizes;
    - ``"stft"``: the ONNX ``STFT`` operator (opset 17). onnxruntime's kernel is several
      times slower than both, and runs a less precise direct DFT when ``n_fft`` is not a
      power of two.

    Args:
        kind: ``"stft"``, ``"logmel"`` or ``"frames"``.
        config: That front-end's configuration.
        dft: ``"auto"`` (as above), ``"fft2"``, ``"conv"`` or ``"stft"``.
    """

    def __init__(self, kind: str, config: STFTConfig, dft: str = "auto") -> None:
        super().__init__(config)
        self.kind = kind
        n_fft = config.n_fft
        n1 = _factor(n_fft)
        if dft == "auto":
            dft = "fft2" if n1 >= 4 else "conv"
        if dft not in DFT_MODES:
            raise ConfigError("dft", f"{dft!r} is not one of 'auto', "
                              f"{', '.join(map(repr, DFT_MODES))}")
        if dft == "fft2" and n1 < 2:
            raise ConfigError("dft", f"fft2 needs a composite n_fft, got {n_fft}")
        self.dft = dft
        win_length = config.win_length or n_fft
        window = torch.hann_window(win_length, periodic=True, dtype=torch.float64)
        left = (n_fft - win_length) // 2  # torch.stft centres a shorter window
        window = nn.functional.pad(window, (left, n_fft - win_length - left))
        self.register_buffer("window", window.float(), persistent=False)
        if dft == "conv":
            k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
            n = torch.arange(n_fft, dtype=torch.float64)[None, :]
            angle = 2 * np.pi * ((k * n) % n_fft) / n_fft
            kernels = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window])
            self.register_buffer("kernels", kernels.float()[:, None, :], persistent=False)
        if dft == "fft2":
            self._fft2_buffers(n_fft, n1, window)
        if isinstance(config, LogMelConfig):
            from soundwatch.features.frontends import _mel_basis

            mel = _mel_basis(config.sr, config.n_fft, config.n_mels, config.fmin, config.fmax,
                             config.htk, config.mel_norm)
            self.register_buffer("mel_basis", torch.from_numpy(np.array(mel)), persistent=False)

    def _fft2_buffers(self, n_fft: int, n1: int, window: torch.Tensor) -> None:
        """DFT matrices of the two stages and the twiddle factors (float64, then float32)."""
        n2 = n_fft // n1
        self.n1, self.n2 = n1, n2
        tau = 2 * np.pi
        a = torch.arange(n1, dtype=torch.float64)
        b = torch.arange(n2, dtype=torch.float64)
        stage1 = tau * torch.outer(a, a) / n1  # [k1, m1]
        twiddle = tau * torch.outer(a, b) / n_fft  # [k1, m2]
        stage2 = tau * torch.outer(b, b) / n2  # [m2, k2]
        for name, value in (("cos1", torch.cos(stage1)), ("sin1", torch.sin(stage1)),
                            ("tw_cos", torch.cos(twiddle)), ("tw_sin", torch.sin(twiddle)),
                            ("cos2", torch.cos(stage2)), ("sin2", torch.sin(stage2)),
                            ("window2d", window.reshape(n1, n2))):
            self.register_buffer(name, value.float(), persistent=False)

    def _fft2_power(self, x: torch.Tensor) -> torch.Tensor:
        """``|DFT|^2`` of the frames of padded waveforms ``[B, L]`` -> ``[B, bins, frames]``.

        Sample ``m = m1 * N2 + m2`` of a frame, bin ``k = k1 + N1 * k2``.
        """
        cfg = self.config
        n_fft, hop = cfg.n_fft, cfg.hop_length
        frames = _frames(x, n_fft, hop).reshape(x.shape[0], -1, self.n1, self.n2)
        frames = frames * self.window2d
        re1 = torch.matmul(self.cos1, frames)  # [B, F, k1, m2]
        im1 = -torch.matmul(self.sin1, frames)
        re2 = re1 * self.tw_cos + im1 * self.tw_sin  # times exp(-i * twiddle)
        im2 = im1 * self.tw_cos - re1 * self.tw_sin
        re = torch.matmul(re2, self.cos2) + torch.matmul(im2, self.sin2)  # [B, F, k1, k2]
        im = torch.matmul(im2, self.cos2) - torch.matmul(re2, self.sin2)
        power = (re.square() + im.square()).transpose(-1, -2)  # [B, F, k2, k1]: k order
        power = power.reshape(x.shape[0], -1, n_fft)[..., : n_fft // 2 + 1]
        return power.transpose(1, 2)

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """``|STFT| ** power`` ``[B, n_fft // 2 + 1, frames]``."""
        cfg = self.config
        if cfg.center:
            pad = cfg.n_fft // 2
            if cfg.pad_mode == "constant":
                x = nn.functional.pad(x, (pad, pad))
            else:
                x = nn.functional.pad(x.unsqueeze(1), (pad, pad), mode=cfg.pad_mode).squeeze(1)
        if self.dft == "fft2":
            power = self._fft2_power(x)
        elif self.dft == "conv":
            spec = nn.functional.conv1d(x.unsqueeze(1), self.kernels, stride=cfg.hop_length)
            bins = cfg.n_fft // 2 + 1
            power = spec[:, :bins].square() + spec[:, bins:].square()
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # return_complex=False is deprecated in eager
                spec = torch.stft(x, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                  win_length=cfg.n_fft, window=self.window, center=False,
                                  return_complex=False)
            power = spec.square().sum(dim=-1)
        if cfg.power == 2.0:
            return power
        if cfg.power == 1.0:
            return power.sqrt()
        return power.pow(cfg.power / 2.0)

    def logmel(self, x: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[B, n_mels, frames]`` as :class:`soundwatch.features.LogMel` computes it."""
        from soundwatch.features.frontends import log_compress

        return log_compress(torch.matmul(self.mel_basis, self.spectrogram(x)), self.config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, L]`` -> the front-end's features."""
        if self.kind == "stft":
            return self.spectrogram(x)
        mel = self.logmel(x)
        if self.kind == "logmel":
            return mel
        p = self.config.n_frames
        # vector v = concat(mel[:, v], ..., mel[:, v + P - 1]); slices keep the length dynamic
        parts = [mel[..., i : mel.shape[-1] - p + 1 + i] for i in range(p)]
        stacked = torch.stack(parts, dim=1)  # [B, P, M, n_vec]
        b, _, m, n_vec = stacked.shape
        return stacked.permute(0, 3, 1, 2).reshape(b, n_vec, p * m)


def frontend_graph(
    name: str, params: dict[str, Any] | None = None, *, dft: str = "auto"
) -> FrontEndGraph:
    """The exportable twin of the front-end ``name`` with ``params``.

    ``dft`` chooses the spectrogram's operator (see :class:`SpectrogramGraph`).

    Raises:
        ConfigError: Unknown front-end or parameter, or a front-end that cannot be exported
            (the reason says which part and why).
    """
    kind, cfg = frontend_kind(name, params)
    reason = not_exportable_reason(name, params)
    if reason is not None:
        raise ConfigError(f"frontend {name}", f"cannot be exported to ONNX: {reason}")
    if kind == "waveform":
        return WaveformGraph(cfg)
    if kind in ("stft", "logmel", "frames"):
        assert isinstance(cfg, STFTConfig)
        if kind == "frames":
            assert isinstance(cfg, FramesConfig)
        return SpectrogramGraph(kind, cfg, dft).eval()
    raise ConfigError(f"frontend {name}", f"no ONNX twin for front-end kind {kind!r}")


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
        dft: The spectrogram's operator (see :class:`SpectrogramGraph`).

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
