"""Reconstruction objectives: the autoencoder's MSE and the VAE's ELBO, their data and views."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soundwatch.detectors.encoders import ENCODERS, InputSpec
from soundwatch.detectors.objectives import OBJECTIVES, Plan, TrainInput, create_objective
from soundwatch.errors import DetectorError


def _input(arrays, window=None, hop=None, train_idx=None, val_idx=()):
    n = len(arrays)
    return TrainInput(arrays=arrays, clips=[], plan=Plan(), train_idx=list(train_idx or range(n)),
                      val_idx=list(val_idx), window=window, hop=hop, frontend=None, seed=0)


def _rows(n_clips=4, rows=5, d=12):
    rng = np.random.default_rng(0)
    return [rng.standard_normal((rows, d)).astype(np.float32) for _ in range(n_clips)]


def _windows(n_clips=3, channels=8, frames=40):
    rng = np.random.default_rng(1)
    return [rng.standard_normal((channels, frames)).astype(np.float32) for _ in range(n_clips)]


def test_registered_attributes():
    rec, vae = OBJECTIVES.get("reconstruction"), OBJECTIVES.get("vae")
    assert rec.views == ("residual",) and rec.default_scorer == "mse"
    assert set(rec.layouts) == {"rows", "windows"}
    assert vae.views == ("elbo", "residual") and vae.default_scorer == "elbo"
    assert not rec.supervised and not vae.supervised
    assert create_objective("reconstruction").plan([], None, 16000).num_outputs == 1


def test_rows_datasets_hold_every_row_and_a_validation_split():
    arrays = _rows()
    train, val, overrides = create_objective("reconstruction").datasets(
        _input(arrays, train_idx=[0, 1, 2], val_idx=[3]))
    assert overrides == {}
    assert len(train) == 15 and len(val) == 5
    batch = train.get_batch(np.arange(4))
    assert batch.shape == (4, 12)
    np.testing.assert_array_equal(batch.numpy(), arrays[0][:4])
    _, none, _ = create_objective("reconstruction").datasets(_input(arrays))
    assert none is None


def test_window_datasets_cut_windows_with_the_hop():
    arrays = _windows()
    train, val, _ = create_objective("vae").datasets(_input(arrays, window=16, hop=8))
    # starts 0, 8, 16, 24 (= 40 - 16): four windows per clip
    assert len(train) == 12 and val is None
    assert train.get_batch(np.arange(3)).shape == (3, 8, 16)


def test_autoencoder_loss_and_residual_view_on_rows():
    model = ENCODERS.create("ae", spec=InputSpec("rows", 12), hidden=8, n_hidden=1,
                            latent_dim=2)
    objective = create_objective("reconstruction")
    x = torch.from_numpy(_rows()[0])
    loss = objective.loss()(model, x)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    model.eval()
    residual = objective.view_fn("residual", model, {}, 0, "cpu")(x)
    assert residual.shape == (5, 12)
    torch.testing.assert_close(residual, x - model.network(x))
    with pytest.raises(NotImplementedError):
        objective.view_fn("elbo", model, {}, 0, "cpu")


def test_residual_view_of_windows_is_flattened_and_standardised():
    model = ENCODERS.create("unet1d", spec=InputSpec("windows", 8, 16), base_channels=4,
                            n_stages=2)
    model.set_stats(np.full(8, 2.0), np.full(8, 4.0))
    model.eval()
    x = torch.from_numpy(np.stack(_windows()))[..., :16]
    residual = create_objective("reconstruction").view_fn("residual", model, {}, 0, "cpu")(x)
    assert residual.shape == (3, 8 * 16)
    prepared = (x - 2.0) / 4.0
    torch.testing.assert_close(residual, (prepared - model.network(prepared)).flatten(1))


def _vae_model():
    model = ENCODERS.create("vae1d", spec=InputSpec("windows", 8, 16), hidden=8, latent_dim=2)
    return model


def test_vae_loss_terms_and_kl_warm_up():
    torch.manual_seed(0)
    model = _vae_model()
    x = torch.from_numpy(np.stack(_windows()))[..., :16]
    loss = create_objective("vae", beta=2.0, kl_warmup_epochs=4).loss()
    for epoch, weight in ((0, 0.5), (1, 1.0), (3, 2.0), (10, 2.0)):
        out = loss(model, x, epoch)
        assert set(out) == {"loss", "recon", "kl"}
        torch.testing.assert_close(out["loss"], out["recon"] + weight * out["kl"])
    no_warmup = create_objective("vae", beta=0.5, kl_warmup_epochs=0).loss()(model, x, 0)
    torch.testing.assert_close(no_warmup["loss"], no_warmup["recon"] + 0.5 * no_warmup["kl"])


def test_vae_elbo_view_is_seeded_and_residual_uses_the_mean():
    model = _vae_model().eval()
    x = torch.from_numpy(np.stack(_windows()))[..., :16]
    objective = create_objective("vae", n_samples=3)
    a = objective.view_fn("elbo", model, {}, 7, "cpu")(x)
    b = objective.view_fn("elbo", model, {}, 7, "cpu")(x)
    c = objective.view_fn("elbo", model, {}, 8, "cpu")(x)
    assert a.shape == (3, 1) and torch.all(a > 0)
    torch.testing.assert_close(a, b)  # the same seed draws the same latent samples
    assert not torch.equal(a, c)
    residual = objective.view_fn("residual", model, {}, 7, "cpu")(x)
    assert residual.shape == (3, 8 * 16)
    torch.testing.assert_close(residual, objective.view_fn("residual", model, {}, 8, "cpu")(x))
    with pytest.raises(NotImplementedError):
        objective.view_fn("probability", model, {}, 0, "cpu")


@pytest.mark.parametrize("params", [{"beta": -1.0}, {"kl_warmup_epochs": -1},
                                    {"n_samples": 0}, {"beta": "big"}])
def test_vae_invalid_params(params):
    with pytest.raises(DetectorError, match="objective vae"):
        create_objective("vae", **params)


def test_reconstruction_has_no_params():
    with pytest.raises(DetectorError, match="beta"):
        create_objective("reconstruction", beta=1.0)
