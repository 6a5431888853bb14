"""Cost of the recommended default detector (1,000 ten-second clips) and of every encoder.

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/default_cost.py [--quick] [--no-encoders]
        [--no-write] [--out DIR] [--detector NAME] [-p KEY=VALUE ...]
        [--train-source N --train-target N --test-per-group N --machines a,b]

``--detector`` and ``-p`` (as ``soundwatch train -d NAME -p KEY=VALUE``) measure any
detector spec instead of the default, e.g. ``--detector ensemble -p 'members=[{detector:
mahalanobis}, {detector: knn-frames}]'``; a run with either writes nothing to the docs
unless ``--write`` is given.

Two measurements (issue 15, "Cost"):

* **Default detector**: writes a synthetic machines set (``synth_machines``, DCASE 2024
  layout, 16 kHz, 10 s clips; by default 5 machine types x (90 source + 10 target training
  clips + 4 x 25 test clips) = 1,000 clips), then runs ``soundwatch train DATA`` (the
  detector ``soundwatch.detectors.presets.DEFAULT_DETECTOR`` names at run time, no
  ``--detector``) and ``soundwatch score RUN`` through the library pipeline
  (benchmarks/bench_runs.py), without a feature cache, so that feature extraction is
  timed. Data generation is not timed. Reports the wall time of train and of score and
  the peak resident memory of the process while they run (VmRSS polled every 0.1 s).
  The target: under 10 minutes on 2 cores.
* **Encoders**: for every registered encoder (``soundwatch components``), the seconds to
  turn one 10 s 16 kHz clip into its pooled embedding (front-end + network forward +
  pooling; median over ``--clips`` clips, one thread), with the architecture of the
  preset that uses it (a trained encoder is first fitted for one epoch on 4 clips: the
  weights do not change the cost). ``log-mel statistics`` (no network) is the classical
  detectors' front-end for comparison.

Writes its tables to docs/benchmarks.md between ``<!-- default-cost:start/end -->``
(``--no-write`` leaves the file alone).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import logging
import shlex
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from bench_doc import PeakRSS, machine, md_table, publish, scratch_folder, usable_cores
from bench_runs import train_and_score

ROOT = Path(__file__).resolve().parents[1]
SR = 16000
TARGET_S = 600.0
MACHINE_TYPES = "fan,pump,slider,valve,gearbox"
SLOW_CLIP_S = 15.0
"""An encoder slower than this per clip is timed on one clip only."""
FALLBACK = {"soundwatch-machines": {"window_frames": 16000, "score_hop": 16000}}
"""Framing of a frozen encoder no preset uses yet (the one its docstring gives), run through
the first frozen-encoder preset (``embedding``)."""


def command_line() -> str:
    """This run's command, relative to the repository."""
    exe = Path(sys.executable)
    exe_text = str(exe.relative_to(ROOT)) if ROOT in exe.parents else "python"
    return shlex.join(["OMP_NUM_THREADS=" + os.environ["OMP_NUM_THREADS"], exe_text,
                       "benchmarks/default_cost.py", *sys.argv[1:]])


# ----------------------------------------------------------------------------- default
def default_cost(out: Path, machines: str, counts: tuple[int, int, int], seconds: float,
                 workers: int, detector: str | None = None,
                 params: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """Generate the set, then time ``train`` + ``score`` of a detector on it.

    Args:
        detector: Registered detector (``None``: the default, ``DEFAULT_DETECTOR``).
        params: Its overrides (``-p``).
    """
    from soundwatch.detectors.presets import DEFAULT_DETECTOR
    from soundwatch.synth import synth_machines

    is_default = detector is None and not params
    detector = detector or DEFAULT_DETECTOR
    params = dict(params or {})
    label = detector + "".join(f" -p {k}={v}" for k, v in params.items())

    src, tgt, per_group = counts
    data = out / "data"
    t0 = time.perf_counter()
    synth_machines(data, machines, src, tgt, per_group, seconds, SR, 0, workers)
    synth_s = time.perf_counter() - t0
    n_types = len(machines.split(","))
    n_train, n_test = n_types * (src + tgt), n_types * 4 * per_group
    print(f"data: {n_train} training + {n_test} test clips of {seconds:g} s in {synth_s:.0f} s "
          f"(not timed); detector: {label}", flush=True)
    run = out / "run"
    shutil.rmtree(run, ignore_errors=True)
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with PeakRSS() as peak:
        t0, cpu0 = time.perf_counter(), time.process_time()
        res = train_and_score(data, detector, run, params=params, seed=0, cache_dir=None)
        total_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    from soundwatch.evaluation import evaluate_scores

    official = evaluate_scores(res.test, res.train, threshold="gamma",
                               mode="dcase2024").official_score
    numbers = {"detector": label, "n_train": n_train, "n_test": n_test,
               "fit_s": res.fit_s, "score_s": res.score_s, "total_s": total_s,
               "peak_mb": peak.peak, "start_mb": peak.start, "synth_s": synth_s,
               "official": official, "cpu_s": cpu_s, "load": (load_start, load_end)}
    print(f"{'default ' if is_default else ''}{label}: train {res.fit_s:.1f} s, "
          f"score {res.score_s:.1f} s, "
          f"total {total_s:.1f} s, CPU {cpu_s:.1f} s, load {load_start:.1f}-{load_end:.1f}, "
          f"peak RSS {peak.peak:.0f} MB (official score "
          f"{official:.3f})", flush=True)
    if total_s < TARGET_S:
        verdict = "**yes**"
    elif cpu_s < TARGET_S:
        verdict = "no (wall, under load); **yes** by CPU time"
    else:
        verdict = "**no**"
    title = (f"**Default detector** (`DEFAULT_DETECTOR` = `{DEFAULT_DETECTOR}` at run time)"
             if is_default else f"**Detector** `{label}`")
    text = "\n".join([
        f"{title}: "
        f"`soundwatch train DATA` + `soundwatch score RUN` through the library pipeline "
        f"(`benchmarks/bench_runs.py`), no feature cache (feature extraction is inside the "
        f"time), one torch/OMP thread as the CLI uses by default. DATA: `synth_machines` "
        f"(seed 0), {n_types} machine types x ({src} source + {tgt} target training clips "
        f"+ {4 * per_group} test clips) = {n_train} + {n_test} = {n_train + n_test} clips of "
        f"{seconds:g} s at 16 kHz; writing them took {synth_s:.0f} s with {workers} "
        f"processes and is **not** in the time below. Peak RSS = the largest resident "
        f"memory of the benchmark process while train and score ran (it was {peak.start:.0f} "
        f"MB before, imports included). CPU time = the process's CPU seconds (all its "
        f"threads) over train + score: with one thread, what the wall time is on an idle "
        f"machine; the load average was {load_start:.1f} at the start and {load_end:.1f} at "
        f"the end (a load above 2 on 2 cores stretches the wall time, not the CPU time).",
        "",
        md_table(["detector", "clips (train + test)", "train s", "score s", "total (wall)",
                  "CPU time", "< 10 min", "peak RSS",
                  "official score (synthetic, for reference)"],
                 [[f"`{label}`", f"{n_train} + {n_test}", f"{res.fit_s:.1f}",
                   f"{res.score_s:.1f}", f"{total_s / 60:.2f} min", f"{cpu_s / 60:.2f} min",
                   verdict, f"{peak.peak:.0f} MB", f"{official:.3f}"]]),
    ])
    return text, numbers


# ----------------------------------------------------------------------------- encoders
def encoder_presets() -> dict[str, tuple[str, dict[str, Any]]]:
    """For every registered encoder: a detector preset using it, with overrides."""
    from soundwatch.detectors import create_detector, list_detectors
    from soundwatch.detectors.encoders import list_encoders

    uses: dict[str, tuple[str, dict[str, Any]]] = {}
    for det_name in list_detectors():
        det = create_detector(det_name)
        enc = getattr(det, "encoder", None)
        if enc is not None and enc not in uses:
            uses[enc] = (det_name, {})
    frozen = next((d for d, _ in uses.values()
                   if not _trainable(getattr(create_detector(d), "encoder", None))), None)
    out = {}
    for enc in list_encoders():
        if enc in uses:
            out[enc] = uses[enc]
        elif not _trainable(enc) and frozen is not None:
            # e.g. crepe-full through `embedding`
            out[enc] = (frozen, {"encoder": enc, **FALLBACK.get(enc, {})})
        else:
            out[enc] = ("", {})
    return out


def _trainable(encoder: str | None) -> bool:
    from soundwatch.detectors.encoders import encoder_info

    return encoder is not None and bool(encoder_info(encoder).trainable)


def _embed_seconds(det: Any, signal: np.ndarray) -> float:
    from soundwatch.detectors.pooling import pool

    t0 = time.perf_counter()
    feats = det.signal_features([signal], SR)
    items = det.view_items(feats, "vectors")
    for it in items:
        pool(det.pooling, it, **(det.pooling_params or {}))
    return time.perf_counter() - t0


def encoder_costs(out: Path, n_clips: int, skip: set[str]) -> tuple[str, list[list[Any]]]:
    """Seconds per 10 s clip for every registered encoder (and the log-mel statistics)."""
    from soundwatch.datasets import discover
    from soundwatch.detectors import create_detector
    from soundwatch.detectors.presets import DEFAULT_DETECTOR
    from soundwatch.pipeline import make_detector, resolve_config, run_context
    from soundwatch.synth import synth_machines

    long_root = synth_machines(out / "enc-10s", "fan", 4, 0, max(1, n_clips), 10.0, SR, 1, 1)
    short_root = synth_machines(out / "enc-1s", "fan", 2, 0, 0, 1.0, SR, 1, 1)
    long_train = [c for c in discover(long_root) if c.split == "train"]
    short_train = [c for c in discover(short_root) if c.split == "train"]
    from soundwatch.audio import load

    signals = [load(c.path, SR) for c in discover(long_root) if c.split == "test"][:n_clips]
    rows = []
    plan: list[tuple[str, str, dict[str, Any]]] = [("log-mel statistics (no network)",
                                                    "mahalanobis", {})]
    if DEFAULT_DETECTOR not in ("mahalanobis",) and getattr(
            create_detector(DEFAULT_DETECTOR), "encoder", "x") is None:
        plan.append((f"log-mel frames (`{DEFAULT_DETECTOR}`, no pooling)", DEFAULT_DETECTOR, {}))
    for enc, (det_name, over) in encoder_presets().items():
        plan.append((f"`{enc}`", det_name, over))
    for label, det_name, over in plan:
        if not det_name or label.strip("`") in skip:
            rows.append([label, det_name or "(no preset uses it)", "", "", "skipped"])
            continue
        try:
            params = dict(over)
            det0 = create_detector(det_name, **params)
            trained = _trainable(getattr(det0, "encoder", None)) and det0.objective is not None
            if trained:
                params["epochs"] = 1
            det = make_detector(resolve_config(None, det_name, None, params=params, seed=0,
                                               device="cpu"))
            fit_clips = long_train if trained or det0.encoder is None else short_train
            det.fit(fit_clips, context=run_context(device="cpu",
                                                   log_dir=out / "enc-logs" / det_name))
            _embed_seconds(det, signals[0][: SR])  # warm-up on 1 s
            times = []
            for signal in signals:
                times.append(_embed_seconds(det, signal))
                if times[-1] > SLOW_CLIP_S:
                    break
            feats = det.signal_features([signals[0]], SR)
            items = det.view_items(feats, "vectors")
            shape = f"{items[0].shape[0]} x {items[0].shape[1]}"
            overrides = ", ".join(f"{k}={v}" for k, v in over.items())
            rows.append([label, f"`{det_name}`" + (f" ({overrides})" if overrides else ""),
                         shape, len(times), f"{statistics.median(times):.3f}"])
            print(f"encoder {label}: {statistics.median(times):.3f} s / 10 s clip ({shape})",
                  flush=True)
        except Exception as exc:  # noqa: BLE001 - one encoder failing must not lose the rest
            msg = f"failed: {type(exc).__name__}: {str(exc)[:120]}"
            rows.append([label, f"`{det_name}`", "", "", msg])
            print(f"encoder {label}: {msg}", flush=True)
    text = "\n".join([
        "**Embedding extraction per 10 s clip** (16 kHz, one torch/OMP thread, median over "
        "the clips timed; a clip = front-end + network forward + the preset's pooling; "
        "trained encoders fitted for 1 epoch first, as weights do not change the cost; "
        "the architecture and framing are those of the preset named). "
        "`benchmarks/encoders.py` has every CREPE layer and hop separately.",
        "",
        md_table(["encoder", "preset (overrides)", "items x dims per clip", "clips timed",
                  "seconds / 10 s clip"], rows),
    ])
    return text, rows


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="50 clips of 3 s, encoders on 1 clip (checks the script only)")
    parser.add_argument("--machines", default=MACHINE_TYPES, help="machine types")
    parser.add_argument("--train-source", type=int, default=90)
    parser.add_argument("--train-target", type=int, default=10)
    parser.add_argument("--test-per-group", type=int, default=25)
    parser.add_argument("--clips", type=int, default=3, help="clips timed per encoder")
    parser.add_argument("--no-encoders", action="store_true", help="skip the encoder table")
    parser.add_argument("--no-default", action="store_true", help="skip the default's run")
    parser.add_argument("--skip", default="", help="encoders to skip (comma-separated)")
    parser.add_argument("--workers", type=int, default=2, help="data-generation processes")
    parser.add_argument("--out", type=Path, default=None, help="scratch folder (default: temp)")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument("--write", action="store_true",
                        help="write docs/benchmarks.md even for --detector/-p runs")
    parser.add_argument("--detector", "-d", default=None,
                        help="detector to measure (default: DEFAULT_DETECTOR)")
    parser.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE",
                        help="detector override, as soundwatch train -p (repeatable)")
    args = parser.parse_args(argv)
    from soundwatch.config import parse_params

    params = parse_params(args.param)
    if args.detector is not None or params:
        args.no_write = args.no_write or not args.write

    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    seconds = 10.0
    counts = (args.train_source, args.train_target, args.test_per_group)
    machines, n_clips = args.machines, args.clips
    if args.quick:
        machines, counts, seconds, n_clips = "fan,valve", (10, 2, 3), 3.0, 1
    out, tmp = scratch_folder(args.out, "soundwatch-cost-")
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load = os.getloadavg()[0]
    parts = []
    try:
        if not args.no_default:
            parts.append(default_cost(out, machines, counts, seconds, args.workers,
                                      args.detector, params)[0])
        if not args.no_encoders:
            skip = {s.strip() for s in args.skip.split(",") if s.strip()}
            parts.append(encoder_costs(out, n_clips, skip)[0])
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    head = "\n".join([
        "## Cost: the default detector on 1,000 clips, embedding extraction per encoder"
        + (" (QUICK run: not the real numbers)" if args.quick else ""),
        "",
        f"* Command: `{command_line()}`",
        f"* Date: {started}; load average at start {load:.1f} "
        f"({usable_cores()} usable cores, shared with other work)",
        f"* Machine: {machine()}",
    ])
    text = head + "\n\n" + "\n\n".join(parts)
    publish("default-cost", text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
