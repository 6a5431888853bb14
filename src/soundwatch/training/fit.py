"""fit_network: train any nn.Module with a loss function through one Lightning Trainer setup."""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from soundwatch.errors import DetectorError, Interrupted
from soundwatch.training.data import (
    BatchDataset,
    SubsetBatches,
    TensorBatches,
    make_loader,
    materialise,
)
from soundwatch.training.module import LossFn, NetworkModule

if TYPE_CHECKING:
    from soundwatch.training.context import RunContext
    from soundwatch.training.spec import TrainSpec

__all__ = ["TrainHistory", "fit_network", "launch_strategy", "resolve_device",
           "resolve_precision"]

log = logging.getLogger(__name__)

_NOISY_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.pytorch.accelerators.cuda",
    "lightning.fabric.utilities.seed",
    "lightning.fabric.utilities.distributed",
)


@dataclass
class TrainHistory:
    """What happened during :func:`fit_network`.

    Attributes:
        rows: One dict per epoch (``epoch``, ``train_loss``, ``val_loss``, extra terms,
            ``lr``, ``time_s``); on resume, includes the epochs of the earlier run when a
            CSV log was kept.
        best_epoch: Epoch (0-based) with the lowest monitored loss.
        best_loss: That loss.
        monitor: ``"val_loss"`` or ``"train_loss"``.
        stopped_early: Whether early stopping ended training.
        restored_best: Whether the returned network holds the best epoch's weights.
        device: ``"cpu"`` or ``"cuda"``.
        precision: Lightning precision string used.
        wall_s: Seconds spent in ``Trainer.fit``.
        n_train: Training items; ``n_val``: validation items.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_loss: float = math.inf
    monitor: str = "val_loss"
    stopped_early: bool = False
    restored_best: bool = False
    device: str = "cpu"
    precision: str = "32-true"
    wall_s: float = 0.0
    n_train: int = 0
    n_val: int = 0

    def summary(self) -> dict[str, Any]:
        """JSON-friendly summary (no per-epoch rows)."""
        return {
            "epochs_run": len(self.rows),
            "best_epoch": self.best_epoch,
            "best_loss": None if not math.isfinite(self.best_loss) else self.best_loss,
            "monitor": self.monitor,
            "stopped_early": self.stopped_early,
            "restored_best": self.restored_best,
            "device": self.device,
            "precision": self.precision,
            "wall_s": round(self.wall_s, 3),
            "n_train": self.n_train,
            "n_val": self.n_val,
        }


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when available else ``"cpu"``; checks an explicit ``"cuda"``.

    Raises:
        DetectorError: Unknown device or CUDA asked for but absent.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DetectorError("device", "cuda asked for but no CUDA GPU is available")
        return "cuda"
    raise DetectorError("device", f"{device!r} is not one of 'cpu', 'cuda', 'auto'")


def resolve_precision(precision: str, device: str) -> str:
    """``"auto"`` -> bf16/fp16 mixed precision on CUDA, 32-bit on CPU."""
    if precision != "auto":
        return precision
    if device == "cuda":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


@contextlib.contextmanager
def _quiet(progress: bool) -> Iterator[None]:
    """Silence Lightning's banner lines and its data-loader hints for library use."""
    levels = {}
    if not progress:
        for name in _NOISY_LOGGERS:
            logger = logging.getLogger(name)
            levels[name] = logger.level
            logger.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".*is smaller than the logging interval.*")
        warnings.filterwarnings("ignore", message=r".*predict_dataloader.*")
        warnings.filterwarnings("ignore", message=r".*`srun` command is available.*")
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=r".*but have no `val_dataloader`.*")
        warnings.filterwarnings("ignore", message=r".*exists and is not empty.*")
        # fine-tuning keeps a pretrained encoder's frozen blocks (and batch norms) in eval mode
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start.*")
        # DDP: NetworkModule.epoch_means adds the processes' sums up itself
        warnings.filterwarnings("ignore", message=r".*sync_dist=True.*")
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def _as_dataset(data: Any) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, np.ndarray | torch.Tensor):
        return TensorBatches(data)
    if isinstance(data, tuple) and all(isinstance(d, np.ndarray | torch.Tensor) for d in data):
        return TensorBatches(*data)
    raise DetectorError("train_data", f"cannot train on a {type(data).__name__}")


def _split(dataset: Dataset, val_fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    n = len(dataset)  # type: ignore[arg-type]
    n_val = int(round(n * val_fraction))
    if val_fraction <= 0 or n_val < 1 or n - n_val < 2:
        return dataset, None
    order = np.random.default_rng(seed).permutation(n)
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    if isinstance(dataset, BatchDataset):
        return SubsetBatches(dataset, train_idx), SubsetBatches(dataset, val_idx)
    return Subset(dataset, train_idx.tolist()), Subset(dataset, val_idx.tolist())


def _generators(loader: Any) -> list[torch.Generator]:
    """The ``torch.Generator`` objects that decide a data loader's order (its samplers')."""
    found: dict[int, torch.Generator] = {}
    for sampler in (getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        depth = 0
        while sampler is not None and depth < 8:
            generator = getattr(sampler, "generator", None)
            if isinstance(generator, torch.Generator):
                found.setdefault(id(generator), generator)
            sampler = getattr(sampler, "sampler", None)
            depth += 1
    return list(found.values())


def _datasets(*datasets: Any) -> list[Any]:
    """The datasets and the ones they wrap (``Subset.dataset``, ``SubsetBatches.base``)."""
    out: list[Any] = []
    for dataset in datasets:
        depth = 0
        while dataset is not None and depth < 8:
            out.append(dataset)
            dataset = getattr(dataset, "dataset", None) or getattr(dataset, "base", None)
            depth += 1
    return out


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`~soundwatch.errors.Interrupted` while training.

    Lightning turns ``KeyboardInterrupt`` into ``sys.exit(1)`` and SIGTERM into a quiet
    ``sys.exit(0)``; with this, both reach the caller as an interruption. Handlers the
    application installed itself (the CLI's) are left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {}
    for signum, default in ((signal.SIGINT, signal.default_int_handler),
                            (signal.SIGTERM, signal.SIG_DFL)):
        current = signal.getsignal(signum)
        if current in (default, None):
            old[signum] = current
            signal.signal(signum, _raise_interrupted)
    try:
        yield
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)


def _kept(checkpoint_dir: str | Path | None) -> str:
    """What an interrupted training leaves behind, for the one-line message."""
    if checkpoint_dir is not None and (Path(checkpoint_dir) / "last.ckpt").is_file():
        return f"training stopped; the last checkpoint is kept in {checkpoint_dir} (resume from it)"
    return "training stopped before its first checkpoint"


def _load_checkpoint_weights(network: nn.Module, path: Path) -> bool:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError) as exc:
        log.warning("cannot read checkpoint %s: %s", path, exc)
        return False
    state = {k.removeprefix("network."): v for k, v in ckpt.get("state_dict", {}).items()}
    network.load_state_dict(state)
    return True


_EXTERNAL_LAUNCH_VARS = ("LOCAL_RANK", "TORCHELASTIC_RUN_ID", "SLURM_PROCID")
"""Environment variables an external DDP launcher (torchrun, SLURM) sets in each process."""


def launch_strategy(
    strategy: str | None, devices: int | str | list[int] | None, num_nodes: int = 1
) -> tuple[str, bool]:
    """The Lightning strategy for these settings, and whether it forks the rank processes.

    One process (the default) keeps Lightning's ``"auto"``. ``"ddp"`` (or no strategy)
    with several processes becomes ``"ddp_fork"`` unless an external launcher started
    this process (Lightning's own ``"ddp"`` would re-run the whole command in each
    rank). Other strategies are passed through unchanged.

    Args:
        strategy: The requested strategy (``None``: automatic).
        devices: Lightning ``devices`` per node.
        num_nodes: Nodes.

    Returns:
        ``(strategy, forked)``: ``forked`` when the ranks are processes forked (or
        spawned) from this one, whose results must be sent back to it.

    Raises:
        DetectorError: ``num_nodes`` below one.
    """
    import os

    if int(num_nodes) < 1:
        raise DetectorError("num_nodes", f"must be at least 1, got {num_nodes}")
    if isinstance(devices, list | tuple):
        per_node = len(devices)
    elif devices is None:
        per_node = 1
    elif str(devices) in ("auto", "-1"):  # every GPU there is (one process on a CPU)
        per_node = max(1, torch.cuda.device_count())
    else:
        per_node = int(devices)
    several = per_node * int(num_nodes) > 1
    external = any(v in os.environ for v in _EXTERNAL_LAUNCH_VARS)
    if strategy in (None, "auto"):
        strategy = "ddp" if several else "auto"
    if strategy == "ddp" and several and not external:
        strategy = "ddp_fork"
    forked = several and not external and strategy in (
        "ddp_fork", "ddp_spawn", "ddp_notebook", "ddp_fork_find_unused_parameters_true",
        "ddp_spawn_find_unused_parameters_true")
    return strategy, forked


def _settings(spec: TrainSpec | None, context: RunContext | None, settings: dict[str, Any]
              ) -> tuple[TrainSpec, RunContext]:
    """``spec`` and ``context`` (their defaults when ``None``) with single fields changed."""
    import dataclasses

    from soundwatch.errors import ConfigError
    from soundwatch.training.context import RunContext
    from soundwatch.training.spec import TrainSpec

    spec, context = spec or TrainSpec(), context or RunContext()
    settings = dict(settings)
    if "restore_best" in settings:
        settings["epoch_choice"] = "best" if settings.pop("restore_best") else "last"
    spec_names = {f.name for f in dataclasses.fields(TrainSpec)}
    context_names = {f.name for f in dataclasses.fields(RunContext)}
    unknown = sorted(set(settings) - spec_names - context_names)
    if unknown:
        raise DetectorError("training", f"unknown setting {', '.join(unknown)} (a TrainSpec "
                            "or RunContext field)")
    spec = dataclasses.replace(spec, **{k: v for k, v in settings.items() if k in spec_names})
    for key in ("checkpoint_dir", "cache_dir", "log_dir"):  # paths travel as strings
        if isinstance(settings.get(key), Path):
            settings[key] = str(settings[key])
    try:
        context = context.replace(**{k: v for k, v in settings.items() if k in context_names})
    except ConfigError as exc:
        raise DetectorError("training", str(exc)) from exc
    return spec, context


def fit_network(
    network: nn.Module,
    train_data: Dataset | np.ndarray | torch.Tensor | tuple[Any, ...],
    loss_fn: LossFn,
    spec: TrainSpec | None = None,
    context: RunContext | None = None,
    *,
    val_data: Dataset | np.ndarray | torch.Tensor | tuple[Any, ...] | None = None,
    seed: int = 0,
    log_csv: str | Path | None = None,
    callbacks: Sequence[Any] = (),
    collate_fn: Any = None,
    **settings: Any,
) -> tuple[nn.Module, TrainHistory]:
    """Train ``network`` to minimise ``loss_fn`` with Lightning; return it and its history.

    Everything that every soundwatch network needs lives here once: validation split,
    optimiser and schedule, EMA of the weights (Lightning's ``EMAWeightAveraging``, used
    for validation and for the returned weights), gradient clipping, early stopping,
    checkpoints (``best.ckpt`` and ``last.ckpt``, written atomically) and exact resume
    (the random generators, the data order and the state of datasets with a
    ``state_dict()`` travel in the checkpoint, so a resumed CPU run gives the same weights
    bit for bit), SIGINT/SIGTERM raised as :class:`~soundwatch.errors.Interrupted`,
    a per-epoch CSV log, an optional progress bar, mixed precision on CUDA and
    deterministic training on CPU.

    Args:
        network: Any ``nn.Module``.
        train_data: A :class:`~soundwatch.training.data.BatchDataset` (fast whole-batch
            fetches; streamed lazily from memmaps when larger than ``in_memory_mb``), any
            map-style torch ``Dataset``, an array/tensor, or a tuple of them (x, y...).
        loss_fn: ``loss_fn(network, batch[, epoch])`` -> scalar or dict with ``"loss"``.
        spec: Training hyper-parameters (:class:`~soundwatch.training.spec.TrainSpec`:
            epochs, batch size, optimiser, schedule, EMA, clipping, early stopping,
            validation fraction, best or last epoch); default: its defaults.
        context: Where and how it runs (:class:`~soundwatch.training.context.RunContext`:
            device, precision, checkpoint folder, resume, progress, in-memory limit,
            ``devices``/``strategy``/``num_nodes``); default: its defaults.
        val_data: Validation data; default: ``spec.val_fraction`` of ``train_data`` (seeded).
        seed: Seed of weights-independent randomness (shuffling, split, dropout).
        log_csv: Per-epoch CSV log path; None: no file.
        callbacks: Extra Lightning callbacks.
        collate_fn: Collate function for plain (non-batch) datasets.
        **settings: Single fields of ``spec`` or ``context`` changed for this call
            (``epochs=2, device="cpu"``), and ``restore_best`` (``spec.epoch_choice``).

    With more than one process (``devices`` x ``num_nodes``), training is data-parallel
    (DDP): each process trains on its share of every epoch's batches, gradients are
    averaged, the epoch losses are averaged over the processes, and the calling process
    gets global rank 0's weights and history back. A ``"ddp"`` strategy started from one
    command runs as ``"ddp_fork"``; under an external launcher (``torchrun``, SLURM), it is
    kept (:func:`launch_strategy`, docs/scale.md).

    Returns:
        ``(network, history)``; the network is in eval mode, on the CPU.

    Raises:
        DetectorError: Bad settings or no training data.
        Interrupted: SIGINT or SIGTERM arrived; the checkpoints written so far are kept.
    """
    spec, context = _settings(spec, context, settings)
    epochs, batch_size, val_fraction = spec.epochs, spec.batch_size, spec.val_fraction
    optimizer, lr, weight_decay = spec.optimizer, spec.lr, spec.weight_decay
    scheduler, scheduler_t0, ema_decay = spec.scheduler, spec.scheduler_t0, spec.ema_decay
    gradient_clip_val = spec.gradient_clip_val
    early_stopping_patience = spec.early_stopping_patience
    restore_best = spec.epoch_choice == "best"
    device, precision, checkpoint_dir = context.device, context.precision, context.checkpoint_dir
    resume, progress, in_memory_mb = context.resume, context.progress, context.in_memory_mb
    devices, strategy, num_nodes = context.devices, context.strategy, context.num_nodes
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import EarlyStopping, EMAWeightAveraging, ModelCheckpoint

    # Lightning logs hardware facts and tips at INFO on import: keep them out of our output.
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)

    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from soundwatch.training.callbacks import AtomicCheckpointIO, HistoryCallback, ResumeState

    if epochs < 1 or batch_size < 1:
        raise DetectorError("training", "epochs and batch_size must be at least 1")
    dev = resolve_device(device)
    lightning_strategy, forked = launch_strategy(strategy, devices, num_nodes)
    prec = resolve_precision(precision, dev)
    dataset = _as_dataset(train_data)
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise DetectorError("training", "no training data")
    if val_data is None:
        train_set, val_set = _split(dataset, val_fraction, seed)
    else:
        train_set, val_set = dataset, _as_dataset(val_data)
    if isinstance(train_set, BatchDataset):
        train_set = materialise(train_set, in_memory_mb)
    if isinstance(val_set, BatchDataset):
        val_set = materialise(val_set, in_memory_mb)
    n_train = len(train_set)  # type: ignore[arg-type]
    drop_last = n_train > batch_size and n_train % batch_size == 1  # a batch of 1 breaks BatchNorm
    train_loader = make_loader(
        train_set, batch_size, shuffle=True, seed=seed, drop_last=drop_last, collate_fn=collate_fn
    )
    val_loader = (
        make_loader(val_set, batch_size, shuffle=False, collate_fn=collate_fn) if val_set else None
    )
    monitor = "val_loss" if val_loader is not None else "train_loss"

    module = NetworkModule(
        network,
        loss_fn,
        optimizer=optimizer,
        lr=lr,
        weight_decay=weight_decay,
        scheduler=scheduler,
        scheduler_t0=scheduler_t0,
        max_epochs=epochs,
    )
    history_cb = HistoryCallback(log_csv, keep_best=restore_best)
    resume_cb = ResumeState(
        generators=_generators(train_loader) + (_generators(val_loader) if val_loader else []),
        datasets=_datasets(train_set, val_set),
    )
    cbs: list[Any] = [history_cb, resume_cb]  # before EMA: it snapshots the averaged weights
    if ema_decay is not None:
        cbs.append(EMAWeightAveraging(decay=float(ema_decay)))
    if early_stopping_patience is not None:
        cbs.append(
            EarlyStopping(monitor=monitor, patience=int(early_stopping_patience), mode="min")
        )
    ckpt_cb = None
    if checkpoint_dir is not None:
        ckpt_cb = ModelCheckpoint(
            dirpath=str(checkpoint_dir),
            filename="best",
            monitor=monitor,
            mode="min",
            save_last=True,
            save_top_k=1,
            enable_version_counter=False,
        )
        cbs.append(ckpt_cb)
    cbs.extend(callbacks)
    export = None
    if forked:  # the trained state lives in the forked rank-0 process: send it back
        import tempfile

        from soundwatch.training.ddp import RankZeroExport

        export = RankZeroExport(history_cb, Path(tempfile.mkdtemp(prefix="soundwatch-ddp-")))
        cbs.append(export)

    if checkpoint_dir is not None:
        from soundwatch.atomic import remove_leftovers

        remove_leftovers(checkpoint_dir)  # half-written checkpoints of a killed run
    ckpt_path = None
    if resume:
        last = Path(checkpoint_dir) / "last.ckpt" if checkpoint_dir is not None else None
        if last is not None and last.is_file():
            ckpt_path = str(last)
            log.info("resuming from %s", last)
        else:
            log.info("nothing to resume (no last.ckpt); training from scratch")

    with _quiet(progress), _signals_interrupt():
        pl.seed_everything(seed, workers=True, verbose=False)
        trainer = pl.Trainer(
            accelerator="gpu" if dev == "cuda" else "cpu",
            devices=1 if devices is None else devices,
            num_nodes=int(num_nodes),
            strategy=lightning_strategy,
            precision=prec,  # type: ignore[arg-type]
            max_epochs=epochs,
            logger=False,
            callbacks=cbs,
            enable_checkpointing=ckpt_cb is not None,
            enable_progress_bar=progress,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            deterministic=dev == "cpu",
            gradient_clip_val=gradient_clip_val,
            default_root_dir=str(checkpoint_dir) if checkpoint_dir is not None else None,
            plugins=[AtomicCheckpointIO()] if ckpt_cb is not None else None,
            limit_val_batches=1.0 if val_loader is not None else 0,
        )
        t0 = time.perf_counter()
        try:
            trainer.fit(
                module,
                train_dataloaders=train_loader,
                val_dataloaders=val_loader,
                ckpt_path=ckpt_path,
                weights_only=False if ckpt_path is not None else None,
            )
        except SIGTERMException as exc:  # Lightning's own SIGTERM handling (another handler ran)
            raise Interrupted(signal.SIGTERM, _kept(checkpoint_dir)) from exc
        except Interrupted as exc:
            raise Interrupted(exc.signum, _kept(checkpoint_dir)) from exc
        wall = time.perf_counter() - t0
    if export is not None:
        export.restore()
    if log_csv is not None and history_cb.rows:
        history_cb.write_csv()  # complete even when a resumed run had no epoch left to train

    history = TrainHistory(
        rows=history_cb.rows,
        best_epoch=history_cb.best_epoch,
        best_loss=history_cb.best_loss,
        monitor=monitor,
        stopped_early=bool(
            early_stopping_patience is not None
            and trainer.current_epoch < epochs
            and not trainer.interrupted
        ),
        device=dev,
        precision=prec,
        wall_s=wall,
        n_train=n_train,
        n_val=len(val_set) if val_set is not None else 0,  # type: ignore[arg-type]
    )
    if restore_best:
        if history_cb.best_state is not None:
            network.load_state_dict(history_cb.best_state)
            history.restored_best = True
        elif (
            ckpt_cb is not None
            and ckpt_cb.best_model_path
            and Path(ckpt_cb.best_model_path).is_file()
        ):
            history.restored_best = _load_checkpoint_weights(network, Path(ckpt_cb.best_model_path))
    network.cpu().eval()
    return network, history
