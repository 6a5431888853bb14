"""Reconstruction objectives: an autoencoder (MSE) and a variational autoencoder (ELBO)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from soundwatch.detectors.objectives import register_objective
from soundwatch.detectors.objectives.base import Objective, TrainInput

__all__ = ["ReconstructionObjective", "VAEObjective"]


def _data(data: TrainInput) -> tuple[Any, Any, dict[str, Any]]:
    """Training and validation rows (rows layout) or windows (windows layout)."""
    from soundwatch.training.data import RowDataset, WindowDataset

    def make(idx: list[int]) -> Any:
        arrays = [data.arrays[i] for i in idx]
        if data.window is None:
            return RowDataset(arrays)
        return WindowDataset(arrays, data.window, int(data.hop or 1))

    return make(data.train_idx), make(data.val_idx) if data.val_idx else None, {}


def _mse(model: Any, batch: torch.Tensor) -> torch.Tensor:
    x = model.prepared(batch)
    return F.mse_loss(model.network(x), x)


@register_objective("reconstruction")
class ReconstructionObjective(Objective):
    """Reconstruct normal inputs (MSE); offers residuals (input minus reconstruction)."""

    views: ClassVar[tuple[str, ...]] = ("residual",)
    default_scorer: ClassVar[str] = "mse"
    layouts: ClassVar[tuple[str, ...]] = ("rows", "windows")

    def __init__(self) -> None:
        pass

    def datasets(self, data: TrainInput) -> tuple[Any, Any, dict[str, Any]]:  # noqa: D102
        return _data(data)

    def loss(self) -> Callable[..., Any]:  # noqa: D102
        return _mse

    def view_fn(  # noqa: D102
        self, view: str, model: Any, spec: dict[str, Any], seed: int, device: Any
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        if view != "residual":
            raise NotImplementedError(view)

        def residual(batch: torch.Tensor) -> torch.Tensor:
            x = model.prepared(batch)
            return (x - model.network(x)).flatten(1)

        return residual


@register_objective("vae")
class VAEObjective(Objective):
    """Variational autoencoder: reconstruction + KL with linear warm-up; offers ELBO, residuals.

    Loss per window: ``0.5 * ||x - x_hat||^2 + beta_t * KL(q(z|x) || N(0, I))`` divided by
    the window's size, ``beta_t`` ramped linearly from 0 to ``beta`` over the first
    ``kl_warmup_epochs`` epochs. The ``elbo`` view is the negative ELBO of each window
    estimated with ``n_samples`` Monte Carlo samples of ``z`` from a generator seeded with
    the detector's seed (reproducible scores); ``residual`` is the input minus the
    decoded latent mean.

    Args:
        beta: Weight of the KL term.
        kl_warmup_epochs: Epochs of linear KL warm-up (0: none).
        n_samples: Monte Carlo samples of the ELBO view.
    """

    views: ClassVar[tuple[str, ...]] = ("elbo", "residual")
    default_scorer: ClassVar[str] = "elbo"

    def __init__(self, *, beta: float = 1.0, kl_warmup_epochs: int = 10, n_samples: int = 8
                 ) -> None:
        self._store(locals())

    def validate(self) -> None:  # noqa: D102
        self._check_number("beta", 0.0)
        self._check_int("kl_warmup_epochs", 0)
        self._check_int("n_samples")

    def datasets(self, data: TrainInput) -> tuple[Any, Any, dict[str, Any]]:  # noqa: D102
        return _data(data)

    def loss(self) -> Callable[..., Any]:  # noqa: D102
        beta, warmup = float(self.beta), int(self.kl_warmup_epochs)

        def vae_loss(model: Any, batch: torch.Tensor, epoch: int) -> dict[str, torch.Tensor]:
            x = model.prepared(batch)
            recon, mu, logvar = model.network(x)
            size = x[0].numel()
            rec = 0.5 * (recon.float() - x).pow(2).sum(dim=(1, 2)).mean() / size
            kl = model.network.kl(mu.float(), logvar.float()).mean() / size
            weight = beta * min(1.0, (epoch + 1) / warmup) if warmup > 0 else beta
            return {"loss": rec + weight * kl, "recon": rec, "kl": kl}

        return vae_loss

    def view_fn(  # noqa: D102
        self, view: str, model: Any, spec: dict[str, Any], seed: int, device: Any
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        net = model.network
        if view == "residual":

            def residual(batch: torch.Tensor) -> torch.Tensor:
                x = model.prepared(batch)
                mu, _ = net.encode(x)
                return (x - net.decode(mu)).flatten(1)

            return residual
        if view != "elbo":
            raise NotImplementedError(view)
        generator = torch.Generator(device=device)
        generator.manual_seed(int(seed))
        n_samples = int(self.n_samples)

        def elbo(batch: torch.Tensor) -> torch.Tensor:
            x = model.prepared(batch)
            size = x[0].numel()
            mu, logvar = net.encode(x)
            rec = torch.zeros(len(x), device=x.device)
            for _ in range(n_samples):
                z = net.reparameterize(mu, logvar, generator=generator)
                rec += 0.5 * (net.decode(z) - x).pow(2).sum(dim=(1, 2))
            return ((rec / n_samples + net.kl(mu, logvar)) / size).reshape(-1, 1)

        return elbo
