"""Synthetic anomalies, auxiliary labels, the domain-aware k-NN scorer and the margin heads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from soundwatch.datasets.clip import Clip
from soundwatch.detectors.networks.margin import AdaCosHead, ArcFaceHead, create_margin_head
from soundwatch.detectors.objectives import (
    ANOMALY_KINDS,
    DomainKNN,
    SyntheticAnomalies,
    auxiliary_labels,
    clip_class_key,
)
from soundwatch.errors import ConfigError

SR = 16000


def _normal(seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(SR * seconds)) / SR
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(
        np.float32
    )


@pytest.mark.parametrize("kind", [k for k in ANOMALY_KINDS if k != "pitch"])
def test_each_kind_changes_the_clip_and_keeps_its_length(kind):
    x = _normal()
    y = SyntheticAnomalies(snr_db=(5.0, 5.0)).make(x, kind, np.random.default_rng(1))
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.all(np.isfinite(y))
    assert np.abs(y - x).mean() > 1e-4


def test_pitch_kind_changes_the_clip():
    x = _normal(0.5)
    y = SyntheticAnomalies().make(x, "pitch", np.random.default_rng(1))
    assert y.shape == x.shape and np.abs(y - x).mean() > 1e-3


def test_noise_kind_hits_the_asked_snr():
    from soundwatch.synth.augment import snr_db

    x = _normal()
    y = SyntheticAnomalies(snr_db=(7.0, 7.0)).make(x, "noise", np.random.default_rng(0))
    assert snr_db(x, y - x) == pytest.approx(7.0, abs=0.05)


def test_modulation_kind_puts_the_asked_power_in_the_sidebands():
    from soundwatch.synth.augment import snr_db

    x = _normal()
    y = SyntheticAnomalies(snr_db=(15.0, 15.0)).make(x, "modulation", np.random.default_rng(0))
    # x * (1 + m sin): the added part x * m * sin holds m^2 / 2 of the power of x
    assert snr_db(x, y - x) == pytest.approx(15.0, abs=1.0)
    assert np.abs(np.fft.rfft(y)).argmax() == np.abs(np.fft.rfft(x)).argmax()


def test_eq_kind_changes_one_band_by_a_few_db():
    x = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    y = SyntheticAnomalies().make(x, "eq", np.random.default_rng(2))
    gain_db = 20 * np.log10(np.abs(np.fft.rfft(y))[1:] / np.abs(np.fft.rfft(x))[1:])
    peak = gain_db[np.abs(gain_db).argmax()]
    assert 2.0 - 1e-3 <= abs(peak) <= 8.0 + 1e-3
    # a smooth bump: most of the spectrum is untouched
    assert np.mean(np.abs(gain_db) < 0.5) > 0.3


def test_same_rng_seed_same_anomaly():
    gen = SyntheticAnomalies()
    x = _normal()
    a, kind_a = gen(x, np.random.default_rng([3, 1, 0]))
    b, kind_b = gen(x, np.random.default_rng([3, 1, 0]))
    assert kind_a == kind_b
    np.testing.assert_array_equal(a, b)


def test_kinds_are_drawn_from_the_given_list():
    gen = SyntheticAnomalies(kinds=("tone", "notch"))
    rng = np.random.default_rng(0)
    kinds = {gen(_normal(0.2), rng)[1] for _ in range(20)}
    assert kinds == {"tone", "notch"}


def test_unknown_kind_and_bad_snr_are_refused():
    with pytest.raises(ConfigError, match="unknown kind"):
        SyntheticAnomalies(kinds=("explosion",))
    with pytest.raises(ConfigError, match="snr_db"):
        SyntheticAnomalies(snr_db=(10.0, 0.0))


def _clip(section, attributes=None, domain="source", machine="fan", machine_id=None):
    return Clip(Path("x.wav"), machine, "train", 0, section, domain, machine_id, attributes or {})


def test_class_key_uses_section_and_attributes_and_falls_back():
    assert clip_class_key(_clip("00", {"vel": "6", "loc": "A"})) == "fan|00|loc=A|vel=6"
    assert clip_class_key(_clip("01")) == "fan|01"
    assert clip_class_key(_clip(None, machine_id="id_02")) == "fan|id_02"
    assert clip_class_key(_clip(None), ("section",)) == "all"
    with pytest.raises(ConfigError, match="unknown field"):
        clip_class_key(_clip("00"), ("colour",))


def test_auxiliary_labels_index_sorted_class_names():
    clips = [_clip("01"), _clip("00", {"a": "1"}), _clip("01"), _clip("00", {"a": "2"})]
    labels, names = auxiliary_labels(clips)
    assert names == ["fan|00|a=1", "fan|00|a=2", "fan|01"]
    assert labels.tolist() == [2, 0, 2, 1]


def test_domain_knn_takes_the_nearer_domain():
    source = np.array([[1.0, 0.0], [0.9, 0.1]])
    target = np.array([[0.0, 1.0]])
    knn = DomainKNN(k=1).fit(np.vstack([source, target]), ["source", "source", "target"])
    scores = knn.score(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]]))
    assert scores[0] == pytest.approx(0.0, abs=1e-12)
    assert scores[1] == pytest.approx(0.0, abs=1e-12)  # close to the only target clip
    assert 0 < scores[2] < scores[3]


def test_domain_knn_without_domains_uses_one_bank():
    knn = DomainKNN(k=2).fit(np.eye(3), [None, None, None])
    assert set(knn.banks) == {"source"}
    assert knn.score(np.eye(3)).shape == (3,)


def test_domain_knn_kmeans_summarises_source_only():
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((40, 4))
    knn = DomainKNN(k=1, kmeans_source=5).fit(emb, ["source"] * 36 + ["target"] * 4)
    assert knn.banks["source"].shape == (5, 4)
    assert knn.banks["target"].shape == (4, 4)


def test_arcface_penalises_the_true_class_only():
    torch.manual_seed(0)
    head = ArcFaceHead(8, 4, scale=10.0, margin=0.3)
    emb = torch.randn(5, 8)
    labels = torch.tensor([0, 1, 2, 3, 0])
    plain, margin = head(emb), head(emb, labels)
    true = torch.arange(5), labels
    assert torch.all(margin[true] < plain[true])
    mask = torch.ones_like(plain, dtype=torch.bool)
    mask[true] = False
    torch.testing.assert_close(margin[mask], plain[mask])


def test_adacos_adapts_its_scale_in_training_only():
    torch.manual_seed(0)
    head = AdaCosHead(8, 6)
    start = float(head.scale)
    emb, labels = torch.randn(16, 8), torch.randint(0, 6, (16,))
    head.eval()
    head(emb, labels)
    assert float(head.scale) == start
    head.train()
    head(emb, labels)
    assert float(head.scale) != start and float(head.scale) > 0


def test_create_margin_head_by_name():
    assert isinstance(create_margin_head("arcface", 4, 3), ArcFaceHead)
    assert isinstance(create_margin_head("adacos", 4, 3), AdaCosHead)
    with pytest.raises(ValueError, match="unknown margin head"):
        create_margin_head("sphereface", 4, 3)
