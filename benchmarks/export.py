"""ONNX export: scoring speed with torch and with soundwatch.runtime, export size, memory.

Run:  .venv/bin/python benchmarks/export.py [--quick] [--clips 7] [--no-write]

For every registered detector (the preset's architecture; a network trained for one epoch
on eight synthetic 10 s clips: speed and size do not depend on how well it is trained),
and for the exportable variant of a preset that is not exportable as it is:

* ms per 10 s clip with torch (``Detector.score_signals``) and with the export
  (``soundwatch.runtime``, onnxruntime with one thread), median over ``--clips`` clips
  after one warm-up, both in this process with one torch thread;
* the size of the export folder (model.onnx + scorer.npz + train_scores.npy + manifest);
* peak resident memory of a fresh process that loads the export and scores the clips
  with the runtime only (torch is never imported: checked), and of one that does the
  same with the saved detector and torch;
* the largest score difference between the two, relative to ``max(|score|, std of the
  training scores)`` (the parity acceptance: 1e-4).

Prints the table and writes it into docs/benchmarks.md between ``<!-- export:start -->``
and ``<!-- export:end -->``.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from bench_doc import machine, md_table, publish  # noqa: E402

SR = 16000
SECONDS = 10.0
VARIANTS = {"vae1d": {"scorer": "mse"}, "wavevision": {"encoder__input": "logmel"}}


def signal(rng: np.random.Generator, seconds: float, anomaly: bool = False) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 880 * t)
    x += 0.05 * rng.standard_normal(len(t))
    if anomaly:
        x += 0.15 * np.sin(2 * np.pi * 3100 * t)
    return x.astype(np.float32)


def write_clips(root: Path, n: int, seconds: float) -> list[Any]:
    import soundfile as sf

    from soundwatch.datasets.clip import Clip

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(n):
        path = root / f"train_{i}.wav"
        sf.write(path, signal(rng, seconds), SR, subtype="FLOAT")
        clips.append(Clip(path=path, machine="bench", split="train", label=0, section="00",
                          domain="source"))
    return clips


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def median_ms(fn: Any, signals: list[np.ndarray]) -> float:
    fn(signals[:1])
    times = []
    for s in signals:
        t0 = time.perf_counter()
        fn([s])
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


# VmHWM (this process's own peak), not ru_maxrss: Linux carries ru_maxrss over from the
# forking parent, so a child of a big benchmark process would report the parent's peak.
_RSS = """
import sys
wavs = {wavs!r}
{body}
assert {check}, "torch was imported"
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(int(status) / 1024)
"""


def peak_rss_mb(body: str, wavs: list[str], no_torch: bool) -> float:
    check = "'torch' not in sys.modules" if no_torch else "True"
    code = _RSS.format(wavs=wavs, body=textwrap.dedent(body), check=check)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if res.returncode != 0:
        raise RuntimeError(res.stderr.strip().splitlines()[-1])
    return float(res.stdout.strip().splitlines()[-1])


def bench_one(label: str, name: str, overrides: dict[str, Any], train: list[Any],
              test: list[np.ndarray], wavs: list[str], work: Path) -> list[str]:
    from soundwatch.detectors import create_detector
    from soundwatch.export.detector import export_detector, export_reason, parity_scale
    from soundwatch.runtime import load

    det = create_detector(name, **overrides)
    if getattr(det, "encoder", None) is not None and getattr(det, "objective", None):
        det.set_params(training__epochs=1)  # speed and size do not depend on training
    t0 = time.perf_counter()
    det.fit(train)
    fit_s = time.perf_counter() - t0
    reason = export_reason(det)
    torch_ms = median_ms(lambda s: det.score_signals(s, SR), test)
    if reason is not None:
        return [label, f"{torch_ms:.1f}", "-", "-", "-", "-", "-", f"not exportable: {reason}"]
    out = export_detector(det, work / f"export_{label}", verify=False)
    saved = det.save(work / f"saved_{label}")
    runtime = load(out, threads=1)
    ort_ms = median_ms(lambda s: runtime.score(s, sr=SR), test)
    ref = det.score_signals(test, SR)
    got = runtime.score(test, sr=SR)
    rel = float(np.max(np.abs(got - ref) / parity_scale(ref, det.train_scores_)))
    rt_rss = peak_rss_mb(f"""
        import soundwatch.runtime
        det = soundwatch.runtime.load({str(out)!r})
        det.score(wavs)
    """, wavs, no_torch=True)
    torch_rss = peak_rss_mb(f"""
        import torch
        torch.set_num_threads(1)
        from soundwatch.detectors import Detector
        from soundwatch.audio import load
        det = Detector.load({str(saved)!r})
        det.score_signals([load(w, sr={SR}) for w in wavs], {SR})
    """, wavs, no_torch=False)
    log = logging.getLogger("bench")
    log.info("%s: fit %.1f s", label, fit_s)
    return [label, f"{torch_ms:.1f}", f"{ort_ms:.1f}", f"{folder_mb(out):.2f}",
            f"{rt_rss:.0f}", f"{torch_rss:.0f}", f"{rel:.1e}", ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 training clips of 10 s")
    parser.add_argument("--clips", type=int, default=7, help="timed 10 s clips")
    parser.add_argument("--only", default="", help="comma-separated detector names")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)

    import soundfile as sf
    import torch

    from soundwatch.detectors import list_detectors

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("lightning", "lightning.pytorch", "pytorch_lightning", "soundwatch"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list_detectors()
    rows = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="soundwatch-export-bench-") as tmp:
        work = Path(tmp)
        train = write_clips(work / "train", 3 if args.quick else 8, SECONDS)
        rng = np.random.default_rng(1)
        test = [signal(rng, SECONDS, anomaly=bool(i % 2)) for i in range(args.clips)]
        wavs = []
        for i, x in enumerate(test):
            wavs.append(str(work / f"test_{i}.wav"))
            sf.write(wavs[-1], x, SR, subtype="FLOAT")
        jobs = [(n, n, {}) for n in names]
        jobs += [(f"{n} ({', '.join(f'{k}={v}' for k, v in VARIANTS[n].items())})", n,
                  VARIANTS[n]) for n in names if n in VARIANTS]
        for label, name, overrides in jobs:
            print(f"... {label}", flush=True)
            try:
                rows.append(bench_one(label, name, overrides, train, test, wavs, work))
            except Exception as exc:  # one failing detector must not stop the table
                rows.append([label, "-", "-", "-", "-", "-", "-", f"failed: {exc}"])
            print("    " + " | ".join(rows[-1]), flush=True)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    header = ["detector", "torch ms/clip", "runtime ms/clip", "export MB",
              "runtime peak RSS MB", "torch peak RSS MB", "max rel. diff", "note"]
    cmd = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/export.py" + (
        " --quick" if args.quick else "")
    text = "\n".join([
        "## ONNX export (soundwatch.runtime)",
        "",
        f"`{cmd}` ({time.strftime('%Y-%m-%d')}, {(time.perf_counter() - t_all) / 60:.1f} "
        f"min). Machine: {machine()}; load average at the end {load} (other jobs "
        "running make every time longer, torch and runtime alike).",
        "",
        f"Each detector: the preset's architecture trained one epoch on "
        f"{len(train)} synthetic 10 s clips; ms per 10 s clip = median of {len(test)} "
        "clips, one at a time, one thread (torch: `score_signals`; runtime: onnxruntime "
        "+ numpy). Peak RSS: a fresh process scoring the clips' WAV files, with the "
        "runtime only (torch never imported) or with torch and the saved detector. "
        "max rel. diff: largest score difference runtime vs. torch on those clips, "
        "relative to max(|score|, std of the training scores) (the export's parity "
        "check; an ensemble's z-scores cross zero).",
        "",
        md_table(header, rows),
    ])
    publish("export", text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
