"""The shared training engine: losses go down, logs, EMA, early stopping, checkpoints, resume."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from torch import nn

from helpers.training import InterruptAfter, TrainingInterrupted
from soundwatch.errors import DetectorError
from soundwatch.training import fit_network
from soundwatch.training.data import RowDataset, TensorBatches, WindowDataset, materialise


def _data(n: int = 256, d: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((2, d))
    return (rng.standard_normal((n, 2)) @ basis).astype(np.float32)


def _net(d: int = 8) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d, 4), nn.ReLU(), nn.Linear(4, d))


def _mse(network, batch):
    return nn.functional.mse_loss(network(batch), batch)


def test_training_reduces_the_loss_and_logs_each_epoch(tmp_path):
    log_csv = tmp_path / "log" / "train_log.csv"
    net, history = fit_network(
        _net(), _data(), _mse, epochs=5, batch_size=32, lr=1e-2, device="cpu", log_csv=log_csv
    )
    assert [r["epoch"] for r in history.rows] == [0, 1, 2, 3, 4]
    assert history.rows[-1]["train_loss"] < history.rows[0]["train_loss"]
    assert history.monitor == "val_loss" and history.n_val == 26 and history.n_train == 230
    assert not net.training
    with open(log_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5
    assert {"epoch", "train_loss", "val_loss", "lr", "time_s"} <= set(rows[0])
    assert not list(tmp_path.glob("**/*.tmp"))


def test_nothing_written_without_log_or_checkpoints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fit_network(_net(), _data(64), _mse, epochs=1, batch_size=16, device="cpu")
    assert list(tmp_path.iterdir()) == []


def test_same_seed_gives_identical_weights():
    a, _ = fit_network(_net(), _data(), _mse, epochs=2, batch_size=32, seed=5, device="cpu")
    b, _ = fit_network(_net(), _data(), _mse, epochs=2, batch_size=32, seed=5, device="cpu")
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_ema_changes_the_returned_weights():
    plain, _ = fit_network(_net(), _data(), _mse, epochs=2, batch_size=32, device="cpu")
    ema, hist = fit_network(
        _net(), _data(), _mse, epochs=2, batch_size=32, device="cpu", ema_decay=0.9
    )
    assert np.isfinite(hist.rows[-1]["val_loss"])
    assert any(
        not torch.equal(a, b) for a, b in zip(plain.parameters(), ema.parameters(), strict=True)
    )


def test_early_stopping_stops_when_nothing_improves():
    _, history = fit_network(
        _net(),
        _data(),
        _mse,
        epochs=20,
        batch_size=64,
        lr=0.0,
        device="cpu",
        early_stopping_patience=2,
    )
    assert history.stopped_early
    assert len(history.rows) == 3  # best at epoch 0, then 2 epochs without improvement


def test_dict_loss_terms_and_epoch_argument_are_logged():
    seen = []

    def loss(network, batch, epoch):
        seen.append(epoch)
        rec = _mse(network, batch)
        return {"loss": rec, "recon": rec, "weight": torch.tensor(float(epoch))}

    _, history = fit_network(_net(), _data(), loss, epochs=2, batch_size=64, device="cpu")
    assert sorted(set(seen)) == [0, 1]
    assert history.rows[1]["train_weight"] == pytest.approx(1.0)
    assert "val_recon" in history.rows[0]


def test_interrupted_training_resumes_from_last_checkpoint(tmp_path):
    ckpt, log_csv = tmp_path / "ckpt", tmp_path / "train_log.csv"
    kwargs = dict(epochs=4, batch_size=32, device="cpu", checkpoint_dir=ckpt, log_csv=log_csv)
    with pytest.raises(TrainingInterrupted):
        fit_network(_net(), _data(), _mse, callbacks=[InterruptAfter(1)], **kwargs)
    assert (ckpt / "last.ckpt").is_file() and (ckpt / "best.ckpt").is_file()
    saved = torch.load(ckpt / "last.ckpt", weights_only=False)
    assert saved["epoch"] == 1
    net, history = fit_network(_net(), _data(), _mse, resume=True, **kwargs)
    assert [r["epoch"] for r in history.rows] == [0, 1, 2, 3]
    assert torch.load(ckpt / "last.ckpt", weights_only=False)["epoch"] == 3
    assert np.isfinite(history.best_loss)
    x = torch.from_numpy(_data(8))
    assert torch.isfinite(net(x)).all()


def test_resume_without_checkpoint_trains_from_scratch(tmp_path):
    _, history = fit_network(
        _net(),
        _data(),
        _mse,
        epochs=2,
        batch_size=32,
        device="cpu",
        checkpoint_dir=tmp_path / "c",
        resume=True,
    )
    assert len(history.rows) == 2


def test_bad_settings_raise():
    with pytest.raises(DetectorError):
        fit_network(_net(), _data(), _mse, epochs=0)
    with pytest.raises(DetectorError):
        fit_network(_net(), _data(), _mse, device="tpu")
    with pytest.raises(DetectorError):
        fit_network(_net(), np.zeros((0, 8), np.float32), _mse, device="cpu")
    with pytest.raises(DetectorError, match="optimizer"):
        fit_network(_net(), _data(), _mse, optimizer="lbfgs", device="cpu")


def test_batch_of_one_is_dropped_for_batchnorm():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 4), nn.BatchNorm1d(4), nn.Linear(4, 8))
    _, history = fit_network(
        net, _data(33), _mse, epochs=1, batch_size=32, val_fraction=0, device="cpu"
    )
    assert history.n_train == 33 and history.monitor == "train_loss"


def test_lazy_datasets_stream_above_the_memory_limit(tmp_path):
    arrays = []
    for i in range(3):
        path = tmp_path / f"f{i}.npy"
        np.save(path, _data(50 + i))
        arrays.append(np.load(path, mmap_mode="r"))
    rows = RowDataset(arrays)
    assert len(rows) == 153
    np.testing.assert_array_equal(
        rows[[0, 50, 152]].numpy(), np.stack([arrays[0][0], arrays[1][0], arrays[2][51]])
    )
    assert materialise(rows, limit_mb=0) is rows  # too big: stays lazy
    assert isinstance(materialise(rows, limit_mb=10), TensorBatches)
    _, history = fit_network(
        _net(), rows, _mse, epochs=1, batch_size=32, device="cpu", in_memory_mb=0
    )
    assert history.n_train + history.n_val == 153


def test_window_dataset_covers_and_pads():
    seqs = [np.arange(20, dtype=np.float32).reshape(2, 10), np.ones((2, 3), np.float32)]
    ds = WindowDataset(seqs, window=4, hop=4)
    assert len(ds) == 3 + 1  # starts 0, 4, 6 (aligned to the end) + one padded window
    batch = ds[[2, 3]].numpy()
    np.testing.assert_array_equal(batch[0], seqs[0][:, 6:10])
    np.testing.assert_array_equal(batch[1], np.ones((2, 4)))


def test_a_spec_and_a_context_train_as_the_single_fields_do():
    from soundwatch.training.context import RunContext
    from soundwatch.training.spec import TrainSpec

    a, _ = fit_network(_net(), _data(), _mse, TrainSpec(epochs=2, batch_size=32),
                       RunContext(device="cpu"), seed=5)
    b, _ = fit_network(_net(), _data(), _mse, epochs=2, batch_size=32, seed=5, device="cpu")
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    with pytest.raises(DetectorError, match="unknown setting nonsense"):
        fit_network(_net(), _data(), _mse, nonsense=1)
