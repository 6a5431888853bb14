"""Cosine-margin classifier heads (ArcFace, AdaCos, with sub-clusters) for auxiliary objectives.

Every head accepts hard labels ``[B]`` (class indices) or soft labels ``[B, C]`` (class
probabilities, e.g. from mixup); with ``sub_clusters = K > 1`` each class has ``K`` learned
centres (sub-cluster AdaCos, Wilkinghoff 2021; sub-center ArcFace, Deng et al. 2020).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MARGIN_HEADS", "AdaCosHead", "ArcFaceHead", "CosineHead", "create_margin_head"]


def _check_sub_clusters(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"sub_clusters must be a whole number >= 1, got {value!r}")
    return int(value)


class CosineHead(nn.Module):
    """Cosine similarities between L2-normalised embeddings and learned class centres.

    Args:
        embedding_dim: Size of the embeddings.
        num_classes: Number of classes.
        sub_clusters: Centres per class ``K``: ``weight`` holds ``num_classes * K`` rows,
            class ``c`` owning rows ``c * K .. c * K + K - 1``.
    """

    def __init__(self, embedding_dim: int, num_classes: int, sub_clusters: int = 1) -> None:
        super().__init__()
        self.sub_clusters = _check_sub_clusters(sub_clusters)
        self.weight = nn.Parameter(torch.empty(num_classes * self.sub_clusters, embedding_dim))
        nn.init.xavier_uniform_(self.weight)
        self.num_classes = int(num_classes)

    def centre_cosine(self, embedding: torch.Tensor) -> torch.Tensor:
        """Cosine ``[B, num_classes, K]`` of each embedding to every centre of every class."""
        cos = F.linear(F.normalize(embedding, dim=1), F.normalize(self.weight, dim=1))
        return cos.view(len(cos), self.num_classes, self.sub_clusters)

    def cosine(self, embedding: torch.Tensor) -> torch.Tensor:
        """Cosine ``[B, num_classes]`` of each embedding to its nearest centre of each class."""
        if self.sub_clusters == 1:
            return F.linear(F.normalize(embedding, dim=1), F.normalize(self.weight, dim=1))
        return self.centre_cosine(embedding).amax(dim=2)

    def targets(self, labels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Class probabilities ``[B, num_classes]``: one-hot of hard labels, soft ones as given."""
        if labels.ndim == 1:
            return F.one_hot(labels.long(), self.num_classes).to(dtype)
        if labels.ndim != 2 or labels.shape[1] != self.num_classes:
            raise ValueError(f"soft labels must be [B, {self.num_classes}], got "
                             f"{tuple(labels.shape)}")
        return labels.to(dtype)

    def forward(self, embedding: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Scaled cosine logits (no margin); subclasses add one when ``labels`` are given."""
        return 30.0 * self.cosine(embedding)


class ArcFaceHead(CosineHead):
    """ArcFace (Deng et al., 2019): additive angular margin ``m`` on the true class, scale ``s``.

    With ``sub_clusters > 1`` it is sub-center ArcFace (Deng et al., 2020): a class's
    cosine is that of its nearest centre, and the margin applies to it. With soft labels
    ``y`` the target logit is ``y * cos(theta + m) + (1 - y) * cos(theta)`` per class.

    Args:
        embedding_dim: Size of the embeddings.
        num_classes: Number of classes.
        scale: Logit scale ``s``.
        margin: Angular margin ``m`` in radians.
        sub_clusters: Centres per class.
    """

    def __init__(
        self, embedding_dim: int, num_classes: int, scale: float = 30.0, margin: float = 0.5,
        sub_clusters: int = 1,
    ) -> None:
        super().__init__(embedding_dim, num_classes, sub_clusters)
        self.scale = float(scale)
        self.margin = float(margin)

    def forward(self, embedding: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``s * cos(theta + m [true class])``; without labels, ``s * cos(theta)``."""
        cos = self.cosine(embedding)
        if labels is None:
            return self.scale * cos
        cos = cos.clamp(-1.0 + 1e-7, 1.0 - 1e-7)
        theta = torch.acos(cos)
        # Past pi - m, cos(theta + m) would rise again: fall back to a linear penalty.
        target = torch.where(
            theta + self.margin < math.pi,
            torch.cos(theta + self.margin),
            cos - self.margin * math.sin(self.margin),
        )
        weight = self.targets(labels, cos.dtype)
        return self.scale * (weight * target + (1.0 - weight) * cos)


class AdaCosHead(CosineHead):
    """AdaCos (Zhang et al., 2019): cosine logits with an adaptive, parameter-free scale.

    The scale starts at ``sqrt(2) * log(C K - 1)`` and is re-estimated on each training
    batch as ``log(B_avg) / cos(min(pi / 4, theta_med))``, where ``B_avg`` is the mean
    over the batch of ``sum exp(s cos)`` over the centres of the classes an item does not
    belong to, and ``theta_med`` the median angle to the item's own class (the
    label-weighted mean angle for soft labels), so no scale or margin needs tuning.

    With ``sub_clusters = K > 1`` it is sub-cluster AdaCos (Wilkinghoff, "Sub-cluster
    AdaCos", IJCNN 2021): the softmax runs over all ``C K`` centres and a class's
    probability is the sum over its ``K`` centres, i.e. its logit is
    ``logsumexp_k(s cos_k)``; the angle to a class is that of its nearest centre.

    Args:
        embedding_dim: Size of the embeddings.
        num_classes: Number of classes.
        sub_clusters: Centres per class.
    """

    def __init__(self, embedding_dim: int, num_classes: int, sub_clusters: int = 1) -> None:
        super().__init__(embedding_dim, num_classes, sub_clusters)
        initial = math.sqrt(2.0) * math.log(max(num_classes * self.sub_clusters - 1, 2))
        self.register_buffer("scale", torch.tensor(initial))

    def _update_scale(self, centre_cos: torch.Tensor, labels: torch.Tensor) -> None:
        """Re-estimate the scale from one training batch (``centre_cos`` ``[B, C, K]``)."""
        with torch.no_grad():
            cos_c = centre_cos.clamp(-1.0 + 1e-7, 1.0 - 1e-7)
            weight = self.targets(labels, cos_c.dtype)
            others = (weight == 0).unsqueeze(2).expand_as(cos_c)
            b_avg = torch.where(others, torch.exp(self.scale * cos_c),
                                torch.zeros_like(cos_c)).sum(dim=(1, 2)).mean()
            theta = torch.acos(cos_c.amax(dim=2))  # [B, C], nearest centre of each class
            if labels.ndim == 1:
                theta_true = theta[weight > 0]
            else:
                theta_true = (weight * theta).sum(dim=1) / weight.sum(dim=1).clamp(min=1e-12)
            theta_med = theta_true.median() if theta_true.numel() else theta.new_tensor(0.0)
            new = torch.log(b_avg.clamp(min=1e-6)) / torch.cos(
                torch.clamp(theta_med, max=math.pi / 4)
            )
            if torch.isfinite(new) and new > 0:
                self.scale.copy_(new)

    def forward(self, embedding: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``s * cos(theta)``; in training (with labels) ``s`` is updated first."""
        if self.sub_clusters == 1:
            cos = self.cosine(embedding)
            if labels is not None and self.training:
                self._update_scale(cos.unsqueeze(2), labels)
            return self.scale * cos
        centre = self.centre_cosine(embedding)
        if labels is not None and self.training:
            self._update_scale(centre, labels)
        return torch.logsumexp(self.scale * centre, dim=2)


MARGIN_HEADS: dict[str, type[CosineHead]] = {"arcface": ArcFaceHead, "adacos": AdaCosHead}
"""Cosine-margin heads by name."""


def create_margin_head(name: str, embedding_dim: int, num_classes: int,
                       sub_clusters: int = 1) -> CosineHead:
    """A margin head by name (``arcface`` or ``adacos``) with its default settings.

    Args:
        name: ``"arcface"`` or ``"adacos"``.
        embedding_dim: Size of the embeddings.
        num_classes: Number of classes.
        sub_clusters: Centres per class.

    Raises:
        ValueError: Unknown name or a bad ``sub_clusters``.
    """
    try:
        cls = MARGIN_HEADS[name]
    except KeyError as exc:
        known = ", ".join(MARGIN_HEADS)
        raise ValueError(f"unknown margin head {name!r} (known: {known})") from exc
    return cls(embedding_dim, num_classes, sub_clusters=sub_clusters)
