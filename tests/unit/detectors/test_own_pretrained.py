"""soundwatch-machines: the pretraining script (tiny mode), loading, shapes, frozen, errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from soundwatch.detectors.own_pretrained import (
    MachineSoundNet,
    asset_paths,
    load_machine_encoder,
)
from soundwatch.errors import DetectorError

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "pretrain_encoder.py"
SHIPPED = all(p.is_file() for p in asset_paths())
requires_shipped = pytest.mark.skipif(
    not SHIPPED, reason="soundwatch/assets/soundwatch_machines.pt not in this checkout")


def _script():
    spec = importlib.util.spec_from_file_location("pretrain_encoder", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _windows(n: int = 2, samples: int = 16000, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000
    x = [0.1 * np.sin(2 * np.pi * (200 + 100 * i) * t) + 0.02 * rng.standard_normal(samples)
         for i in range(n)]
    return torch.from_numpy(np.stack(x).astype(np.float32))[:, None]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The script's --tiny mode run once: (output folder, metadata)."""
    out = tmp_path_factory.mktemp("encoder")
    work = tmp_path_factory.mktemp("corpus")
    assert _script().main(["--tiny", "--seed", "3", "--out", str(out),
                           "--workdir", str(work)]) == 0
    return out, json.loads((out / "soundwatch_machines.json").read_text())


def test_tiny_run_writes_small_weights_and_its_settings(tiny_run):
    out, meta = tiny_run
    weights = out / "soundwatch_machines.pt"
    assert weights.stat().st_size < 2_000_000
    assert meta["seed"] == 3 and meta["name"] == "soundwatch-machines"
    assert meta["settings"]["sr"] == 16000 and meta["settings"]["embedding_dim"] == 128
    assert "--tiny" in meta["command"]
    assert len(meta["attribute_classes"]) == 52 and meta["kind_classes"][0] == "normal"
    assert meta["training"]["history"][0]["epoch"] == 1
    state = torch.load(weights, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    assert not any(k.startswith("frontend") for k in state)  # rebuilt from the settings


def test_loaded_encoder_is_frozen_and_gives_one_embedding_per_window(tiny_run):
    net = load_machine_encoder(tiny_run[0])
    assert not net.training
    assert not any(p.requires_grad for p in net.parameters())
    with torch.inference_mode():
        emb = net.forward_features(_windows(3))
        longer = net.forward_features(_windows(3, samples=40000))
    assert emb.shape == longer.shape == (3, 128) == (3, net.num_features)
    assert torch.isfinite(emb).all()
    assert not torch.allclose(emb[0], emb[1])  # different sounds, different embeddings
    conv = load_machine_encoder(tiny_run[0], output="conv")
    with torch.inference_mode():
        assert conv.forward_features(_windows(2)).shape == (2, conv.num_features) == (2, 2048)
    mean_only = MachineSoundNet({"time_pool": "mean"}, output="conv")
    assert mean_only.num_features == 1024


def test_embedding_ignores_the_level(tiny_run):
    net = load_machine_encoder(tiny_run[0])
    x = _windows(2)
    with torch.inference_mode():
        np.testing.assert_allclose(net.forward_features(x), net.forward_features(4.0 * x),
                                   rtol=1e-3, atol=1e-3)


def test_the_band_statistics_are_saved_and_restored(tiny_run):
    net = load_machine_encoder(tiny_run[0])
    fresh = MachineSoundNet({})
    assert not torch.allclose(net.band_mean, fresh.band_mean)
    assert float(net.band_std.min()) > 0


def test_the_corpus_is_a_function_of_the_seed():
    module = _script()
    waves, attr, kind = module.render_corpus(3, 3, 16000)
    again = module.render_corpus(3, 3, 16000)
    np.testing.assert_array_equal(waves, again[0])
    np.testing.assert_array_equal(attr, again[1])
    np.testing.assert_array_equal(kind, again[2])
    assert not np.array_equal(module.render_corpus(3, 4, 16000)[0], waves)
    assert waves.shape == (3, 32000)


def test_the_same_seed_trains_the_same_weights(tiny_run, tmp_path):
    out, _ = tiny_run
    assert _script().main(["--tiny", "--seed", "3", "--out", str(tmp_path / "again"),
                           "--workdir", str(tmp_path / "work")]) == 0
    first = torch.load(out / "soundwatch_machines.pt", weights_only=True)
    again = torch.load(tmp_path / "again" / "soundwatch_machines.pt", weights_only=True)
    assert first.keys() == again.keys()
    for key in first:
        assert torch.equal(first[key], again[key]), key


def test_windows_too_short_are_refused(tiny_run):
    net = load_machine_encoder(tiny_run[0])
    with pytest.raises(DetectorError, match="at least 2816 samples"):
        net.forward_features(_windows(1, samples=2000))


def test_missing_weights_give_a_one_line_error(tmp_path):
    with pytest.raises(DetectorError, match="soundwatch_machines.pt is missing") as info:
        load_machine_encoder(tmp_path)
    assert "\n" not in str(info.value)


def test_corrupt_weights_give_a_one_line_error(tiny_run, tmp_path):
    (tmp_path / "soundwatch_machines.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "soundwatch_machines.json").write_text(
        (tiny_run[0] / "soundwatch_machines.json").read_text())
    with pytest.raises(DetectorError, match="cannot read") as info:
        load_machine_encoder(tmp_path)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------ the shipped, registered entry


@requires_shipped
def test_registered_entry_is_frozen_and_embeds_waveform_windows():
    from soundwatch.detectors.encoders import ENCODERS, InputSpec, encoder_info, list_encoders

    assert "soundwatch-machines" in list_encoders()
    assert encoder_info("soundwatch-machines").trainable is False
    model = ENCODERS.create("soundwatch-machines", spec=InputSpec("windows", 1, 16000))
    assert not any(p.requires_grad for p in model.parameters())
    with torch.inference_mode():
        emb = model.eval().embed(_windows(2))
    assert emb.shape == (2, model.num_features) == (2, 128)


@requires_shipped
@pytest.mark.parametrize(("spec", "params", "fragment"), [
    (("windows", 64, 16000), {}, "waveform"),
    (("rows", 1), {}, "waveform"),
    (("windows", 1, 1024), {}, "at least 2816 samples"),
    (("windows", 1, 16000), {"output": "logits"}, "output"),
])
def test_registered_entry_refuses_bad_inputs(spec, params, fragment):
    from soundwatch.detectors.encoders import ENCODERS, InputSpec

    with pytest.raises(DetectorError, match=fragment):
        ENCODERS.create("soundwatch-machines", spec=InputSpec(*spec), **params)


@requires_shipped
def test_embedding_detector_with_the_encoder_fits_and_scores(toy_set):
    from soundwatch.detectors import create_detector

    det = create_detector("embedding", encoder="soundwatch-machines", window_frames=8000,
                          score_hop=8000)
    det.fit(toy_set.train)
    scores = det.score(toy_set.test)
    assert scores.shape == (len(toy_set.test),) and np.isfinite(scores).all()
