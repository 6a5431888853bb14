"""Fixtures of the monitoring tests: a tiny mahalanobis run on two synthetic machine types."""

from __future__ import annotations

from pathlib import Path

import pytest
from monitor_helpers import write_clip


@pytest.fixture(scope="session")
def monitor_run(tmp_path_factory) -> Path:
    """A mahalanobis run with ``fan`` and ``pump`` trained on quiet 0.5 s noise clips."""
    from soundwatch.pipeline import train

    data = tmp_path_factory.mktemp("monitor_data")
    for machine in ("fan", "pump"):
        for i in range(8):
            write_clip(data / machine / "train" / f"normal_id_00_{i:08d}.wav", 0.1, seed=i)
    out = tmp_path_factory.mktemp("monitor_runs") / "run"
    train(data, "mahalanobis", out=out, params={"frontend_params": {"n_mels": 32}})
    return out


@pytest.fixture(scope="session")
def scorer(monitor_run):
    from soundwatch.monitor.scoring import MachineScorer

    return MachineScorer([monitor_run])
