"""A run's loaded detectors keep no run settings: the caller passes the run's context."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundwatch.audio import load
from soundwatch.datasets.clip import Clip
from soundwatch.detectors.base import Detector
from soundwatch.detectors.loading import load_run_detector, run_context_for
from soundwatch.runs import Run
from soundwatch.training.context import RunContext

SR = 16000


def _two_channels(path: Path, rng: np.random.Generator, fault: bool) -> None:
    """Channel 0: plain noise; channel 1: the machine's hum (a loud whine when faulty)."""
    t = np.arange(SR) / SR
    hum = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(SR)
    if fault:
        hum += 0.5 * np.sin(2 * np.pi * 3100 * t)
    noise = 0.1 * rng.standard_normal(SR)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([noise, hum], axis=1).astype(np.float32), SR)


@pytest.fixture(scope="module")
def channel_one_run(tmp_path_factory) -> tuple[Run, Path]:
    """A run trained on channel 1 of two-channel recordings, and a faulty recording."""
    from soundwatch.pipeline import train

    root = tmp_path_factory.mktemp("two_channels")
    rng = np.random.default_rng(3)
    for i in range(6):
        _two_channels(root / "train" / f"fanB_{i}.wav", rng, fault=False)
    _two_channels(root / "new" / "bad.wav", rng, fault=True)
    run = train(root / "train", "mahalanobis", machines=["fanB"], out=root / "run",
                params={"frontend_params": {"n_mels": 32}}, channel=1)
    return run, root / "new" / "bad.wav"


def _contexts(value: object, seen: set[int] | None = None) -> list[str]:
    """Paths of every RunContext reachable from a detector's attributes."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return []
    seen.add(id(value))
    if isinstance(value, RunContext):
        return ["<here>"]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    elif hasattr(value, "__dict__") and type(value).__module__.startswith("soundwatch"):
        items = vars(value).items()
    else:
        return []
    return [f"{k}.{p}" for k, v in items for p in _contexts(v, seen)]


def test_loaded_detector_reads_the_runs_channel_only_when_given_the_context(channel_one_run):
    run, bad = channel_one_run
    det = load_run_detector(run, "fanB")
    context = run_context_for(run)
    assert context == RunContext(channel=1)  # the run's channel, nothing else
    clip = [Clip(bad, "fanB")]
    before = dict(vars(det))

    with_context = det.score(clip, context)
    without = det.score(clip)  # nothing hidden: RunContext()'s first channel

    channel = [det.score_signals([load(bad, sr=SR, channel=c)], SR) for c in (0, 1)]
    np.testing.assert_allclose(with_context, channel[1], rtol=1e-6)
    np.testing.assert_allclose(without, channel[0], rtol=1e-6)
    assert not np.allclose(with_context, without)
    assert with_context[0] > det.threshold_  # the fault is heard on channel 1
    assert vars(det).keys() == before.keys()
    assert _contexts(det) == []  # no attribute, however deep, carries a context
    assert not hasattr(Detector, "set_context")


def test_run_context_for_takes_this_commands_settings(channel_one_run, tmp_path):
    run, _ = channel_one_run
    context = run_context_for(run, device="cpu", progress=True, channel=None,
                              cache_dir=tmp_path)
    assert context == RunContext(device="cpu", progress=True, channel=1,
                                 cache_dir=str(tmp_path))
    assert run_context_for(run, channel="mean").channel == "mean"  # --channel wins
