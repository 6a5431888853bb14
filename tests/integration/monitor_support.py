"""Shared by the serve and watch integration tests: a tiny run, clips, a subprocess helper."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SR = 16000
SOUNDWATCH = Path(sys.executable).with_name("soundwatch")


def write_clip(path: Path, amp: float = 0.1, seconds: float = 0.5, seed: int = 0) -> Path:
    """White noise at an amplitude (loud = anomalous for :func:`train_run`'s detectors)."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x = amp * rng.standard_normal(int(SR * seconds))
    # loud, not clipped: a clipped clip is a sensor problem, never a machine anomaly
    x = (x / max(1.0, float(np.abs(x).max()))).astype(np.float32)
    sf.write(path, x, SR, subtype="PCM_16")
    return path


def train_run(root: Path) -> Path:
    """A mahalanobis run of ``fan`` and ``pump`` trained on quiet 0.5 s noise (a few seconds)."""
    from soundwatch.pipeline import train

    for machine in ("fan", "pump"):
        for i in range(8):
            write_clip(root / "data" / machine / "train" / f"normal_id_00_{i:08d}.wav", 0.1,
                       seed=i)
    out = root / "run"
    train(root / "data", "mahalanobis", out=out, params={"frontend_params": {"n_mels": 32}})
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(*args: str, log: Path) -> subprocess.Popen:
    """Start ``soundwatch ARGS`` with stdout and stderr into ``log``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([str(SOUNDWATCH), *map(str, args)], stdout=handle,
                                stderr=subprocess.STDOUT, env=env)


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None,
             log: Path | None = None) -> None:
    """Poll ``predicate`` until true; fail with the process's log on timeout or early exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            text = log.read_text(errors="replace") if log else ""
            raise AssertionError(f"process exited ({proc.returncode}) waiting for {what}:\n{text}")
        time.sleep(0.1)
    text = log.read_text(errors="replace") if log else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n{text[-3000:]}")
