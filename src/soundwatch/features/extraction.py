"""Streaming feature extraction: load clips in batches, run a front-end, use the cache."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from soundwatch.audio import load
from soundwatch.errors import AudioError

__all__ = ["CPU_CHUNK_SAMPLES", "extract", "iter_batches", "run_frontend"]

log = logging.getLogger(__name__)

CPU_CHUNK_SAMPLES = 1 << 18
"""Input samples per front-end call on the CPU (see :func:`run_frontend`)."""


def _as_path(item: Any) -> Path:
    path = getattr(item, "path", item)
    return Path(path)


def _device_of(fe: Any) -> Any:
    import torch

    for tensor in (*fe.parameters(), *fe.buffers()):
        return tensor.device
    return torch.device("cpu")


def _ensure_fd_room(needed: int) -> None:
    """Raise the soft open-file limit when many memmaps will be returned.

    CPython's mmap keeps a duplicate file descriptor for each map, so returning thousands
    of cached memmaps needs as many descriptors.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            log.debug("open-file limit raised from %d to %d for cached memmaps", soft, new)
        except (ValueError, OSError):
            log.warning("open-file limit %d may be too low for %d cached features", soft, needed)


def _load_one(path: Path, sr: int | None, channel: int | str, fe: Any = None) -> np.ndarray:
    loader = getattr(fe, "load_clip", None)  # a noise-aware option reads both channels
    return load(path, sr=sr, channel=channel) if loader is None else loader(path, sr, channel)


def iter_batches(
    paths: Sequence[Path], sr: int | None, channel: int | str, batch_size: int, fe: Any = None
) -> Iterator[list[tuple[int, np.ndarray]]]:
    """Yield lists of ``(index, waveform)`` of at most ``batch_size`` clips, loaded ahead.

    One chunk is decoded in a background thread while the caller works on the previous
    one, so at most two chunks of waveforms are in memory.
    """
    chunks = [list(range(i, min(i + batch_size, len(paths))))
              for i in range(0, len(paths), batch_size)]
    if not chunks:
        return

    def load_chunk(indices: list[int]) -> list[tuple[int, np.ndarray]]:
        return [(i, _load_one(paths[i], sr, channel, fe)) for i in indices]

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="soundwatch-load") as pool:
        pending = pool.submit(load_chunk, chunks[0])
        for nxt in chunks[1:]:
            current = pending.result()
            pending = pool.submit(load_chunk, nxt)
            yield current
            del current
        yield pending.result()


def run_frontend(fe: Any, batch: Any) -> Any:
    """``fe(batch)`` for waveforms ``[B, T]``, a few clips at a time on the CPU.

    A 64-clip STFT's intermediates (hundreds of MB) do not fit in any cache; chunks of
    about :data:`CPU_CHUNK_SAMPLES` input samples do, which makes the CPU path 2-3x faster.
    Only front-ends that say so (``cpu_chunks``) are chunked; every clip's features depend
    on that clip alone, so the numbers do not change. The front-end's ``forward`` (what the
    ONNX export traces) never chunks: its callers do, here.
    """
    import torch

    from soundwatch.features.frontends import in_onnx_export

    if (not getattr(fe, "cpu_chunks", False) or batch.device.type != "cpu"
            or batch.dim() != 2 or in_onnx_export()):
        return fe(batch)
    rows = max(1, CPU_CHUNK_SAMPLES // max(1, batch.shape[-1]))
    if rows >= batch.shape[0]:
        return fe(batch)
    return torch.cat([fe(chunk) for chunk in batch.split(rows)])


def _run(fe: Any, waves: list[np.ndarray], device: Any) -> np.ndarray:
    import torch

    batch = torch.from_numpy(np.stack(waves)).to(device)
    with torch.inference_mode():
        out = run_frontend(fe, batch)
    return out.detach().to("cpu", torch.float32).numpy()


def extract(
    clips_or_paths: Sequence[Any],
    fe: Any,
    cache: Any = None,
    sr: int | None = 16000,
    channel: int | str = 0,
    batch_size: int = 32,
    progress: bool = False,
) -> list[np.ndarray]:
    """Compute a front-end's features for many files, streaming, with an optional cache.

    Clips are loaded with :func:`soundwatch.audio.load` ``batch_size`` at a time (the next
    chunk is decoded in a background thread), clips of equal length are stacked into one
    batch and run through the front-end under ``torch.inference_mode`` on the front-end's
    device. Waveforms are never all held at once; with a cache, every returned array is
    a read-only memory map, so memory stays bounded for any number of clips.

    Args:
        clips_or_paths: :class:`~soundwatch.datasets.clip.Clip` objects or paths.
        fe: A :class:`~soundwatch.features.FrontEnd` (move it with ``.to(device)`` first
            to compute on a GPU).
        cache: A :class:`~soundwatch.features.FeatureCache`, or ``None`` for no cache.
        sr: Load sample rate; ``None`` uses the front-end's ``sr``. A rate different from
            ``fe.sr`` is allowed (the seed did so) but logged as a warning.
        channel: Channel to load (index or ``"mean"``); with a noise-aware front-end
            (:class:`~soundwatch.features.noise_aware.NoiseAwareFrontEnd`) the near
            channel, the front-end loading what its option reads (``load_clip``).
        batch_size: Clips per front-end call.
        progress: Show a progress bar (rich) on stderr.

    Returns:
        One float32 array per clip, in input order, of shape ``fe.output_shape(n)``; a
        read-only ``np.memmap`` when it came from (or went into) the cache.

    Raises:
        AudioError: A file cannot be loaded, or its features are not finite (the
            message names it).
    """
    if batch_size < 1:
        from soundwatch.errors import ConfigError

        raise ConfigError("batch_size", f"must be >= 1, got {batch_size}")
    if sr is None:
        sr = fe.sr
    elif sr != fe.sr:
        log.warning("loading at %d Hz for front-end %s that expects %d Hz", sr, fe.name, fe.sr)
    paths = [_as_path(c) for c in clips_or_paths]
    results: list[np.ndarray | None] = [None] * len(paths)
    device = _device_of(fe)

    todo = list(range(len(paths)))
    entries: dict[int, Path] = {}
    if cache is not None:
        if hasattr(cache, "prepare"):
            cache.prepare()  # a read-only or misplaced cache fails before any work
        _ensure_fd_room(len(paths))
        todo = []
        for i, path in enumerate(paths):
            try:
                entries[i] = cache.entry_path(path, fe, sr, channel)
            except OSError as exc:
                raise AudioError(path, exc.strerror or str(exc)) from exc
            hit = cache.get(entries[i])
            if hit is not None:
                results[i] = hit
            else:
                todo.append(i)
        log.info("feature cache %s: %d hits, %d to compute", cache.root,
                 len(paths) - len(todo), len(todo))

    bar = None
    if progress and todo:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task(f"features ({fe.name})", total=len(todo))
    try:
        todo_paths = [paths[i] for i in todo]
        for chunk in iter_batches(todo_paths, sr, channel, batch_size, fe):
            groups: dict[int, list[tuple[int, np.ndarray]]] = defaultdict(list)
            for j, wave in chunk:
                groups[wave.shape[-1]].append((todo[j], wave))
            for items in groups.values():
                out = _run(fe, [w for _, w in items], device)
                for k, (i, _) in enumerate(items):
                    feats = np.ascontiguousarray(out[k])
                    _check_finite(paths[i], feats, fe)
                    if cache is not None:
                        feats = cache.put(entries[i], feats, fe)
                    results[i] = feats
            if bar is not None:
                bar.advance(task, len(chunk))
    finally:
        if bar is not None:
            bar.stop()
    missing = sum(r is None for r in results)
    if missing:  # pragma: no cover - would be a bug above
        raise RuntimeError(f"internal error: {missing} clips without features")
    return [r for r in results if r is not None]


def featurize_signal(signal: np.ndarray, fe: Any, where: str = "signal") -> np.ndarray:
    """Features of one in-memory waveform (at ``fe.sr``), without cache.

    Raises:
        AudioError: The features are not finite (``where`` names the signal).
    """
    device = _device_of(fe)
    feats = _run(fe, [np.asarray(signal, dtype=np.float32)], device)[0]
    _check_finite(where, feats, fe)
    return feats


def _check_finite(where: Any, feats: np.ndarray, fe: Any) -> None:
    """Refuse features with NaN or Inf: finite samples can still overflow a front-end."""
    finite = np.isfinite(feats)
    if not finite.all():
        name = getattr(fe, "name", type(fe).__name__)
        raise AudioError(
            where, f"{int((~finite).sum())} of {feats.size} feature values are NaN or "
            f"infinite after the {name} front-end (samples too large or corrupt?)",
        )

