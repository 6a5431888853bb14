"""Scale out: train and score on a Ray cluster (``--backend ray``; docs/scale.md).

``soundwatch.pipeline.train`` and ``score`` stay the single entry points; given
``executor=``:class:`soundwatch.scale.ray_backend.RayExecutor` they hand their per-machine
work to Ray (one Ray task per machine type for training, Ray Data ``map_batches`` with an
actor class for scoring) and write the run folder exactly as the local executor does. Ray is an
optional extra (``pip install 'soundwatch[ray]'``); nothing here imports it until used.
"""

from __future__ import annotations

import os

from soundwatch.errors import ConfigError, MachinesFailed

__all__ = [
    "BACKENDS",
    "INSTALL_HINT",
    "MachinesFailed",
    "RaySettings",
    "check_backend",
    "require_ray",
    "usable_cores",
]

BACKENDS = ("local", "ray")
"""Where the per-machine work runs: this process, or Ray tasks/actors."""

INSTALL_HINT = "needs Ray: pip install 'soundwatch[ray]'"


def usable_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check_backend(backend: str) -> None:
    """Refuse an unknown backend, and ``ray`` when Ray is not installed.

    Raises:
        ConfigError: One line naming ``--backend`` and how to install Ray.
    """
    if backend not in BACKENDS:
        raise ConfigError("--backend", f"{backend!r} is not one of {', '.join(BACKENDS)}")
    if backend == "ray":
        require_ray()


def require_ray() -> object:
    """The ``ray`` module.

    Raises:
        ConfigError: Ray is not installed (with the one-line install hint).
    """
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--backend ray", INSTALL_HINT) from exc
    return ray


class RaySettings:
    """Where and how the Ray backend runs (picklable, plain values).

    Args:
        address: Ray cluster address (``"auto"``, ``"HOST:PORT"``, ``"ray://HOST:10001"``);
            ``None`` starts a local Ray instance with :func:`usable_cores` CPUs (no
            dashboard), or reuses the one this process already started.
        cpus_per_task: CPUs each training task or scoring actor reserves.
        gpus_per_task: GPUs each training task or scoring actor reserves (fractions allowed).
        actors: Scoring actors (``None``: as many as the cluster's CPUs allow).
        batch_size: Clips per Ray Data batch when scoring.
    """

    def __init__(
        self,
        address: str | None = None,
        cpus_per_task: float = 1.0,
        gpus_per_task: float = 0.0,
        actors: int | None = None,
        batch_size: int = 64,
    ) -> None:
        if not cpus_per_task > 0:
            raise ConfigError("--cpus-per-task", f"must be positive, got {cpus_per_task}")
        if gpus_per_task < 0:
            raise ConfigError("--gpus-per-task", f"must not be negative, got {gpus_per_task}")
        if actors is not None and actors < 1:
            raise ConfigError("actors", f"must be at least 1, got {actors}")
        if batch_size < 1:
            raise ConfigError("batch_size", f"must be at least 1, got {batch_size}")
        self.address = address
        self.cpus_per_task = float(cpus_per_task)
        self.gpus_per_task = float(gpus_per_task)
        self.actors = actors
        self.batch_size = int(batch_size)

    def __repr__(self) -> str:
        return (f"RaySettings(address={self.address!r}, cpus_per_task={self.cpus_per_task}, "
                f"gpus_per_task={self.gpus_per_task}, actors={self.actors}, "
                f"batch_size={self.batch_size})")
