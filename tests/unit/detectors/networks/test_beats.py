"""BEATs: parity with the reference implementation, strict checkpoint loading, the encoder entry.

The fixture ``data/beats_reference.npz`` was produced once, outside the repository, by
running Microsoft's reference code (microsoft/unilm ``beats/BEATs.py``, ``backbone.py``,
``modules.py``, fetched from GitHub; the incremental-decoding branches it never takes here
left out) with the local torch 2.13 on CPU. Its fbank step is torchaudio's own
``compliance/kaldi.py`` (a pure-Python file, loaded on its own with the compiled
``torchaudio`` package stubbed out, since that does not load on CPU torch here). The
script: ``torch.manual_seed(0)``; a tiny configuration (``cfg`` in the fixture: patch 16,
embed 32, 2 layers of width 48, 4 heads, DeepNorm, gated relative-position buckets 32/64,
conv_pos 16 in 4 groups, a 5-class predictor); ``BEATs(BEATsConfig(cfg)).eval()``; every
parameter plus ``0.1 * randn`` (so biases, norms and gates are not at their initial values);
two waveforms ``0.1 * randn(2, 8321)`` (the second scaled by 0.05); saved: the waveforms,
``model.preprocess(wave)`` (normalised fbank), ``extract_features`` with the predictor
removed (tokens) and with it (class probabilities), ``model.state_dict()`` (key order in
``keys``, tensors in ``param_<i>``) and the ``cfg`` as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import soundwatch.detectors.beats  # noqa: F401  (registers the entry)
from soundwatch.detectors.beats import BEATS_CHECKPOINT_ENV, load_beats_checkpoint
from soundwatch.detectors.encoders import ENCODERS, InputSpec, encoder_info, list_encoders
from soundwatch.detectors.networks.beats import Beats, BeatsConfig, kaldi_fbank
from soundwatch.errors import DetectorError

FIXTURE = Path(__file__).parent / "data" / "beats_reference.npz"


@pytest.fixture(scope="module")
def reference():
    data = np.load(FIXTURE)
    state = {str(k): torch.from_numpy(data[f"param_{i}"]) for i, k in enumerate(data["keys"])}
    return {"cfg": json.loads(str(data["cfg"])), "state": state,
            **{k: data[k] for k in ("waveform", "fbank", "features", "probs")}}


@pytest.fixture()
def checkpoint(reference, tmp_path):
    path = tmp_path / "BEATs_tiny.pt"
    torch.save({"cfg": reference["cfg"], "model": reference["state"]}, path)
    return path


def _one_line(info, *fragments):
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_fbank_matches_torchaudio_kaldi(reference):
    net = Beats(BeatsConfig.from_dict(reference["cfg"]))
    got = net.fbank(torch.from_numpy(reference["waveform"])).numpy()
    assert got.shape == reference["fbank"].shape == (2, 50, 128)
    np.testing.assert_allclose(got, reference["fbank"], atol=1e-4)


def test_checkpoint_loads_strictly_and_reproduces_the_reference(reference, checkpoint):
    net = load_beats_checkpoint(checkpoint)
    assert set(net.state_dict()) == set(reference["state"])
    wave = torch.from_numpy(reference["waveform"])
    with torch.inference_mode():
        tokens, probs = net.tokens(wave).numpy(), net(wave).numpy()
    assert tokens.shape == reference["features"].shape == (2, 24, 48)
    np.testing.assert_allclose(tokens, reference["features"], atol=1e-4)
    np.testing.assert_allclose(probs, reference["probs"], atol=1e-5)
    assert not any(p.requires_grad for p in net.parameters())


def test_relative_position_table_is_shared_by_every_layer(reference):
    net = Beats(BeatsConfig.from_dict(reference["cfg"]))
    tables = {id(layer.self_attn.relative_attention_bias.weight)
              for layer in net.encoder.layers}
    assert len(tables) == 1


def test_wrong_names_or_shapes_are_refused_naming_the_file(reference, tmp_path):
    state = dict(reference["state"])
    state.pop("encoder.layers.1.fc2.bias")
    missing = tmp_path / "missing.pt"
    torch.save({"cfg": reference["cfg"], "model": state}, missing)
    with pytest.raises(DetectorError) as info:
        load_beats_checkpoint(missing)
    _one_line(info, str(missing), "encoder.layers.1.fc2.bias")

    state = dict(reference["state"])
    state["patch_embedding.weight"] = torch.zeros(32, 1, 8, 8)
    shaped = tmp_path / "shaped.pt"
    torch.save({"cfg": reference["cfg"], "model": state}, shaped)
    with pytest.raises(DetectorError) as info:
        load_beats_checkpoint(shaped)
    _one_line(info, str(shaped), "patch_embedding.weight")

    extra = tmp_path / "extra.pt"
    torch.save({"cfg": reference["cfg"], "model": {**reference["state"], "x.weight":
                                                   torch.zeros(1)}}, extra)
    with pytest.raises(DetectorError) as info:
        load_beats_checkpoint(extra)
    _one_line(info, str(extra), "x.weight")


def test_files_that_are_not_checkpoints_are_refused(tmp_path):
    with pytest.raises(DetectorError) as info:
        load_beats_checkpoint(tmp_path / "nowhere.pt")
    _one_line(info, "nowhere.pt", "not found")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(DetectorError) as info:
        load_beats_checkpoint(garbage)
    _one_line(info, "garbage.pt", "not a torch checkpoint")
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(DetectorError) as info:
        load_beats_checkpoint(other)
    _one_line(info, "other.pt", "'cfg' and 'model'")


def test_encoder_entry_embeds_windows_as_the_mean_token(reference, checkpoint):
    assert "beats" in list_encoders()
    info = encoder_info("beats")
    assert info.trainable is False
    assert info.trains({}) is False and info.trains({"finetune": 1}) is True
    model = ENCODERS.create("beats", spec=InputSpec("windows", 1, 8321),
                            checkpoint=str(checkpoint))
    wave = torch.from_numpy(reference["waveform"])[:, None]
    with torch.inference_mode():
        emb = model.embed(wave).numpy()
    assert emb.shape == (2, 48) == (2, model.num_features)
    np.testing.assert_allclose(emb, reference["features"].mean(axis=1), atol=1e-4)
    model.train()
    assert not model.network.training
    assert not any(p.requires_grad for p in model.parameters())


def test_finetune_trains_only_the_top_layers(checkpoint):
    model = ENCODERS.create("beats", spec=InputSpec("windows", 1, 8000),
                            checkpoint=str(checkpoint), finetune=1)
    layers = model.network.beats.encoder.layers
    assert all(p.requires_grad for p in layers[1].parameters())
    assert not any(p.requires_grad for p in layers[0].fc1.parameters())
    assert not model.network.beats.patch_embedding.weight.requires_grad


def test_checkpoint_comes_from_the_environment_or_the_error_says_how(checkpoint, monkeypatch):
    monkeypatch.delenv(BEATS_CHECKPOINT_ENV, raising=False)
    with pytest.raises(DetectorError) as info:
        ENCODERS.create("beats", spec=InputSpec("windows", 1, 16000))
    _one_line(info, BEATS_CHECKPOINT_ENV, "github.com/microsoft/unilm")
    monkeypatch.setenv(BEATS_CHECKPOINT_ENV, str(checkpoint))
    model = ENCODERS.create("beats", spec=InputSpec("windows", 1, 16000), layers=1)
    assert model.num_features == 48


@pytest.mark.parametrize("params, fragment", [
    ({"layers": 3}, "beats.layers"), ({"finetune": -1}, "beats.finetune"),
    ({"finetune": 3}, "beats.finetune"),
])
def test_bad_parameters_are_named(checkpoint, params, fragment):
    with pytest.raises(DetectorError) as info:
        ENCODERS.create("beats", spec=InputSpec("windows", 1, 16000),
                        checkpoint=str(checkpoint), **params)
    _one_line(info, fragment)


def test_short_windows_and_other_front_ends_are_refused(checkpoint):
    with pytest.raises(DetectorError) as info:
        ENCODERS.create("beats", spec=InputSpec("windows", 1, 2000), checkpoint=str(checkpoint))
    _one_line(info, "2800")
    with pytest.raises(DetectorError) as info:
        ENCODERS.create("beats", spec=InputSpec("windows", 64, 100), checkpoint=str(checkpoint))
    _one_line(info, "waveform")
    with pytest.raises(ValueError, match="400 samples"):
        kaldi_fbank(torch.zeros(1, 399))
