"""Tiny synthetic clips for the export tests: 1 s tones + noise, anomalies with a whine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import soundfile as sf

from soundwatch.datasets.clip import Clip

SR = 16000


@dataclass(frozen=True)
class ToySet:
    train: list[Clip]
    train_labelled: list[Clip]
    test: list[Clip]


def _signal(rng: np.random.Generator, anomaly: bool, domain: str, seconds: float) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    f0 = 440.0 if domain == "source" else 523.0
    x = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(2 * np.pi * 2 * f0 * t)
    x += 0.05 * rng.standard_normal(len(t))
    if anomaly:
        x += 0.15 * np.sin(2 * np.pi * 3100.0 * t) * (np.sin(2 * np.pi * 4 * t) > 0)
    return x.astype(np.float32)


@pytest.fixture(scope="session")
def export_toy_set(tmp_path_factory: pytest.TempPathFactory) -> ToySet:
    """10 + 2 normal training clips, 4 anomalous ones, 8 test clips of 1 to 1.5 s."""
    root = tmp_path_factory.mktemp("export_toy")
    rng = np.random.default_rng(99)

    def clip(name: str, split: str, anomaly: bool, domain: str, seconds: float = 1.0) -> Clip:
        path = root / f"{name}.wav"
        sf.write(path, _signal(rng, anomaly, domain, seconds), SR, subtype="FLOAT")
        return Clip(path=path, machine="toy", split=split, label=int(anomaly), section="00",
                    domain=domain)

    train = [clip(f"train_s{i}", "train", False, "source") for i in range(10)]
    train += [clip(f"train_t{i}", "train", False, "target") for i in range(2)]
    extra = [clip(f"train_a{i}", "train", True, "source") for i in range(4)]
    test = [clip(f"test_{i}", "test", bool(i % 2), "source" if i % 4 < 2 else "target",
                 seconds=1.0 + 0.25 * (i % 3)) for i in range(8)]
    return ToySet(train=train, train_labelled=train + extra, test=test)
