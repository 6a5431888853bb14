"""soundwatch's own pretrained machine-sound encoder (``soundwatch-machines``), frozen.

A small 2-D CNN on a 64-band log-mel, trained by ``scripts/pretrain_encoder.py`` on a
synthetic machines corpus (five machine types, every attribute combination, both
domains) to classify machine type x attributes and the anomaly kind (the machine's own
faults and the synthetic-anomaly generator's kinds) with two AdaCos heads. The weights
(``soundwatch/assets/soundwatch_machines.pt``) and their front-end settings
(``soundwatch_machines.json``) ship with the package; the heads are dropped.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from soundwatch.detectors.encoders import EncoderModel, InputSpec, register_encoder
from soundwatch.errors import DetectorError

__all__ = [
    "ASSET_NAME",
    "OUTPUTS",
    "MachineSoundNet",
    "asset_paths",
    "load_machine_encoder",
    "soundwatch_machines",
]

ASSET_NAME = "soundwatch_machines"
"""Stem of the weights (``.pt``) and settings (``.json``) files in ``soundwatch/assets``."""

TIME_POOLS = ("mean", "meanmax")
"""Pooling of the last conv map over time inside a window."""

OUTPUTS = ("embedding", "conv")
"""What the encoder gives: the trained embedding, or the last conv map (time-pooled)."""

DEFAULT_SETTINGS: dict[str, Any] = {
    "sr": 16000, "n_fft": 1024, "hop_length": 256, "n_mels": 64, "fmin": 20.0,
    "fmax": 8000.0, "channels": [16, 32, 64, 128], "embedding_dim": 128, "time_pool": "meanmax",
}
"""Front-end and network settings of the shipped encoder (the JSON file repeats them)."""


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class MachineSoundNet(nn.Module):
    """Log-mel front-end + 2-D CNN + linear embedding, on 16 kHz waveform windows.

    The log-mel (dB) of each window has its mean over bins and frames removed (a gain
    change does not change the embedding), then is standardised per band with the
    training corpus's statistics (buffers).

    Args:
        settings: ``sr``, ``n_fft``, ``hop_length``, ``n_mels``, ``fmin``, ``fmax``,
            ``channels`` (conv channels per stage; a 2x2 max-pool after each but the last),
            ``embedding_dim`` and ``time_pool`` (how the last conv map is pooled over time:
            ``"mean"``, or ``"meanmax"``, the mean and the max concatenated).
        output: ``"embedding"`` or ``"conv"`` (see :data:`OUTPUTS`).
    """

    def __init__(self, settings: dict[str, Any], output: str = "embedding") -> None:
        super().__init__()
        from soundwatch.features import create_frontend

        s = {**DEFAULT_SETTINGS, **settings}
        self.settings = s
        self.output = output
        self.frontend = create_frontend(
            "logmel", sr=int(s["sr"]), n_fft=int(s["n_fft"]), hop_length=int(s["hop_length"]),
            n_mels=int(s["n_mels"]), fmin=float(s["fmin"]), fmax=float(s["fmax"]), center=False,
            win_length=None, power=2.0, htk=False, mel_norm="slaney", log_mult=10.0, amin=1e-10,
            top_db=None, normalize="none")  # every value pinned: the weights were trained on it
        n_mels, channels = int(s["n_mels"]), [int(c) for c in s["channels"]]
        self.register_buffer("band_mean", torch.zeros(n_mels, 1))
        self.register_buffer("band_std", torch.ones(n_mels, 1))
        layers: list[nn.Module] = []
        cin = 1
        for i, cout in enumerate(channels):
            layers.append(_conv(cin, cout))
            if i < len(channels) - 1:
                layers.append(nn.MaxPool2d(2))
            cin = cout
        self.body = nn.Sequential(*layers)
        self.freq_out = n_mels // 2 ** (len(channels) - 1)
        self.time_pool = str(s["time_pool"])
        if self.time_pool not in TIME_POOLS:
            raise DetectorError("encoder soundwatch-machines", f"time_pool {self.time_pool!r} "
                                f"is not one of {', '.join(TIME_POOLS)}")
        self.conv_dim = cin * self.freq_out * (2 if self.time_pool == "meanmax" else 1)
        self.proj = nn.Linear(self.conv_dim, int(s["embedding_dim"]))
        self.min_samples = int(s["n_fft"]) + (2 ** (len(channels) - 1) - 1) * int(s["hop_length"])

    @property
    def num_features(self) -> int:
        """Size of :meth:`forward_features`' output."""
        return self.conv_dim if self.output == "conv" else self.proj.out_features

    def logmel(self, x: torch.Tensor) -> torch.Tensor:
        """Waveform windows ``[B, 1, samples]`` or ``[B, samples]`` -> ``[B, n_mels, frames]``."""
        if x.dim() == 3:
            x = x[:, 0]
        from soundwatch.features import run_frontend

        with torch.no_grad():
            return run_frontend(self.frontend, x.float())  # chunked on the CPU

    def normalise(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[B, n_mels, frames]`` -> the network input (gain removed, standardised)."""
        mel = mel - mel.mean(dim=(1, 2), keepdim=True)
        return (mel - self.band_mean) / self.band_std

    def conv_features(self, mel: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel ``[B, n_mels, frames]`` -> time-pooled conv map ``[B, D]``."""
        h = self.body(mel.unsqueeze(1))  # [B, C, F', T']
        if self.time_pool == "meanmax":
            return torch.cat([h.mean(dim=3).flatten(1), h.amax(dim=3).flatten(1)], dim=1)
        return h.mean(dim=3).flatten(1)

    def embed_logmel(self, mel: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel -> embedding ``[B, num_features]`` (the trained output)."""
        return self.proj(self.conv_features(mel))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Waveform windows ``[B, 1, samples]`` -> embeddings ``[B, D]``."""
        if x.shape[-1] < self.min_samples:
            raise DetectorError("encoder soundwatch-machines", f"needs windows of at least "
                                f"{self.min_samples} samples, got {x.shape[-1]}")
        mel = self.normalise(self.logmel(x))
        if self.output == "conv":
            return self.conv_features(mel)
        return self.embed_logmel(mel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`forward_features` (the classification heads are not shipped)."""
        return self.forward_features(x)


def asset_paths(folder: str | Path | None = None) -> tuple[Path, Path]:
    """``(weights, settings)`` paths: in ``folder``, or in the package's ``assets``."""
    base = Path(folder) if folder is not None else Path(str(resources.files("soundwatch")
                                                             / "assets"))
    return base / f"{ASSET_NAME}.pt", base / f"{ASSET_NAME}.json"


def load_machine_encoder(folder: str | Path | None = None, output: str = "embedding"
                         ) -> MachineSoundNet:
    """The pretrained :class:`MachineSoundNet`, frozen and in eval mode.

    Args:
        folder: Where ``soundwatch_machines.pt`` / ``.json`` are (default: package data).
        output: ``"embedding"`` or ``"conv"``.

    Raises:
        DetectorError: A file is missing or unreadable (one line, naming it).
    """
    weights, settings_path = asset_paths(folder)
    where = "encoder soundwatch-machines"
    for path in (weights, settings_path):
        if not path.is_file():
            raise DetectorError(where, f"weights file {path} is missing (reinstall soundwatch, "
                                "or run scripts/pretrain_encoder.py)")
    try:
        meta = json.loads(settings_path.read_text(encoding="utf-8"))
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt file is a one-line error
        raise DetectorError(where, f"cannot read {weights.name}/{settings_path.name}: "
                            f"{type(exc).__name__}: {exc}".replace("\n", " ")) from exc
    net = MachineSoundNet(meta.get("settings", {}), output=output)
    try:
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except Exception as exc:  # noqa: BLE001
        raise DetectorError(where, f"{weights} does not match its settings: "
                            f"{str(exc).splitlines()[0]}") from exc
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@register_encoder("soundwatch-machines", trainable=False)
def soundwatch_machines(spec: InputSpec, *, output: str = "embedding") -> EncoderModel:
    """Machine-sound encoder pretrained by soundwatch on synthetic machines (2-D CNN, frozen).

    Reads windows of the 16 kHz waveform front-end (at least 2,816 samples; about 1 s,
    ``-p window_frames=16000``, is what it was trained on); each window's embedding.

    Args:
        spec: Windows ``[1, samples]`` of the waveform front-end at 16 kHz.
        output: ``"embedding"`` (128 values, the output trained with AdaCos heads) or
            ``"conv"`` (the last conv map's mean and max over time, 2,048 values).
    """
    name = "encoder soundwatch-machines"
    if spec.layout != "windows" or spec.channels != 1:
        raise DetectorError(name, "reads windows of a 16 kHz waveform (one channel); choose "
                            "the waveform front-end")
    if output not in OUTPUTS:
        raise DetectorError(f"{name}.output", f"{output!r} is not one of {', '.join(OUTPUTS)}")
    net = load_machine_encoder(output=output)
    if spec.window is not None and spec.window < net.min_samples:
        raise DetectorError(name, f"needs windows of at least {net.min_samples} samples, got "
                            f"{spec.window}")
    return EncoderModel(None, net)
