"""``soundwatch train`` with a fine-tuned CREPE encoder (auxiliary objective), then ``score``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers.cli import run_cli as cli

SR = 16000

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torchcrepe") is None,
    reason="torchcrepe not installed: pip install 'soundwatch[pretrained]' to test CREPE",
)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """One machine type, DCASE 2020 layout, two machine IDs (sections) of 1 s tones + noise."""
    root = tmp_path_factory.mktemp("ft_data")
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR

    def tone(section: int, anomaly: bool) -> np.ndarray:
        x = 0.3 * np.sin(2 * np.pi * (300.0 + 200.0 * section) * t)
        if anomaly:
            x += 0.2 * np.sin(2 * np.pi * 3100.0 * t)
        return (x + 0.05 * rng.standard_normal(SR)).astype(np.float32)

    for split, items in (("train", [("normal", False)] * 4),
                         ("test", [("normal", False), ("anomaly", True)] * 2)):
        for i, (label, anomaly) in enumerate(items):
            section = i % 2
            path = root / "fan" / split / f"{label}_id_0{section}_{i:08d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, tone(section, anomaly), SR)
    return root


def test_train_fine_tuned_crepe_then_score(data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    code, _, err = cli(monkeypatch, capsys, "train", data, "-d", "embedding",
                       "-p", "objective=auxiliary", "-p", "encoder__finetune=1",
                       "-p", "objective__sub_clusters=2", "-p", "objective__mixup=0.2",
                       "-p", "training={epochs: 1, batch_size: 8, val_fraction: 0.0}",
                       "-p", "train_hop=4096", "-p", "score_hop=4096",
                       "--no-cache", "--out", out)
    assert code == 0, err
    config = json.loads((out / "detector" / "fan" / "config.json").read_text())
    assert config["params"]["encoder_params"] == {"finetune": 1}
    assert config["params"]["objective"] == "auxiliary"
    assert config["params"]["scorer"] == "knn"
    state = config["state"]
    assert state["network_spec"]["class_names"] == ["fan|00", "fan|01"]
    assert state["history"]["epochs_run"] == 1
    assert (out / "detector" / "fan" / "weights.pt").is_file()
    code, stdout, err = cli(monkeypatch, capsys, "score", out, "--out", tmp_path / "scores")
    assert code == 0, err
    import pandas as pd

    table = pd.read_csv(tmp_path / "scores" / "scores.csv")
    assert len(table) == 4 and np.isfinite(table["score"]).all()


def test_finetune_without_an_objective_is_a_one_line_error(data, tmp_path, monkeypatch,
                                                          capsys):
    from helpers.cli import one_error_line

    code, _, err = cli(monkeypatch, capsys, "train", data, "-d", "embedding",
                       "-p", "encoder__finetune=1", "--no-cache", "--out", tmp_path / "r")
    assert code == 2
    assert "choose an objective" in one_error_line(err)
