"""The seed's pink-noise detection task in labelled folders (``synth pink-noise``)."""

from __future__ import annotations

import logging
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soundwatch.atomic import write_json, write_text
from soundwatch.errors import ConfigError, DatasetError
from soundwatch.synth.augment import add_noise
from soundwatch.synth.devset import check_audio_params, clip_seed
from soundwatch.synth.machines import MACHINE_TYPES, render_machine_clip, sample_attributes
from soundwatch.synth.writer import (
    claim_output,
    release_output,
    resolve_workers,
    write_clips,
    write_wav,
)

__all__ = ["PINK_GENERATOR_VERSION", "parse_snr", "synth_pink_noise"]

log = logging.getLogger(__name__)

PINK_GENERATOR_VERSION = "1"
_TASK_CODE = zlib.crc32(b"pink-noise")
_AUDIO_SUFFIXES = {".wav"}


@dataclass(frozen=True)
class _Item:
    rel_path: str
    split: str
    label: int
    index: int
    seed_key: tuple[int, ...]
    base: str | None
    machine: str | None
    attributes: tuple[tuple[str, str], ...]
    snr_db: float | None


def parse_snr(snr_db: float | str | Sequence[float]) -> tuple[float, float]:
    """Parse ``--snr-db``: one value (``5``) or a range (``0:10``, drawn uniformly per clip).

    Returns:
        ``(low, high)``; equal for a single value.

    Raises:
        ConfigError: Not a number or a ``low:high`` range with ``low <= high``.
    """
    if isinstance(snr_db, str):
        parts = snr_db.split(":")
        if len(parts) not in (1, 2):
            raise ConfigError("--snr-db", f"expected a value or LOW:HIGH, got {snr_db!r}")
        try:
            values = [float(p) for p in parts]
        except ValueError as exc:
            raise ConfigError("--snr-db", f"expected a value or LOW:HIGH, got {snr_db!r}") from exc
    elif isinstance(snr_db, int | float):
        values = [float(snr_db)]
    else:
        values = [float(v) for v in snr_db]
        if len(values) not in (1, 2):
            raise ConfigError("--snr-db", f"expected one or two values, got {len(values)}")
    lo, hi = values[0], values[-1]
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ConfigError("--snr-db", f"need finite LOW <= HIGH, got {lo}:{hi}")
    return lo, hi


def _base_files(base: Path) -> list[Path]:
    if not base.exists():
        raise DatasetError(base, "base folder does not exist")
    if not base.is_dir():
        raise DatasetError(base, "base must be a folder of WAV files")
    files = sorted(p for p in base.rglob("*") if p.suffix.lower() in _AUDIO_SUFFIXES
                   and p.is_file() and not p.name.startswith("."))
    if not files:
        raise DatasetError(base, "no WAV files found (searched recursively)")
    return files


def _plan(n_train: int, n_test: int, snr: tuple[float, float], seed: int,
          base_files: list[Path] | None) -> list[_Item]:
    groups = []
    for s_code, (split, total) in enumerate((("train", n_train), ("test", n_test))):
        n_normal = total // 2
        groups += [(s_code, split, 0, n_normal), (s_code, split, 1, total - n_normal)]
    # base clips: normal and anomaly clips draw from disjoint halves of the base files
    pools: dict[int, list[Path]] = {}
    if base_files is not None:
        order = np.random.default_rng(np.random.SeedSequence([seed, _TASK_CODE])).permutation(
            len(base_files))
        shuffled = [base_files[i] for i in order]
        need = {lab: sum(c for *_, la, c in groups if la == lab) for lab in (0, 1)}
        if len(shuffled) < 2:
            pools = {0: shuffled, 1: shuffled}
            log.warning("only one base file: normal and anomaly clips share it")
        else:
            k = round(len(shuffled) * need[0] / max(1, need[0] + need[1]))
            k = min(max(k, 1), len(shuffled) - 1)
            pools = {0: shuffled[:k], 1: shuffled[k:]}
            for lab in (0, 1):
                if need[lab] > len(pools[lab]):
                    log.warning("%d base files for %d %s clips: some base files are reused "
                                "(with different crops)", len(pools[lab]), need[lab],
                                "normal" if lab == 0 else "anomaly")
    used = {0: 0, 1: 0}
    items = []
    for s_code, split, label, count in groups:
        for index in range(count):
            key = (_TASK_CODE, s_code, label, index)
            rng = np.random.default_rng(clip_seed(seed, key, 0))
            base = machine = None
            attributes: tuple[tuple[str, str], ...] = ()
            if base_files is not None:
                pool = pools[label]
                base = str(pool[used[label] % len(pool)])
                used[label] += 1
            else:
                machine = MACHINE_TYPES[int(rng.integers(len(MACHINE_TYPES)))]
                attributes = tuple(sample_attributes(machine, "source", rng).items())
            level = float(rng.uniform(*snr)) if label else None
            rel = f"{split}/{label}/{split}_{label}_{index:04d}.wav"
            items.append(_Item(rel, split, label, index, key, base, machine, attributes,
                               None if level is None else round(level, 4)))
    return items


def _fit(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Cut ``x`` to ``n`` samples from a random offset, or repeat it when shorter."""
    if x.size > n:
        start = int(rng.integers(0, x.size - n + 1))
        return x[start : start + n]
    if x.size < n:
        x = np.tile(x, -(-n // x.size))
    return x[:n]


def _pink_chunk(chunk: list[_Item], out: str, seed: int, seconds: float, sr: int) -> int:
    """Worker: make and write some clips."""
    from soundwatch.audio import load

    n = int(round(seconds * sr))
    for item in chunk:
        rng = np.random.default_rng(clip_seed(seed, item.seed_key, 1))
        if item.base is not None:
            x = _fit(load(item.base, sr=sr), n, rng)
        else:
            assert item.machine is not None
            x = render_machine_clip(item.machine, "source", dict(item.attributes), None, 0.0,
                                    seconds, sr, rng)
        if item.label:
            assert item.snr_db is not None
            x = add_noise(x, item.snr_db, "pink", rng, sr=sr)
            peak = float(np.max(np.abs(x)))
            if peak > 0.99:  # keep the 16-bit file unclipped; the SNR is unchanged
                x = x * np.float32(0.99 / peak)
        write_wav(Path(out) / item.rel_path, x, sr)
    return len(chunk)


def synth_pink_noise(
    out: str | Path,
    base: str | Path | None = None,
    n_train: int = 400,
    n_test: int = 200,
    snr_db: float | str | Sequence[float] = (0.0, 10.0),
    seconds: float = 10.0,
    sr: int = 16000,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = False,
) -> Path:
    """Write the pink-noise detection task: ``OUT/{train,test}/{0,1}/*.wav``.

    Label 0 (normal) clips are base clips as they are; label 1 (anomaly) clips are other
    base clips with pink noise added at ``snr_db``. Classes are balanced in each split
    (an odd count gives the extra clip to the anomalies).

    Args:
        out: Output folder.
        base: Folder of WAV files (searched recursively; real recordings welcome), cut to
            ``seconds`` from a random offset or repeated when shorter. ``None``: normal
            clips of the synthetic machines, rendered in memory.
        n_train: Training clips (both classes together).
        n_test: Test clips (both classes together).
        snr_db: Pink-noise SNR in dB: a value, a ``(low, high)`` pair or a ``"low:high"``
            string (uniform per clip).
        seconds: Clip length.
        sr: Sample rate.
        seed: Dataset seed.
        workers: Processes (``None``: ``os.cpu_count()``).
        progress: Show a progress bar.

    Returns:
        The output folder.

    Raises:
        ConfigError: Bad parameters, or ``out`` holds a dataset with other parameters.
        DatasetError: ``base`` has no WAV files.
        AudioError: A base file cannot be read.
    """
    out = Path(out)
    for name, value in (("--n-train", n_train), ("--n-test", n_test)):
        if isinstance(value, bool) or int(value) != value or value < 0:
            raise ConfigError(name, f"must be a non-negative integer, got {value!r}")
    if n_train + n_test < 1:
        raise ConfigError("--n-train", "nothing to generate: n-train and n-test are both 0")
    snr = parse_snr(snr_db)
    seconds, sr, seed = check_audio_params(seconds, sr, seed)
    n_workers = resolve_workers(workers)
    base_files = _base_files(Path(base)) if base is not None else None
    params: dict[str, Any] = {
        "generator_version": PINK_GENERATOR_VERSION,
        "base": None if base is None else str(Path(base).resolve()),
        "base_files": None if base_files is None else len(base_files),
        "n_train": int(n_train),
        "n_test": int(n_test),
        "snr_db": list(snr),
        "seconds": seconds,
        "sr": sr,
        "seed": seed,
    }
    claim_output(out, params)
    items = _plan(int(n_train), int(n_test), snr, seed, base_files)
    write_clips(out, items, (out / s / lab for s in ("train", "test") for lab in ("0", "1")),
                int(round(seconds * sr)), sr, _pink_chunk, (seed, seconds, sr), n_workers,
                progress, "synth pink-noise")
    base_root = None if base is None else Path(base)
    lines = ["file_name,split,label,base,snr_db"]
    for it in items:
        if it.base is not None and base_root is not None:
            origin = Path(it.base).relative_to(base_root).as_posix()
        else:
            origin = f"synth:{it.machine}:" + "_".join(f"{k}_{v}" for k, v in it.attributes)
        origin = re.sub(r"[,\n]", "_", origin)
        lines.append(f"{it.rel_path},{it.split},{it.label},{origin},"
                     f"{'' if it.snr_db is None else format(it.snr_db, 'g')}")
    write_text(out / "synth_manifest.csv", "\n".join(lines) + "\n")
    from soundwatch import __version__

    counts = {f"{s}/{lab}": sum(1 for it in items if it.split == s and it.label == lab)
              for s in ("train", "test") for lab in (0, 1)}
    write_json(out / "dataset.json", {
        "generator": "soundwatch.synth.pink_noise",
        "generator_version": PINK_GENERATOR_VERSION,
        "soundwatch_version": __version__,
        "layout": "labelled-folders",
        "labels": {"0": "normal", "1": "anomaly (pink noise added)"},
        "parameters": params,
        "counts": counts,
        "total_clips": len(items),
    })
    release_output(out)
    return out
