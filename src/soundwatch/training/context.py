"""The run context: where and how a detector runs (never a hyper-parameter, never saved)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from soundwatch.errors import ConfigError

__all__ = ["DEVICES", "RunContext"]

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class RunContext:
    """Run settings passed to ``Detector.fit`` / ``score``: they change how, not what, is learned.

    Attributes:
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        precision: Lightning precision (``"auto"``: bf16/fp16 mixed on CUDA, 32-bit on CPU).
        cache_dir: Feature-cache folder (``None``: no cache).
        log_dir: Folder for the per-epoch ``train_log.csv`` (``None``: no log file).
        checkpoint_dir: Folder for ``best.ckpt``/``last.ckpt`` (``None``: no checkpoints).
        resume: Continue an interrupted training from ``checkpoint_dir/last.ckpt``.
        progress: Show progress (bars on a terminal, periodic log lines otherwise).
        in_memory_mb: Training items below this size are held in memory; above, they
            are streamed from the feature cache's memory maps.
        devices: Lightning ``devices`` (number or list; ``None``: one).
        strategy: Lightning ``strategy`` (``None``: Lightning's default, e.g. ``"ddp"``).
        num_nodes: Lightning ``num_nodes``.
        channel: The audio channel read from multi-channel files (an index, or
            ``"mean"`` to mix them down); the run records it (``config.yaml``).
    """

    device: str = "auto"
    precision: str = "auto"
    cache_dir: str | None = None
    log_dir: str | None = None
    checkpoint_dir: str | None = None
    resume: bool = False
    progress: bool = False
    in_memory_mb: float = 1024.0
    devices: Any = None
    strategy: str | None = None
    num_nodes: int = 1
    channel: int | str = 0

    def __post_init__(self) -> None:
        if self.device not in DEVICES and not str(self.device).startswith("cuda:"):
            raise ConfigError("device", f"{self.device!r} is not one of {', '.join(DEVICES)}")
        if not isinstance(self.in_memory_mb, int | float) or self.in_memory_mb < 0:
            raise ConfigError("in_memory_mb", f"must be a non-negative number, got "
                              f"{self.in_memory_mb!r}")

    def replace(self, **changes: Any) -> RunContext:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)
