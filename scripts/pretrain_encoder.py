r"""Pretrain soundwatch's own machine-sound encoder (``soundwatch-machines``) on synthetic machines.

Reproducible (seeded; one CPU thread)::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/pretrain_encoder.py --seed 0 \\
        --time-pool meanmax --out src/soundwatch/assets

What it does:

1. Renders a synthetic machines corpus in memory (``soundwatch.synth.machines``, the
   generator behind ``soundwatch synth machines``): ``--clips`` clips of 2 s at 16 kHz,
   machine type uniform, every attribute combination of both domains (the source and
   target values; 52 machine x attribute classes, the "sections"), source or target
   background; 40 % normal, 30 % one of the machine's own faults (severity 0.1-1), 30 % a
   normal clip made anomalous by ``SyntheticAnomalies`` (noise, tone, impulses, ...).
   The corpus's log-mels are kept in ``--workdir`` (a temporary folder by default).
2. Trains :class:`soundwatch.detectors.own_pretrained.MachineSoundNet` (2-D CNN on the
   64-band log-mel; mean and max over time; 128-d embedding) on random 1 s crops with two
   AdaCos heads: machine x attributes (52 classes) and anomaly kind (normal + 9 machine
   faults + 9 synthetic kinds); time/frequency masks and a random spectral tilt as
   augmentation.
3. Writes ``soundwatch_machines.pt`` (the network's state dict in float16, heads dropped)
   and ``soundwatch_machines.json`` (front-end/network settings, seed, corpus, validation
   accuracies) to ``--out``.

``--tiny`` (a few clips, one epoch) checks the whole path in seconds.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import itertools
import logging
import math
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("pretrain_encoder")

CLIP_SECONDS = 2.0
CROP_SECONDS = 1.0
STATUS = (0.4, 0.3, 0.3)
"""Fractions of normal clips, machine faults and synthetic anomalies."""


def attribute_classes() -> list[tuple[str, tuple[str, ...]]]:
    """Every (machine, attribute values) combination over both domains' values."""
    from soundwatch.synth.machines import MACHINES

    classes = []
    for name, model in MACHINES.items():
        values = [sorted(set(a.source) | set(a.target), key=float) for a in model.attributes]
        classes += [(name, combo) for combo in itertools.product(*values)]
    return classes


def kind_classes() -> list[str]:
    """``normal``, the machines' own fault kinds, then the synthetic-anomaly kinds."""
    from soundwatch.detectors.objectives.anomalies import ANOMALY_KINDS
    from soundwatch.synth.machines import MACHINES

    faults: list[str] = []
    for model in MACHINES.values():
        faults += [k for k in model.anomalies if k not in faults]
    return ["normal", *faults, *[f"synthetic-{k}" for k in ANOMALY_KINDS]]


def render_corpus(n_clips: int, seed: int, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render ``n_clips`` clips; each depends only on ``(seed, index)``.

    Returns:
        ``(waves [n, samples] float32, attribute class [n], kind class [n])``.
    """
    from soundwatch.detectors.objectives.anomalies import SyntheticAnomalies
    from soundwatch.synth.machines import DOMAINS, MACHINES, render_machine_clip

    classes = attribute_classes()
    kinds = kind_classes()
    synthetic = SyntheticAnomalies(sr=sr)
    n = int(round(CLIP_SECONDS * sr))
    waves = np.zeros((n_clips, n), np.float32)
    attr_y = np.zeros(n_clips, np.int64)
    kind_y = np.zeros(n_clips, np.int64)
    t0 = time.perf_counter()
    for i in range(n_clips):
        rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(i,)))
        c = int(rng.integers(len(classes)))
        machine, values = classes[c]
        model = MACHINES[machine]
        attributes = {a.name: v for a, v in zip(model.attributes, values, strict=True)}
        domain = DOMAINS[int(rng.integers(2))]
        u = float(rng.random())
        fault, severity = None, 0.0
        if STATUS[0] <= u < STATUS[0] + STATUS[1]:
            fault = model.anomalies[int(rng.integers(len(model.anomalies)))]
            severity = float(rng.uniform(0.1, 1.0))
        y = render_machine_clip(machine, domain, attributes, fault, severity, CLIP_SECONDS, sr,
                                rng)
        kind = fault or "normal"
        if u >= STATUS[0] + STATUS[1]:
            y, made = synthetic(y, rng)
            kind = f"synthetic-{made}"
        waves[i] = y[:n]
        attr_y[i], kind_y[i] = c, kinds.index(kind)
        if (i + 1) % 500 == 0:
            log.info("rendered %d/%d clips (%.0f s)", i + 1, n_clips, time.perf_counter() - t0)
    return waves, attr_y, kind_y


def corpus_logmels(net: Any, waves: np.ndarray, batch: int = 64) -> np.ndarray:
    """Log-mels ``[n, n_mels, frames]`` (float32) of the corpus through the encoder's front-end."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(waves), batch):
            out.append(net.logmel(torch.from_numpy(waves[i : i + batch])).numpy())
    return np.concatenate(out).astype(np.float32)


def _augment(x: Any, gen: Any, n_masks: int = 1) -> Any:
    """Random spectral tilt (+-3 dB, in the dB domain) of log-mel crops ``[B, M, T]``."""
    import torch

    b, m, _ = x.shape
    tilt = (torch.rand(b, 1, 1, generator=gen) * 6.0 - 3.0) * torch.linspace(-1, 1, m).view(
        1, m, 1)
    return x + tilt


def _mask(x: Any, gen: Any, max_t: int, max_f: int) -> Any:
    """One time and one frequency mask (set to 0, the standardised mean) per item."""
    import torch

    b, m, t = x.shape
    keep = torch.ones_like(x)
    for i in range(b):
        wt = int(torch.randint(0, max_t + 1, (1,), generator=gen))
        st = int(torch.randint(0, t - wt + 1, (1,), generator=gen))
        wf = int(torch.randint(0, max_f + 1, (1,), generator=gen))
        sf = int(torch.randint(0, m - wf + 1, (1,), generator=gen))
        keep[i, :, st : st + wt] = 0
        keep[i, sf : sf + wf, :] = 0
    return x * keep


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Render, train and save; returns the metadata written next to the weights."""
    import torch
    import torch.nn.functional as F

    from soundwatch.atomic import atomic_path, write_json
    from soundwatch.detectors.networks.margin import AdaCosHead
    from soundwatch.detectors.own_pretrained import (
        ASSET_NAME,
        DEFAULT_SETTINGS,
        MachineSoundNet,
    )

    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    settings = {**DEFAULT_SETTINGS, "time_pool": args.time_pool}
    sr = int(settings["sr"])
    net = MachineSoundNet(settings)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(
        prefix="soundwatch-pretrain-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cache = workdir / f"corpus-seed{args.seed}-n{args.clips}.npz"
    t0 = time.perf_counter()
    if cache.is_file():
        data = np.load(cache)
        mels, attr_y, kind_y = data["mels"].astype(np.float32), data["attr"], data["kind"]
        log.info("corpus read from %s", cache)
    else:
        waves, attr_y, kind_y = render_corpus(args.clips, args.seed, sr)
        # stored as float16; train on exactly what a rerun reads back from the cache
        mels = corpus_logmels(net, waves).astype(np.float16).astype(np.float32)
        del waves
        with atomic_path(cache) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, mels=mels.astype(np.float16), attr=attr_y, kind=kind_y)
        log.info("corpus: %d clips, log-mels %s (%.0f s) in %s", len(mels), mels.shape,
                 time.perf_counter() - t0, workdir)
    render_s = time.perf_counter() - t0
    classes, kinds = attribute_classes(), kind_classes()
    n = len(mels)
    n_val = max(1, n // 10)
    tr, va = np.arange(n - n_val), np.arange(n - n_val, n)
    # band statistics of the gain-removed log-mel (training clips)
    centred = mels[tr] - mels[tr].mean(axis=(1, 2), keepdims=True)
    net.band_mean.copy_(torch.from_numpy(centred.mean(axis=(0, 2))[:, None]))
    net.band_std.copy_(torch.from_numpy(np.maximum(centred.std(axis=(0, 2)), 1e-3)[:, None]))
    del centred
    dim = int(settings["embedding_dim"])
    head_attr, head_kind = AdaCosHead(dim, len(classes)), AdaCosHead(dim, len(kinds))
    params = [*net.parameters(), *head_attr.parameters(), *head_kind.parameters()]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    crop = 1 + (int(CROP_SECONDS * sr) - int(settings["n_fft"])) // int(settings["hop_length"])
    crop = min(crop, mels.shape[2])
    steps_per_epoch = max(1, math.ceil(len(tr) / args.batch_size))
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total,
                                                pct_start=0.1)
    gen = torch.Generator().manual_seed(args.seed)
    mels_t = torch.from_numpy(mels)
    attr_t, kind_t = torch.from_numpy(attr_y), torch.from_numpy(kind_y)
    history = []
    t1 = time.perf_counter()
    for epoch in range(args.epochs):
        net.train()
        head_attr.train()
        head_kind.train()
        order = torch.from_numpy(tr)[torch.randperm(len(tr), generator=gen)]
        losses = []
        for s in range(steps_per_epoch):
            idx = order[s * args.batch_size : (s + 1) * args.batch_size]
            starts = torch.randint(0, mels.shape[2] - crop + 1, (len(idx),), generator=gen)
            x = torch.stack([mels_t[i, :, st : st + crop] for i, st in zip(idx.tolist(),
                                                                             starts.tolist(),
                                                                             strict=True)])
            x = net.normalise(_augment(x, gen))
            x = _mask(x, gen, max_t=crop // 8, max_f=int(settings["n_mels"]) // 8)
            emb = net.embed_logmel(x)
            loss = (F.cross_entropy(head_attr(emb, attr_t[idx]), attr_t[idx])
                    + F.cross_entropy(head_kind(emb, kind_t[idx]), kind_t[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        acc = evaluate(net, head_attr, head_kind, mels_t[va], attr_t[va], kind_t[va], crop)
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), **acc})
        log.info("epoch %d/%d: loss %.3f, val attribute acc %.3f, kind acc %.3f (%.0f s)",
                 epoch + 1, args.epochs, np.mean(losses), acc["val_attr_acc"],
                 acc["val_kind_acc"], time.perf_counter() - t1)
    net.eval()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{ASSET_NAME}.pt"
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    with atomic_path(weights) as tmp:
        torch.save(state, tmp)
    meta = {
        "name": "soundwatch-machines",
        "settings": settings,
        "seed": args.seed,
        "command": "OMP_NUM_THREADS=1 .venv/bin/python scripts/pretrain_encoder.py "
                   + shlex.join(args.argv),
        "corpus": {"clips": n, "clip_seconds": CLIP_SECONDS, "crop_seconds": CROP_SECONDS,
                   "status_fractions": list(STATUS), "validation_clips": int(n_val)},
        "training": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                     "render_s": round(render_s, 1),
                     "train_s": round(time.perf_counter() - t1, 1),
                     "torch": torch.__version__, "history": history},
        "attribute_classes": [f"{m}:{'_'.join(v)}" for m, v in classes],
        "kind_classes": kinds,
    }
    write_json(out / f"{ASSET_NAME}.json", meta)
    log.info("wrote %s (%.2f MB) and its .json", weights, weights.stat().st_size / 1e6)
    return meta


def evaluate(net: Any, head_attr: Any, head_kind: Any, mels: Any, attr: Any, kind: Any,
             crop: int) -> dict[str, float]:
    """Validation accuracies of both heads on the centre crops."""
    import torch

    net.eval()
    head_attr.eval()
    head_kind.eval()
    start = (mels.shape[2] - crop) // 2
    with torch.no_grad():
        emb = torch.cat([net.embed_logmel(net.normalise(mels[i : i + 128, :, start:start + crop]))
                         for i in range(0, len(mels), 128)])
        a = (head_attr(emb).argmax(1) == attr).float().mean()
        k = (head_kind(emb).argmax(1) == kind).float().mean()
    return {"val_attr_acc": float(a), "val_kind_acc": float(k)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="corpus and training seed")
    parser.add_argument("--clips", type=int, default=6000, help="synthetic clips (2 s each)")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time-pool", choices=("mean", "meanmax"), default="meanmax",
                        help="pooling of the last conv map over time (see MachineSoundNet)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1]
                                             / "src" / "soundwatch" / "assets"))
    parser.add_argument("--workdir", default=None,
                        help="keeps the rendered corpus (default: a new temporary folder)")
    parser.add_argument("--tiny", action="store_true",
                        help="a smoke run: 12 clips, one epoch")
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(raw)
    args.argv = raw
    if args.tiny:
        args.clips, args.epochs, args.batch_size = 12, 1, 4
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
