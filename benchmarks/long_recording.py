"""Benchmark: scoring a long recording in sliding windows keeps memory bounded.

Makes a synthetic 10-minute and a 60-minute fan recording, trains ``mahalanobis`` on a few
short synthetic fan clips, and scores each recording with ``soundwatch score RUN LONG.wav
--window 10 --hop 5`` in a fresh process, reporting the process's peak memory (ru_maxrss).
Bounded memory means the 60-minute peak stays close to the 10-minute one.

Run: ``.venv/bin/python benchmarks/long_recording.py [--quick]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_recording(path: Path, minutes: float, sr: int = 16000, seed: int = 0) -> None:
    """Write a long fan recording block by block (never held in memory whole)."""
    import soundfile as sf

    from soundwatch.synth import render_machine_clip, sample_attributes

    rng = np.random.default_rng(seed)
    attributes = sample_attributes("fan", "source", rng)
    with sf.SoundFile(path, "w", samplerate=sr, channels=1, subtype="PCM_16") as out:
        for _ in range(int(minutes * 6)):  # 10-second blocks
            out.write(render_machine_clip("fan", "source", attributes, None, 0.0, 10.0, sr, rng))


_CHILD = """
import resource, sys
from soundwatch.cli import main
sys.argv = ["soundwatch", *sys.argv[1:]]
try:
    main()
finally:
    print("PEAK_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def score_in_child(run: Path, wav: Path, window: float, hop: float) -> tuple[float, float]:
    """Score in a fresh process; return (wall seconds, that process's peak RSS in MiB)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, "score", str(run), str(wav),
                           "--window", str(window), "--hop", str(hop), "--out", str(wav.parent)],
                          check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak = next(int(line.split()[1]) for line in done.stderr.splitlines()
                if line.startswith("PEAK_KIB"))
    return wall, peak / 1024


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 and 12 minutes instead of 10 and 60")
    args = parser.parse_args()
    lengths = (2.0, 12.0) if args.quick else (10.0, 60.0)
    from soundwatch import pipeline
    from soundwatch.synth import synth_machines

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = synth_machines(root / "data", machines=["fan"], train_source=20, train_target=2,
                              test_per_group=2, seconds=10.0, seed=0)
        run = pipeline.train(data, "mahalanobis", out=root / "run").root
        rows = []
        for minutes in lengths:
            wav = root / f"fan_{int(minutes)}min.wav"
            write_recording(wav, minutes)
            wall, peak = score_in_child(run, wav, window=10.0, hop=5.0)
            windows = int((minutes * 60 - 10) // 5) + 1
            rows.append((minutes, windows, wall, windows / wall, peak))
    print("| recording | windows (10 s, hop 5 s) | wall s | windows/s | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for minutes, windows, wall, rate, peak in rows:
        print(f"| {minutes:.0f} min | {windows} | {wall:.1f} | {rate:.0f} | {peak:.0f} |")
    print(f"peak-memory growth from {lengths[0]:.0f} to {lengths[1]:.0f} min: "
          f"{rows[1][4] - rows[0][4]:+.0f} MiB")
    flag = " --quick" if args.quick else ""
    print(f"command: .venv/bin/python benchmarks/long_recording.py{flag}")


if __name__ == "__main__":
    main()
