"""Multi-device training on CPU: two DDP processes (gloo) train a network detector as well
as one process does (``soundwatch train --devices 2 --strategy ddp``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundwatch import pipeline
from soundwatch.cli import main
from soundwatch.detectors.registry import preset_test_params

SR = 16000
TRAINING = {"training__epochs": 20, "training__lr": 0.01, "training__batch_size": 32}


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> Path:
    """A 1 kHz machine tone; anomalies add a 4 kHz tone (DCASE 2020 layout, 1 s clips).

    An untrained autoencoder ranks the anomalies lowest (AUC 0): a good AUC needs training.
    """
    root = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    for split, items in (("train", [0] * 24), ("test", [0, 1] * 8)):
        for i, anomalous in enumerate(items):
            x = 0.3 * np.sin(2 * np.pi * (1000 + rng.uniform(-30, 30)) * t)
            x = x + 0.02 * rng.standard_normal(SR)
            if anomalous:
                x = x + 0.3 * np.sin(2 * np.pi * 4000 * t)
            label = "anomaly" if anomalous else "normal"
            path = root / "fan" / split / f"{label}_id_00_{i:08d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, x.astype(np.float32), SR)
    return root


def _auc(run_root: Path) -> float:
    from sklearn.metrics import roc_auc_score

    table = pipeline.score(run_root, out=run_root / "scores" / "test")
    return float(roc_auc_score(table["label"].to_numpy(), table["score"].to_numpy()))


def test_two_ddp_processes_train_as_well_as_one(tones, tmp_path, monkeypatch, capsys):
    params = {**preset_test_params("ae"), **TRAINING}
    untrained = pipeline.train(tones, "ae", params={**params, "training__epochs": 1,
                                                    "training__lr": 1e-9},
                               out=tmp_path / "untrained", device="cpu")
    single = pipeline.train(tones, "ae", params=params, out=tmp_path / "single", device="cpu")
    out = tmp_path / "ddp"
    args = ["train", tones, "-d", "ae", "--no-cache", "--device", "cpu", "--out", out,
            "--devices", "2", "--strategy", "ddp"]
    for key, value in params.items():
        args += ["-p", f"{key}={json.dumps(value)}"]
    monkeypatch.setattr(sys, "argv", ["soundwatch", *map(str, args)])
    main()
    capsys.readouterr()

    auc_untrained, auc_single, auc_ddp = _auc(untrained.root), _auc(single.root), _auc(out)
    assert auc_untrained <= 0.5  # the toy set needs training...
    assert auc_single >= 0.9  # ...which one process does
    assert auc_ddp >= auc_single - 0.05  # and two DDP processes as well
    # the calling process saved rank 0's network, its full history and train log
    config = json.loads((out / "detector" / "fan" / "config.json").read_text())
    history = config["state"]["history"]
    assert history["epochs_run"] == TRAINING["training__epochs"] and history["restored_best"]
    log = (out / "train_log" / "fan.csv").read_text().splitlines()
    assert len(log) == 1 + TRAINING["training__epochs"]
    assert not list(out.rglob("*.ckpt"))  # no checkpoints left behind
