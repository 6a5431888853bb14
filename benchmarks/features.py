"""Speed of the feature path: seed-style matplotlib images vs soundwatch, loading, cache, memory.

Run:  .venv/bin/python benchmarks/features.py [--quick]

Prints a table and writes it into docs/benchmarks.md between the markers
``<!-- features:start -->`` and ``<!-- features:end -->`` (other sections are kept).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_doc import machine, usable_cores, write_section

ROOT = Path(__file__).resolve().parents[1]
SR = 16000
SECONDS = 10.0


def make_clips(folder: Path, n: int) -> list[Path]:
    """Write ``n`` synthetic 10 s 16 kHz PCM-16 clips (tone + noise, all different)."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(int(SECONDS * SR)) / SR
    paths = []
    for i in range(n):
        freq = 200.0 + 37.0 * (i % 100)
        x = 0.2 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(t.size)
        path = folder / f"clip_{i:05d}.wav"
        sf.write(path, x.astype(np.float32), SR, subtype="PCM_16")
        paths.append(path)
    return paths


def seed_image(y: np.ndarray) -> np.ndarray:
    """The seed's path: librosa log-mel, pyplot imshow, savefig to PNG, PIL decode, resize."""
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=1024, hop_length=512, n_mels=64,
                                         power=1.0)
    db = 20 * np.log10(np.maximum(mel, 1e-10))
    db = (db - db.min()) / (db.max() - db.min())
    plt.figure(figsize=(10, 4))
    plt.imshow(db, aspect="auto")
    plt.axis("off")
    buffer = io.BytesIO()
    plt.savefig(buffer, bbox_inches="tight", pad_inches=0.1)
    plt.close()
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB").resize((228, 228))
    return np.asarray(image)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


class torch_threads:  # noqa: N801 - used like a function
    """Context manager: torch intra-op threads set to ``n`` inside, restored after."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self) -> None:
        import torch

        self.before = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self.before)


def bench_images(waves: list[np.ndarray], n_seed: int, device: str,
                 threads: int = 1) -> dict[str, float]:
    """Clips/s of the seed's path (one clip at a time, as the seed) and of soundwatch's.

    The soundwatch path runs with ``threads`` torch threads. Both rates come from the
    median time per clip (seed) or per 64-clip batch (soundwatch), so that a few seconds
    of contention on a shared machine do not decide the ratio.
    """
    import torch

    from soundwatch.features import create_frontend, run_frontend
    from soundwatch.features.render import render_batch

    seed_image(waves[0])  # warm-up (librosa and matplotlib first-call costs)
    times = []
    for y in waves[:n_seed]:
        t0 = time.perf_counter()
        seed_image(y)
        times.append(time.perf_counter() - t0)
    seed_rate = 1.0 / float(np.median(times))

    fe = create_frontend("logmel_seed").to(device)
    batch = torch.from_numpy(np.stack(waves[:64]))
    times = []
    with torch.inference_mode(), torch_threads(threads):
        render_batch(run_frontend(fe, batch[:8].to(device)), size=(228, 228))  # warm-up
        _sync(device)
        start = time.perf_counter()
        while time.perf_counter() - start < 3.0 or len(times) < 5:
            t0 = time.perf_counter()
            render_batch(run_frontend(fe, batch.to(device)), size=(228, 228)).cpu()
            times.append(time.perf_counter() - t0)
    sw_rate = batch.shape[0] / float(np.median(times))
    return {"seed": seed_rate, "soundwatch": sw_rate}


def bench_extract(paths: list[Path], cache_root: Path, device: str,
                  threads: int = 1) -> dict[str, float]:
    """Clips/s of ``extract`` (load + log-mel) without cache, filling a cache, and hitting it."""
    with torch_threads(threads):
        return _bench_extract(paths, cache_root, device)


def _bench_extract(paths: list[Path], cache_root: Path, device: str) -> dict[str, float]:
    from soundwatch.features import FeatureCache, create_frontend, extract

    fe = create_frontend("logmel").to(device)
    extract(paths[:8], fe)  # warm-up
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    extract(paths, fe, batch_size=32)
    out["load_logmel"] = len(paths) / (time.perf_counter() - t0)
    cache = FeatureCache(cache_root)
    t0 = time.perf_counter()
    extract(paths, fe, cache=cache)
    out["cache_fill"] = len(paths) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    feats = extract(paths, fe, cache=cache)
    out["cache_hit_open"] = len(paths) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    total = sum(float(np.asarray(f).sum()) for f in feats)  # touch every byte
    out["cache_hit_read"] = len(paths) / (time.perf_counter() - t0 + 1e-9)
    assert np.isfinite(total)
    return out


_CHILD = """
import json, sys, threading, time
from pathlib import Path
from soundwatch.features import FeatureCache, create_frontend, extract

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0

paths = [Path(p) for p in json.loads(sys.argv[1])]
use_cache = sys.argv[2] == "1"
fe = create_frontend("logmel")
extract(paths[:2], fe)
base = rss_mb()
peak = [base]
done = threading.Event()
def poll():
    while not done.is_set():
        peak[0] = max(peak[0], rss_mb())
        time.sleep(0.005)
watcher = threading.Thread(target=poll)
watcher.start()
cache = FeatureCache(sys.argv[3]) if use_cache else None
t0 = time.perf_counter()
feats = extract(paths, fe, cache=cache)
dt = time.perf_counter() - t0
done.set()
watcher.join()
peak[0] = max(peak[0], rss_mb())
print(json.dumps({"base_mb": base, "peak_mb": peak[0], "seconds": dt, "n": len(feats)}))
"""


def bench_memory(paths: list[Path], cache_root: Path, use_cache: bool) -> dict[str, float]:
    """Peak RSS (VmRSS polled every 5 ms) of a fresh process featurising every clip on the CPU.

    With a cache the folder is fresh, so every clip is computed, written and memory-mapped.
    """
    root = cache_root / ("mem-cache" if use_cache else "unused")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps([str(p) for p in paths]),
         "1" if use_cache else "0", str(root)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer clips (< 2 minutes)")
    parser.add_argument("--clips", type=int, default=None, help="clips for the memory run")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--device", default="cpu",
                        help="device of the soundwatch path: cpu (default), cuda, auto")
    parser.add_argument("--threads", type=int, default=usable_cores(),
                        help="torch threads of the soundwatch path (default: the usable cores; "
                        "the targets are for 2 cores)")
    args = parser.parse_args()
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    n_mem = args.clips or (300 if args.quick else 2000)
    n_thr = min(n_mem, 200 if args.quick else 1000)
    n_seed = 8 if args.quick else 30

    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="soundwatch-bench-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "wav").mkdir()
        paths = make_clips(tmp_path / "wav", n_mem)
        from soundwatch.audio import load

        waves = [load(p) for p in paths[:64]]
        images = bench_images(waves, n_seed, device, args.threads)
        del waves
        ext = bench_extract(paths[:n_thr], tmp_path / "cache", device, args.threads)
        mem_nocache = bench_memory(paths, tmp_path, use_cache=False)
        mem_cache = bench_memory(paths, tmp_path, use_cache=True)
    wall = time.perf_counter() - wall

    ratio = images["soundwatch"] / images["seed"]
    wave_mb = n_mem * SECONDS * SR * 4 / 2**20
    feat_mb = n_mem * 128 * 313 * 4 / 2**20
    cmd = ".venv/bin/python benchmarks/features.py" + (" --quick" if args.quick else "")
    if args.device != "cpu":
        cmd += f" --device {args.device}"
    lines = [
        "## Features",
        "",
        f"Command: `{cmd}` ({wall:.0f} s, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). "
        f"Machine: {machine()}. "
        f"Soundwatch path on {device} with {args.threads} torch thread(s); the seed path "
        f"one clip at a time, as the seed ran it. Synthetic 10 s 16 kHz PCM-16 clips. "
        f"Load average at start: {load_avg:.1f} (rates fall when other jobs share the CPU).",
        "",
        "| measure | result |",
        "|---|---|",
        f"| seed image path (librosa log-mel + pyplot savefig + PNG decode + resize), "
        f"{n_seed} clips, median | {images['seed']:.1f} clips/s |",
        f"| soundwatch image path (batched `logmel_seed` + `render_batch` 228x228), "
        f"batches of 64, median | {images['soundwatch']:.0f} clips/s |",
        f"| ratio | {ratio:.1f}x |",
        f"| load + log-mel (`extract`, no cache), {n_thr} clips | "
        f"{ext['load_logmel']:.0f} clips/s |",
        f"| cache fill (compute + write .npy), {n_thr} clips | {ext['cache_fill']:.0f} clips/s |",
        f"| cache hit (hash + open memmaps), {n_thr} clips | {ext['cache_hit_open']:.0f} clips/s |",
        f"| cache hit, reading every value | {ext['cache_hit_read']:.0f} clips/s |",
        f"| cache hit vs recompute | {ext['cache_hit_open'] / ext['load_logmel']:.1f}x |",
        f"| RSS growth while featurising {n_mem} clips, no cache (features are kept: "
        f"{feat_mb:.0f} MB; all waveforms would be {wave_mb:.0f} MB) | "
        f"+{mem_nocache['peak_mb'] - mem_nocache['base_mb']:.0f} MB "
        f"(peak {mem_nocache['peak_mb']:.0f} MB) |",
        f"| RSS growth while featurising {n_mem} clips into a fresh cache (memmaps returned) | "
        f"+{mem_cache['peak_mb'] - mem_cache['base_mb']:.0f} MB "
        f"(peak {mem_cache['peak_mb']:.0f} MB) |",
    ]
    table = "\n".join(lines)
    print(table)
    print(f"ratio: {ratio:.1f}x")
    if not args.no_write:
        print(f"written to {write_section('features', table)}")


if __name__ == "__main__":
    main()
