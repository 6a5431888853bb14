"""Quality and speed of the cnn1d and wavevision detectors (CPU).

Run:  .venv/bin/python benchmarks/cnn.py [--quick] [--skip-machines] [--skip-pink]
          [--seeds 3] [--jobs 2] [--data DIR]

1. Pink-noise task (``synth_pink_noise``: synthetic machine base, SNR 0-10 dB,
   400 train / 200 test, 10 s clips), supervised objective, each network with its
   ``configs/<network>-pink.yaml`` preset: test AUC and training time.
2. A small synthetic machines set (``synth_machines``, DCASE 2024 layout): the auxiliary
   and synthetic objectives of both networks against ``ae-mahalanobis`` (the DCASE baseline
   network, selective Mahalanobis score), official score (DCASE 2024 harmonic mean) per
   machine type via ``soundwatch.evaluation``,
   for ``--seeds`` training seeds (mean ± standard deviation: one seed's score moves
   by several hundredths on this small set), fits spread over ``--jobs`` processes.
3. Inference time per 10 s clip on the CPU (features + network), each network's
   default preset.

Prints a table per task and writes each into docs/benchmarks.md between
``<!-- cnn-<task>:start -->`` and ``<!-- cnn-<task>:end -->`` (task: inference, pink,
machines; other sections are kept), so rerunning one task replaces only its numbers.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from bench_doc import machine, median_score_ms, usable_cores, write_section

ROOT = Path(__file__).resolve().parents[1]
REF = "ae-mahalanobis"
"""The reference of the synthetic-machines task."""


def shipped(name: str) -> str | None:
    """``name`` when it is a shipped config (``soundwatch/configs/<name>.yaml``), else None."""
    from soundwatch.config import find_config

    return name if find_config(name) is not None else None


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from soundwatch.evaluation.metrics import roc_auc

    return float(roc_auc(labels, scores))


def pink_task(data: Path, quick: bool, rows: list[tuple[str, str]]) -> None:
    from bench_runs import config_epochs, train_and_score
    from soundwatch.synth.pink_noise import synth_pink_noise

    n_train, n_test, seconds = (120, 80, 5.0) if quick else (400, 200, 10.0)
    root = data / f"pink_{n_train}_{n_test}_{seconds:g}"
    synth_pink_noise(root, n_train=n_train, n_test=n_test, snr_db=(0.0, 10.0), seconds=seconds,
                     seed=0, workers=2)
    for name in ("cnn1d", "wavevision"):
        config = f"{name}-pink"
        params = {}
        if quick:
            params["epochs"] = max(2, (config_epochs(name, config) or 10) // 3)
        out = data / "runs" / f"pink-{name}"
        shutil.rmtree(out, ignore_errors=True)
        res = train_and_score(root, name, out, config=config, params=params)
        value = auc(res.test["label"].to_numpy(), res.test["score"].to_numpy())
        print(f"pink {name}: AUC {value:.4f}, fit {res.fit_s:.0f} s", flush=True)
        rows.append((f"pink-noise, supervised, `{name}` (`configs/{name}-pink.yaml`), "
                     f"{n_train} train / {n_test} test {seconds:g} s clips",
                     f"AUC {value:.4f}, training {res.fit_s / 60:.1f} min"))


def _fit_score(job: tuple[str, str | None, dict[str, Any], str, str, int, str]) -> Any:
    """One detector on one machine type through the pipeline: its test scores table.

    Runs in a worker process; ``job`` = (detector, config, overrides, data root, machine
    type, seed, run folder).
    """
    from bench_runs import train_and_score

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    name, config, params, root, machine_type, seed, out = job
    shutil.rmtree(out, ignore_errors=True)
    return train_and_score(Path(root), name, Path(out), config=config, params=params,
                           seed=seed, machines=[machine_type]).test


def machines_task(data: Path, quick: bool, rows: list[tuple[str, str]], seeds: int,
                  jobs: int) -> None:
    """Every system x training seed x machine type, ``jobs`` single-threaded processes."""
    from concurrent.futures import ProcessPoolExecutor

    import pandas as pd

    from soundwatch.datasets.discovery import discover
    from soundwatch.evaluation.evaluate import evaluate_scores
    from soundwatch.synth.devset import synth_machines

    names = "fan,valve" if quick else "fan,pump,valve"
    counts = (40, 6, 10) if quick else (90, 10, 15)
    root = data / f"machines_{names.replace(',', '-')}_{'_'.join(map(str, counts))}"
    synth_machines(root, machines=names, train_source=counts[0], train_target=counts[1],
                   test_per_group=counts[2], seconds=10.0, seed=0, workers=2)
    machine_types = sorted({c.machine for c in discover(root)})
    # The cnn1d/wavevision settings (epochs included) are their presets' own, chosen on a
    # separate seed-1 validation set (see docs/cnn.md); --quick caps the epochs.
    cap: dict[str, Any] = {"epochs": 4} if quick else {}

    systems: dict[str, tuple[str, str | None, dict[str, Any]]] = {
        REF: (REF, None, {"epochs": 20 if quick else 60}),
        "cnn1d auxiliary": ("cnn1d", shipped("cnn1d"), cap),
        "cnn1d synthetic": ("cnn1d", shipped("cnn1d-synthetic"), cap),
        "wavevision auxiliary": ("wavevision", shipped("wavevision"), cap),
        "wavevision synthetic": ("wavevision", shipped("wavevision-synthetic"), cap),
    }
    keys = [(label, seed, m) for label in systems for seed in range(seeds)
            for m in machine_types]
    t0 = time.perf_counter()
    os.environ["OMP_NUM_THREADS"] = "1"  # one thread per worker process
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        tables = list(pool.map(_fit_score, [
            (*systems[label], str(root), m, seed,
             str(data / "runs" / f"{label.replace(' ', '-')}-s{seed}-{m}"))
            for label, seed, m in keys
        ]))
    wall = time.perf_counter() - t0
    by_key = dict(zip(keys, tables, strict=True))

    def official(table: Any) -> float:
        return float(evaluate_scores(table, threshold="fixed:0.5",
                                     mode="dcase2024").official_score)

    # score[label][seed] = (overall, {machine: score})
    score: dict[str, list[tuple[float, dict[str, float]]]] = {}
    for label in systems:
        score[label] = []
        for seed in range(seeds):
            table = pd.concat([by_key[(label, seed, m)] for m in machine_types],
                              ignore_index=True)
            per = {m: official(table[table["machine"] == m]) for m in machine_types}
            score[label].append((official(table), per))
    ae = np.array([s for s, _ in score[REF]])
    header = (f"synthetic machines ({names}; {counts[0]}+{counts[1]} train, "
              f"{4 * counts[2]} test per type, 10 s clips), {seeds} training seed(s)")
    for label in systems:
        overall = np.array([s for s, _ in score[label]])
        per = ", ".join(
            f"{m} {np.mean([p[m] for _, p in score[label]]):.3f}" for m in machine_types
        )
        text = f"official {overall.mean():.3f} ± {overall.std():.3f} (mean ± sd; {per})"
        if label != REF:
            wins = int(np.sum(overall > ae))
            text += (f"; vs `{REF}` {overall.mean() - ae.mean():+.3f}, higher in {wins} of "
                     f"{seeds} seeds")
        print(f"machines {label}: {text}", flush=True)
        rows.append((f"{header}, `{label}`", text))
    rows.append((f"synthetic machines: wall time ({len(keys)} fits, {jobs} processes)",
                 f"{wall / 60:.1f} min"))


def inference(rows: list[tuple[str, str]], n: int) -> None:
    import tempfile

    import soundfile as sf

    from soundwatch.datasets.clip import Clip
    from soundwatch.pipeline import make_detector, resolve_config

    rng = np.random.default_rng(0)
    sr = 16000
    signals = [(0.1 * rng.standard_normal(10 * sr)).astype(np.float32) for _ in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        clips = []
        for i in range(4):
            path = Path(tmp) / f"c{i}.wav"
            sf.write(path, signals[i], sr)
            clips.append(Clip(path, "bench", "train", 0, "00" if i % 2 else "01", "source"))
        for name in ("cnn1d", "wavevision"):
            for objective in ("synthetic", "auxiliary"):
                config = f"{name}-synthetic" if objective == "synthetic" else name
                cfg = resolve_config(None, name, shipped(config),
                                     params={"epochs": 1, "batch_size": 4, "val_fraction": 0.0})
                det = make_detector(cfg).fit(clips)
                ms = median_score_ms(det, signals, sr)
                print(f"inference {name} {objective}: {ms:.1f} ms per 10 s clip", flush=True)
                rows.append((f"inference per 10 s clip, `{name}` (`configs/{config}.yaml`), "
                             f"objective {objective}, CPU, one clip at a time, median of {n}",
                             f"{ms:.1f} ms"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data and fewer epochs")
    parser.add_argument("--skip-machines", action="store_true", help="skip the machines task")
    parser.add_argument("--skip-pink", action="store_true", help="skip the pink-noise task")
    parser.add_argument("--data", type=Path, default=Path("/tmp/soundwatch-bench-cnn"),
                        help="folder for the generated datasets (reused between runs)")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--seeds", type=int, default=3,
                        help="training seeds per system on the machines task (default 3)")
    parser.add_argument("--jobs", type=int, default=usable_cores(),
                        help="processes for the machines task (default: the usable cores)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    args.data.mkdir(parents=True, exist_ok=True)
    command = "benchmarks/cnn.py " + " ".join(sys.argv[1:])
    if os.environ.get("OMP_NUM_THREADS"):
        command = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} .venv/bin/python {command}"
    else:
        command = f".venv/bin/python {command}"
    tasks = [("inference", "inference time", lambda rows: inference(rows, 4 if args.quick
                                                                    else 16))]
    if not args.skip_pink:
        tasks.append(("pink", "pink-noise task",
                      lambda rows: pink_task(args.data, args.quick, rows)))
    if not args.skip_machines:
        tasks.append(("machines", f"synthetic machines against `{REF}`",
                      lambda rows: machines_task(args.data, args.quick, rows, args.seeds,
                                                 args.jobs)))
    # one marker section per task, so that rerunning one task replaces only its numbers
    for key, title, run in tasks:
        rows: list[tuple[str, str]] = []
        t0 = time.perf_counter()
        run(rows)
        wall = time.perf_counter() - t0
        lines = [
            f"## CNN detectors (cnn1d, wavevision): {title}",
            "",
            f"Command: `{command.strip()}` ({wall / 60:.1f} min for this part, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). "
            f"Machine: {machine()}. Times are only comparable on an otherwise idle machine.",
            "",
            "| measure | result |",
            "|---|---|",
            *[f"| {a} | {b} |" for a, b in rows],
        ]
        text = "\n".join(lines)
        print(text, flush=True)
        if not args.no_write:
            write_section(f"cnn-{key}", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
