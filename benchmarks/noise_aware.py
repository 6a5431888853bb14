"""Noise-aware options on two-channel DCASE 2026-layout sets vs. the near channel alone.

For each set written by ``soundwatch synth dcase2026`` (one per environmental-noise level),
every clip's near/far channels go through each option of soundwatch.features.noise_aware
(spectral subtraction, Wiener-style gain, spectral gating with and without the far channel
as reference, the near-minus-far log-mel view, both channels side by side); each gives a
64-band log-mel, summarised per clip by its mean and standard deviation per band; a
standardised 1-NN distance to the machine's training clips (all domains) is the score. The
table: per option, the harmonic mean over machines x domains of AUC and of pAUC (0.1), as
DCASE reports them.

    python benchmarks/noise_aware.py --data /tmp/n26/snr0 --data /tmp/n26/snr-6 --write
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bench_doc import machine, write_section  # noqa: E402
from soundwatch.datasets import discover  # noqa: E402
from soundwatch.features.noise_aware import ENHANCEMENTS, enhance, near_minus_far_logmel  # noqa: E402,E501

VIEWS = (*ENHANCEMENTS, "near-far", "near+far")
N_MELS = 64


def _logmel(x: np.ndarray, sr: int) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(y=x, sr=sr, n_fft=1024, hop_length=512, n_mels=N_MELS)
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10)


def _stats(m: np.ndarray) -> np.ndarray:
    return np.concatenate([m.mean(axis=1), m.std(axis=1)])


def clip_features(path: Path) -> dict[str, np.ndarray]:
    """Every view's per-clip statistics of one two-channel clip."""
    y, sr = sf.read(path, dtype="float32", always_2d=True)
    near, far = y[:, 0], y[:, 1]
    out = {name: _stats(_logmel(enhance(name, near, far, sr), sr)) for name in ENHANCEMENTS}
    out["near-far"] = _stats(near_minus_far_logmel(near, far, sr, n_mels=N_MELS))
    out["near+far"] = np.concatenate([out["near"], _stats(_logmel(far, sr))])
    return out


def evaluate(data: Path) -> tuple[dict[str, tuple[float, float]], int, float]:
    """View -> (hmean AUC, hmean pAUC) on one set; the clip count; seconds."""
    from scipy.stats import hmean
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import NearestNeighbors
    from sklearn.preprocessing import StandardScaler

    start = time.perf_counter()
    clips = [c for c in discover(data) if c.split in ("train", "test")]
    feats = {c.path: clip_features(c.path) for c in clips}
    results: dict[str, tuple[float, float]] = {}
    for view in VIEWS:
        aucs, paucs = [], []
        by_machine = defaultdict(list)
        for c in clips:
            by_machine[c.machine].append(c)
        for group in by_machine.values():
            train = [c for c in group if c.split == "train"]
            scaler = StandardScaler().fit(np.stack([feats[c.path][view] for c in train]))
            bank = NearestNeighbors(n_neighbors=1).fit(
                scaler.transform(np.stack([feats[c.path][view] for c in train])))
            for domain in ("source", "target"):
                test = [c for c in group if c.split == "test" and c.domain == domain]
                x = scaler.transform(np.stack([feats[c.path][view] for c in test]))
                score = bank.kneighbors(x)[0][:, 0]
                label = np.array([c.label for c in test])
                aucs.append(roc_auc_score(label, score))
                paucs.append(roc_auc_score(label, score, max_fpr=0.1))
        results[view] = (float(hmean(aucs)), float(hmean(paucs)))
    return results, len(clips), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", required=True,
                        help="a soundwatch synth dcase2026 set (repeat: one per noise level)")
    parser.add_argument("--write", action="store_true",
                        help="write the table into docs/benchmarks.md (noise-aware section)")
    args = parser.parse_args()
    rows, notes = {}, []
    for data in args.data:
        results, n, seconds = evaluate(data)
        rows[data.name] = results
        notes.append(f"{data.name}: {n} clips, {seconds:.0f} s")
    head = "| option | " + " | ".join(f"{name} AUC | {name} pAUC" for name in rows) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(rows))]
    for view in VIEWS:
        cells = " | ".join(f"{rows[n][view][0] * 100:.1f} | {rows[n][view][1] * 100:.1f}"
                           for n in rows)
        lines.append(f"| {view} | {cells} |")
    table = "\n".join(lines)
    print(table)
    print("; ".join(notes), "|", machine())
    if args.write:
        text = (f"Machine: {machine()}. Sets: {'; '.join(notes)}. Command: `python "
                f"benchmarks/noise_aware.py --data DIR ... --write`.\n\n{table}\n")
        write_section("noise-aware", text)


if __name__ == "__main__":
    main()
