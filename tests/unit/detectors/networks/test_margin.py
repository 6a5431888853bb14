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


# ----------------------------------------------------------------- sub-clusters, soft labels


def _reference_adacos(head, emb, labels):
    """The single-centre AdaCos update and logits, written out (the pre-sub-cluster code)."""
    import math

    import torch.nn.functional as F

    cos = F.linear(F.normalize(emb, dim=1), F.normalize(head.weight, dim=1))
    cos_c = cos.clamp(-1.0 + 1e-7, 1.0 - 1e-7)
    theta = torch.acos(cos_c)
    one_hot = F.one_hot(labels, head.num_classes).to(cos.dtype)
    b_avg = torch.where(one_hot > 0, torch.zeros_like(cos), torch.exp(head.scale * cos_c)
                        ).sum(dim=1).mean()
    theta_med = theta[one_hot > 0].median()
    scale = torch.log(b_avg) / torch.cos(torch.clamp(theta_med, max=math.pi / 4))
    return scale, scale * cos


def test_one_sub_cluster_is_the_plain_adacos():
    torch.manual_seed(0)
    head = AdaCosHead(8, 5)
    emb, labels = torch.randn(12, 8), torch.randint(0, 5, (12,))
    scale, logits = _reference_adacos(head, emb, labels)
    head.train()
    out = head(emb, labels)
    assert torch.equal(head.scale, scale) and torch.equal(out, logits)


@pytest.mark.parametrize("cls", [AdaCosHead, ArcFaceHead])
def test_sub_cluster_heads_have_k_centres_per_class_and_class_logits(cls):
    torch.manual_seed(0)
    head = cls(8, 3, sub_clusters=4)
    assert head.weight.shape == (12, 8) and head.num_classes == 3
    emb = torch.randn(5, 8, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 0, 1])
    centre = head.centre_cosine(emb)
    assert centre.shape == (5, 3, 4)
    torch.testing.assert_close(head.cosine(emb), centre.amax(dim=2))
    head.train()
    logits = head(emb, labels)
    assert logits.shape == (5, 3)
    torch.nn.functional.cross_entropy(logits, labels).backward()
    assert emb.grad is not None and torch.isfinite(emb.grad).all() and emb.grad.abs().sum() > 0
    per_centre = head.weight.grad.abs().sum(dim=1)
    assert torch.isfinite(head.weight.grad).all() and (per_centre > 0).sum() > 3


def test_sub_cluster_adacos_logit_is_logsumexp_over_the_class_centres():
    torch.manual_seed(0)
    head = AdaCosHead(6, 2, sub_clusters=3).eval()
    emb = torch.randn(4, 6)
    expected = torch.logsumexp(head.scale * head.centre_cosine(emb), dim=2)
    torch.testing.assert_close(head(emb), expected)
    # the class probabilities are the sums of the centres' softmax probabilities
    centre_p = torch.softmax((head.scale * head.centre_cosine(emb)).reshape(4, 6), dim=1)
    torch.testing.assert_close(torch.softmax(head(emb), dim=1),
                               centre_p.reshape(4, 2, 3).sum(dim=2))


def test_sub_cluster_scale_starts_from_all_centres():
    import math

    assert float(AdaCosHead(4, 3, sub_clusters=4).scale) == pytest.approx(
        math.sqrt(2) * math.log(11))


@pytest.mark.parametrize("cls", [AdaCosHead, ArcFaceHead])
def test_one_hot_soft_labels_equal_hard_labels(cls):
    torch.manual_seed(0)
    emb, labels = torch.randn(6, 8), torch.tensor([0, 1, 2, 2, 1, 0])
    hard, soft = cls(8, 3, sub_clusters=2), cls(8, 3, sub_clusters=2)
    soft.load_state_dict(hard.state_dict())
    hard.train(), soft.train()
    out_hard = hard(emb, labels)
    out_soft = soft(emb, torch.nn.functional.one_hot(labels, 3).float())
    torch.testing.assert_close(out_soft, out_hard)
    torch.testing.assert_close(soft.state_dict(), hard.state_dict())


def test_arcface_soft_labels_share_the_margin():
    torch.manual_seed(0)
    head = ArcFaceHead(8, 2, scale=10.0, margin=0.3)
    emb = torch.randn(3, 8)
    plain = head(emb)
    a, b = head(emb, torch.zeros(3, dtype=torch.long)), head(emb, torch.ones(3, dtype=torch.long))
    half = head(emb, torch.full((3, 2), 0.5))
    torch.testing.assert_close(half, 0.5 * (a + b))
    assert torch.all(half < plain)


def test_bad_sub_clusters_and_soft_label_shape_are_refused():
    with pytest.raises(ValueError, match="sub_clusters"):
        create_margin_head("adacos", 4, 3, sub_clusters=0)
    head = create_margin_head("arcface", 4, 3, sub_clusters=2)
    assert head.weight.shape == (6, 4)
    with pytest.raises(ValueError, match="soft labels"):
        head(torch.randn(2, 4), torch.ones(2, 4))
