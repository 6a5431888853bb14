"""The cosine-margin heads of the auxiliary objective: ArcFace and AdaCos."""

from __future__ import annotations

import pytest
import torch

from soundwatch.detectors.networks.margin import AdaCosHead, ArcFaceHead, create_margin_head


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
