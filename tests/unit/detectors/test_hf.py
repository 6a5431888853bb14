"""hf-ast / hf-ssl encoders: tiny random transformers models saved to a folder and loaded back.

``networks/data/kaldi_hanning_fbank.npz`` holds torchaudio's ``compliance.kaldi.fbank``
(the pure-Python file loaded on its own, torchaudio's compiled part stubbed out) of
``0.1 * randn(1, 4321)`` (``torch.manual_seed(1)``) scaled by 2**15, with the options of
transformers' ``ASTFeatureExtractor`` (Hanning window, 128 bins, ``htk_compat``, no
energy, no dither, 10 ms shift).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="needs soundwatch[hf]")

import soundwatch.detectors.hf  # noqa: E402,F401  (registers the entries)
from soundwatch.detectors.encoders import ENCODERS, InputSpec, encoder_info  # noqa: E402
from soundwatch.detectors.networks.beats import kaldi_fbank  # noqa: E402
from soundwatch.errors import DetectorError  # noqa: E402

HANNING = Path(__file__).parent / "networks" / "data" / "kaldi_hanning_fbank.npz"
SPEC = InputSpec("windows", 1, 8000)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    ast = transformers.ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=37, max_length=64, num_mel_bins=128)
    transformers.ASTModel(ast).save_pretrained(root / "ast")
    (root / "ast" / "preprocessor_config.json").write_text(json.dumps(
        {"mean": -1.5, "std": 3.0, "do_normalize": True}))
    hubert = transformers.HubertConfig(hidden_size=32, num_hidden_layers=2,
                                       num_attention_heads=2, intermediate_size=37,
                                       conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
                                       num_conv_pos_embedding_groups=2)
    transformers.HubertModel(hubert).save_pretrained(root / "hubert")
    return root


def test_hanning_fbank_matches_torchaudio_kaldi():
    data = np.load(HANNING)
    got = kaldi_fbank(torch.from_numpy(data["waveform"]) * 2 ** 15, window="hanning")[0]
    np.testing.assert_allclose(got.numpy(), data["fbank"], atol=2e-3)


def test_ast_embeds_the_token_mean_of_its_fbank_input(folders):
    model = ENCODERS.create("hf-ast", spec=SPEC, model=str(folders / "ast"))
    encoder = model.network
    assert (encoder.mean, encoder.std) == (-1.5, 3.0)  # read from preprocessor_config.json
    wave = 0.1 * torch.randn(2, 1, 8000)
    with torch.inference_mode():
        emb = model.embed(wave)
        inputs = encoder.features(wave[:, 0])
        direct = transformers.ASTModel.from_pretrained(folders / "ast").eval()(
            input_values=inputs).last_hidden_state[:, 2:].mean(dim=1)
    assert inputs.shape == (2, 64, 128)  # 48 frames padded to max_length
    raw = kaldi_fbank(wave[:, 0] * 2 ** 15, window="hanning")
    torch.testing.assert_close(inputs[:, :48], (raw + 1.5) / 6.0)
    torch.testing.assert_close(inputs[:, 48:], torch.full((2, 16, 128), 1.5 / 6.0))
    assert emb.shape == (2, 32) == (2, model.num_features)
    torch.testing.assert_close(emb, direct)
    model.train()
    assert not model.network.training
    assert not any(p.requires_grad for p in model.parameters())


def test_ssl_embeds_the_time_mean_of_a_hidden_state(folders):
    model = ENCODERS.create("hf-ssl", spec=SPEC, model=str(folders / "hubert"), layer=1)
    wave = 0.1 * torch.randn(2, 1, 8000) + 0.5
    with torch.inference_mode():
        emb = model.embed(wave)
        norm = (wave[:, 0] - wave[:, 0].mean(-1, keepdim=True)) / torch.sqrt(
            wave[:, 0].var(-1, keepdim=True, unbiased=False) + 1e-7)
        net = transformers.HubertModel.from_pretrained(folders / "hubert").eval()
        direct = net(input_values=norm, output_hidden_states=True).hidden_states[1].mean(1)
    torch.testing.assert_close(emb, direct)


def test_finetune_trains_only_the_top_layers(folders):
    assert encoder_info("hf-ssl").trains({"finetune": 1})
    assert not encoder_info("hf-ast").trains({})
    model = ENCODERS.create("hf-ssl", spec=SPEC, model=str(folders / "hubert"), finetune=1)
    layers = model.network.model.encoder.layers
    assert all(p.requires_grad for p in layers[1].parameters())
    assert not any(p.requires_grad for p in layers[0].parameters())
    assert not any(p.requires_grad for p in model.network.model.feature_extractor.parameters())


def test_offline_mode_loads_folders_and_names_what_is_missing(folders, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    model = ENCODERS.create("hf-ast", spec=SPEC, model=str(folders / "ast"))
    assert model.num_features == 32
    with pytest.raises(DetectorError) as info:
        ENCODERS.create("hf-ssl", spec=SPEC, model="someone/not-in-the-cache")
    message = str(info.value)
    assert "\n" not in message
    assert "hf-ssl.model" in message and "HF_HUB_OFFLINE" in message


@pytest.mark.parametrize("params, fragment", [
    ({"layer": 3}, "hf-ssl.layer"), ({"finetune": 5}, "hf-ssl.finetune"),
    ({"finetune": True}, "hf-ssl.finetune"),
])
def test_bad_parameters_are_named(folders, params, fragment):
    with pytest.raises(DetectorError, match=fragment):
        ENCODERS.create("hf-ssl", spec=SPEC, model=str(folders / "hubert"), **params)


def test_other_front_ends_are_refused(folders):
    with pytest.raises(DetectorError, match="waveform"):
        ENCODERS.create("hf-ast", spec=InputSpec("windows", 64, 100),
                        model=str(folders / "ast"))
