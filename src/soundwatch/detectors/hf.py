"""Hugging Face audio encoders through ``transformers`` (``soundwatch[hf]``): AST and SSL models.

The weights come from a local folder (``save_pretrained`` layout) or the Hugging Face cache;
with ``HF_HUB_OFFLINE=1`` nothing is downloaded (``huggingface_hub`` honours it). The input
preparation is done here in torch: AST's Kaldi filterbank (``transformers``' own feature
extractor needs torchaudio), and the per-clip normalisation of wav2vec 2.0 / HuBERT / WavLM.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from soundwatch.detectors.encoders import EncoderModel, InputSpec, check_whole, register_encoder
from soundwatch.detectors.networks.beats import kaldi_fbank
from soundwatch.errors import ConfigError, DetectorError

__all__ = ["HF_MODELS", "HfAstEncoder", "HfSslEncoder", "hf_ast", "hf_ssl", "load_hf_model"]

log = logging.getLogger(__name__)

HF_MODELS = {
    "hf-ast": "MIT/ast-finetuned-audioset-10-10-0.4593",
    "hf-ssl": "facebook/hubert-base-ls960",
}
"""Default model of each entry (a Hugging Face repository id)."""

_AST_DEFAULTS = {"mean": -4.2677393, "std": 4.5689974, "do_normalize": True}


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ConfigError("transformers", "is not installed: pip install 'soundwatch[hf]'"
                          ) from None
    return transformers


def load_hf_model(name: str, model: str) -> tuple[nn.Module, dict[str, Any]]:
    """A ``transformers`` model (``AutoModel``) and its feature-extractor settings.

    Args:
        name: The encoder entry (for messages).
        model: A local folder written by ``save_pretrained``, or a repository id looked up
            in the Hugging Face cache (downloaded there unless ``HF_HUB_OFFLINE=1``).

    Returns:
        The model in eval mode with frozen parameters, and the ``preprocessor_config.json``
        values (empty when there is none).

    Raises:
        ConfigError: ``transformers`` missing.
        DetectorError: The model cannot be found or read.
    """
    transformers = _transformers()
    local = Path(model).expanduser()
    source = str(local) if local.is_dir() else model
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        net = transformers.AutoModel.from_pretrained(source, local_files_only=offline)
    except (OSError, ValueError, KeyError) as exc:
        hint = " (offline: HF_HUB_OFFLINE is set and it is not in the cache)" if offline else ""
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DetectorError(f"encoder {name}.model", f"cannot load {model!r}{hint}: {first}"
                            ) from None
    settings: dict[str, Any] = {}
    config_file = local / "preprocessor_config.json" if local.is_dir() else None
    if config_file is None:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, "preprocessor_config.json")
            config_file = Path(cached) if isinstance(cached, str) else None
        except Exception:  # an id the cache does not know: defaults apply
            config_file = None
    if config_file is not None and config_file.is_file():
        try:
            settings = json.loads(config_file.read_text())
        except (OSError, ValueError) as exc:
            raise DetectorError(config_file, f"unreadable preprocessor config ({exc})"
                                ) from None
    net.requires_grad_(False)
    return net.eval(), settings


def _layer_list(net: nn.Module) -> list[nn.Module]:
    """The Transformer layers of a ``transformers`` encoder (its longest ModuleList)."""
    lists = [m for m in net.modules() if isinstance(m, nn.ModuleList)]
    count = getattr(net.config, "num_hidden_layers", None)
    matching = [m for m in lists if len(m) == count] or lists
    return list(max(matching, key=len)) if matching else []


class _HfEncoder(nn.Module):
    """Shared: frozen in eval mode, top layers optionally trainable, hidden state choice."""

    input_kind = "waveform"
    trainable = False

    def __init__(self, net: nn.Module, layer: int | None, finetune: int) -> None:
        super().__init__()
        self.model = net
        self.layer = layer
        self.num_features = int(net.config.hidden_size)
        layers = _layer_list(net)[:layer]
        for block in layers[len(layers) - finetune:] if finetune else []:
            block.requires_grad_(True)
        self.finetune = finetune

    def _hidden(self, **inputs: torch.Tensor) -> torch.Tensor:
        out = self.model(**inputs, output_hidden_states=self.layer is not None)
        return out.hidden_states[self.layer] if self.layer is not None \
            else out.last_hidden_state

    @staticmethod
    def _wave(x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            if x.shape[1] != 1:
                raise ValueError(f"reads one waveform channel, got {x.shape[1]}")
            x = x[:, 0]
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as ``forward_features``."""
        return self.forward_features(x)  # type: ignore[attr-defined]

    def train(self, mode: bool = True) -> _HfEncoder:
        """Stays in eval mode (frozen, or fine-tuned without dropout)."""
        return super().train(False)


class HfAstEncoder(_HfEncoder):
    """AST (Audio Spectrogram Transformer) over waveform windows.

    Kaldi fbank (Hanning window, ``num_mel_bins``), padded or cut to ``max_length``
    frames, normalised ``(x - mean) / (2 std)``; embedding: the mean of its patch tokens
    (``layer``: of that hidden state) or AST's pooled CLS/distillation output (``pooled``).

    Args:
        net: An ``ASTModel``.
        settings: The feature extractor's ``mean``, ``std``, ``do_normalize``.
        layer: Hidden state used (0: embeddings; ``None``: the last).
        finetune: Top layers made trainable.
        pooled: Use the pooled output instead of the mean of the tokens.
    """

    def __init__(self, net: nn.Module, settings: dict[str, Any], layer: int | None = None,
                 finetune: int = 0, pooled: bool = False) -> None:
        super().__init__(net, layer, finetune)
        values = {**_AST_DEFAULTS, **{k: settings[k] for k in _AST_DEFAULTS if k in settings}}
        self.mean, self.std = float(values["mean"]), float(values["std"])
        self.normalise = bool(values["do_normalize"])
        self.n_mels = int(net.config.num_mel_bins)
        self.max_length = int(net.config.max_length)
        self.pooled = pooled

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, N]`` at 16 kHz -> AST input ``[B, max_length, num_mel_bins]``."""
        fbank = kaldi_fbank(wave * 2 ** 15, n_mels=self.n_mels, window="hanning")
        fbank = fbank[:, : self.max_length]
        fbank = nn.functional.pad(fbank, (0, 0, 0, self.max_length - fbank.shape[1]))
        return (fbank - self.mean) / (2 * self.std) if self.normalise else fbank

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Windows ``[B, 1, T]`` or ``[B, T]`` -> embeddings ``[B, hidden_size]``."""
        inputs = self.features(self._wave(x))
        if self.pooled and self.layer is None:
            return self.model(input_values=inputs).pooler_output
        return self._hidden(input_values=inputs)[:, 2:].mean(dim=1)


class HfSslEncoder(_HfEncoder):
    """wav2vec 2.0 / HuBERT / WavLM (any ``AutoModel`` reading ``input_values`` waveforms).

    Each window is normalised to zero mean and unit variance when the feature extractor says
    ``do_normalize`` (the default); the embedding is the time mean of a hidden state.

    Args:
        net: The model.
        settings: The feature extractor's ``do_normalize``.
        layer: Hidden state used (0: the CNN features projected; ``None``: the last).
        finetune: Top layers made trainable.
    """

    def __init__(self, net: nn.Module, settings: dict[str, Any], layer: int | None = None,
                 finetune: int = 0) -> None:
        super().__init__(net, layer, finetune)
        self.normalise = bool(settings.get("do_normalize", True))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Windows ``[B, 1, T]`` or ``[B, T]`` -> embeddings ``[B, hidden_size]``."""
        wave = self._wave(x)
        if self.normalise:
            wave = (wave - wave.mean(dim=-1, keepdim=True)) / torch.sqrt(
                wave.var(dim=-1, keepdim=True, unbiased=False) + 1e-7)
        return self._hidden(input_values=wave).mean(dim=1)


def _build(name: str, spec: InputSpec, model: str | None, layer: Any, finetune: Any
           ) -> tuple[nn.Module, dict[str, Any], int | None, int]:
    if spec.layout != "windows" or spec.channels != 1:
        raise DetectorError(f"encoder {name}", "reads windows of a 16 kHz waveform (one "
                            "channel); choose the waveform front-end")
    check_whole(name, "finetune", finetune, 0)
    net, settings = load_hf_model(name, model or HF_MODELS[name])
    n_layers = int(getattr(net.config, "num_hidden_layers", 0))
    if layer is not None:
        check_whole(name, "layer", layer, 0, n_layers)
    top = n_layers if layer is None else layer
    check_whole(name, "finetune", finetune, 0, top)
    log.info("%s: %s (%d layers, dim %d)", name, model or HF_MODELS[name], n_layers,
             net.config.hidden_size)
    return net, settings, layer, finetune


def _finetune(params: dict[str, Any]) -> bool:
    value = params.get("finetune", 0)
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@register_encoder("hf-ast", trainable=False, trains=_finetune)
def hf_ast(spec: InputSpec, *, model: str | None = None, layer: int | None = None,
           finetune: int = 0, pooled: bool = False) -> EncoderModel:
    """Audio Spectrogram Transformer through transformers (``soundwatch[hf]``); token mean.

    Args:
        spec: Windows ``[1, samples]`` of the waveform front-end at 16 kHz.
        model: Local folder or Hugging Face id (default
            ``MIT/ast-finetuned-audioset-10-10-0.4593``, BSD-3-Clause).
        layer: Hidden state used as the embedding (default: the last).
        finetune: Top layers trained by the detector's objective; 0 keeps it frozen.
        pooled: AST's pooled CLS/distillation output instead of the token mean.
    """
    net, settings, layer, finetune = _build("hf-ast", spec, model, layer, finetune)
    if pooled not in (True, False):
        raise DetectorError("encoder hf-ast.pooled", f"must be true or false, got {pooled!r}")
    return EncoderModel(None, HfAstEncoder(net, settings, layer, finetune, pooled))


@register_encoder("hf-ssl", trainable=False, trains=_finetune)
def hf_ssl(spec: InputSpec, *, model: str | None = None, layer: int | None = None,
           finetune: int = 0) -> EncoderModel:
    """Self-supervised waveform model (HuBERT, wav2vec 2.0, WavLM) through transformers.

    Args:
        spec: Windows ``[1, samples]`` of the waveform front-end at 16 kHz (at least 400).
        model: Local folder or Hugging Face id (default ``facebook/hubert-base-ls960``,
            Apache-2.0).
        layer: Hidden state used as the embedding (default: the last).
        finetune: Top layers trained by the detector's objective; 0 keeps it frozen.
    """
    if spec.window is not None and spec.window < 400:
        raise DetectorError("encoder hf-ssl", f"needs windows of at least 400 samples, got "
                            f"{spec.window}")
    net, settings, layer, finetune = _build("hf-ssl", spec, model, layer, finetune)
    return EncoderModel(None, HfSslEncoder(net, settings, layer, finetune))
