"""Resumable, parallel, atomic writing of synthetic datasets (16-bit WAV, parameter lock)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from soundwatch.atomic import atomic_path, remove_leftovers, write_json
from soundwatch.errors import ConfigError

__all__ = [
    "LOCK_NAME",
    "chunked",
    "claim_output",
    "is_complete",
    "release_output",
    "remove_stale_temporaries",
    "resolve_workers",
    "run_chunks",
    "to_pcm16",
    "write_clips",
    "write_wav",
]

log = logging.getLogger(__name__)

LOCK_NAME = ".synth-params.json"
"""Written into an output folder while a dataset is being made; holds its parameters."""

T = TypeVar("T")


def to_pcm16(x: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] to int16 (rounded, clipped): what the WAV file will hold."""
    return np.clip(np.rint(np.asarray(x, np.float64) * 32767.0), -32768, 32767).astype(np.int16)


def write_wav(path: Path, x: np.ndarray, sr: int) -> None:
    """Write a 16-bit PCM WAV atomically (the file appears complete or not at all).

    ``x`` is mono (1-D) or ``(frames, channels)``.
    """
    import soundfile as sf

    data = to_pcm16(x)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, sr, format="WAV", subtype="PCM_16")


def is_complete(path: Path, frames: int, sr: int) -> bool:
    """Whether ``path`` is a finished WAV of the expected length and rate (for resuming)."""
    import soundfile as sf

    if not path.is_file():
        return False
    try:
        meta = sf.info(str(path))
    except Exception:  # noqa: BLE001 - any unreadable file is simply redone
        return False
    return meta.frames == frames and meta.samplerate == sr and meta.subtype == "PCM_16"


def remove_stale_temporaries(folders: Iterable[Path]) -> int:
    """Delete temporary files that killed runs left in ``folders`` (not in sub-folders).

    Uses :func:`soundwatch.atomic.remove_leftovers`: only files of processes that are
    gone are removed, so a second writer that is still running keeps its files.
    """
    return len(remove_leftovers(list(folders), recursive=False))


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Pool-worker initialiser: end this worker when the parent process ends.

    On Linux the kernel sends SIGKILL to the worker when its parent dies (also when the
    parent is SIGKILLed), so no orphan keeps writing files into the output folder.
    Elsewhere the worker checks that its parent is alive before each chunk. SIGINT is
    ignored (the parent decides; a Ctrl-C reaches the whole process group) and SIGTERM
    gets its default action.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _guarded(fn: Callable[..., int], parent: int, chunk: Sequence[Any], *args: Any) -> int:
    if os.getppid() != parent:  # orphaned (platforms without PR_SET_PDEATHSIG)
        os._exit(1)
    return fn(chunk, *args)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Kill a pool's worker processes now (on interruption or error: no orphan writers)."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            process.terminate()
        except (OSError, AttributeError, ValueError):  # pragma: no cover - already gone
            pass


def claim_output(out: Path, params: dict[str, Any], dataset_file: str = "dataset.json") -> None:
    """Make sure ``out`` holds nothing, or a dataset (finished or not) with the same parameters.

    Writes the parameter lock file; refuses to mix two datasets in one folder.

    Args:
        out: Output folder (created if needed).
        params: The parameters that decide the files' content.
        dataset_file: Name of the finished-dataset description in ``out``.

    Raises:
        ConfigError: ``out`` is a file, or holds a dataset made with other parameters.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(out, "output exists and is not a folder")
    for name in (dataset_file, LOCK_NAME):
        existing = out / name
        if not existing.is_file():
            continue
        try:
            old = json.loads(existing.read_text(encoding="utf-8"))
            old_params = old.get("parameters", old)
        except (OSError, ValueError, AttributeError):
            old_params = None
        if old_params != json.loads(json.dumps(params)):
            raise ConfigError(
                out,
                f"already holds a dataset made with other parameters ({name}); "
                "choose another folder or delete this one",
            )
    out.mkdir(parents=True, exist_ok=True)
    remove_leftovers(out, recursive=False)  # a killed run's half-written lock or description
    write_json(out / LOCK_NAME, {"parameters": params})


def release_output(out: Path) -> None:
    """Remove the parameter lock once ``dataset.json`` is written."""
    (out / LOCK_NAME).unlink(missing_ok=True)


def resolve_workers(workers: int | None) -> int:
    """Number of worker processes: ``None`` means ``os.cpu_count()``."""
    if workers is None:
        return max(1, os.cpu_count() or 1)
    if int(workers) != workers or workers < 1:
        raise ConfigError("--workers", f"must be a positive integer, got {workers!r}")
    return int(workers)


def run_chunks(
    fn: Callable[..., int],
    chunks: Sequence[Sequence[Any]],
    args: tuple[Any, ...],
    workers: int,
    progress: bool,
    description: str,
) -> int:
    """Run ``fn(chunk, *args) -> clips done`` over chunks, in a process pool when useful.

    Args:
        fn: A module-level function (picklable) returning how many clips it wrote.
        chunks: Work items, each a small list of clips.
        args: Extra arguments passed to every call.
        workers: Processes; 1 runs in this process.
        progress: Show a rich progress bar on stderr.
        description: Progress-bar label.

    Returns:
        Total clips written.
    """
    total = sum(len(c) for c in chunks)
    done = 0
    if workers <= 1 or len(chunks) <= 1:
        bar = _ProgressBar(total, description, progress)
        try:
            for chunk in chunks:
                done += fn(chunk, *args)
                bar.advance(len(chunk))
        finally:
            bar.stop()
        return done
    parent = os.getpid()
    pool = ProcessPoolExecutor(max_workers=min(workers, len(chunks)),
                               initializer=_die_with_parent, initargs=(parent,))
    try:
        # submit first: the workers are forked before the progress bar starts its thread
        futures = {pool.submit(_guarded, fn, parent, chunk, *args): len(chunk)
                   for chunk in chunks}
        pending = set(futures)
        bar = _ProgressBar(total, description, progress)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    done += fut.result()  # re-raises a worker's SoundwatchError as is
                    bar.advance(futures[fut])
        finally:
            bar.stop()
    except BaseException:
        _terminate(pool)  # an interrupted or failed run leaves no worker writing files
        raise
    finally:
        # wait even after terminating: the pool's manager thread then exits here, not at
        # interpreter exit, where it could write to a closed pipe ("Exception ignored ...
        # Bad file descriptor" on stderr after "interrupted (SIGTERM)")
        pool.shutdown(wait=True, cancel_futures=True)
    return done


class _ProgressBar:
    """A rich progress bar on stderr, or nothing when ``enabled`` is false."""

    def __init__(self, total: int, description: str, enabled: bool) -> None:
        self._bar = None
        if not enabled or not total:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TimeRemainingColumn())
        self._bar.start()
        self._task = self._bar.add_task(description, total=total)

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=count)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def chunked(items: Sequence[T], workers: int, max_size: int = 16) -> list[list[T]]:
    """Split work into chunks: about four per worker at least, at most ``max_size`` items."""
    if not items:
        return []
    size = max(1, min(max_size, -(-len(items) // (4 * workers))))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def write_clips(
    out: Path,
    items: Sequence[Any],
    folders: Iterable[Path],
    frames: int,
    sr: int,
    render: Callable[..., int],
    args: tuple[Any, ...],
    workers: int,
    progress: bool,
    description: str,
) -> int:
    """The clip-writing steps every synth writer shares, after :func:`claim_output`.

    Removes dead writers' temporary files from ``folders``, skips the items whose WAV is
    already complete (resuming), and renders the rest with ``render(chunk, str(out), *args)``
    through :func:`run_chunks`.

    Args:
        out: Output folder.
        items: Planned clips; each has a ``rel_path`` under ``out``.
        folders: The folders the clips go into (searched for stale temporaries).
        frames: Frames of a finished clip.
        sr: Sample rate of a finished clip.
        render: Module-level worker function (picklable).
        args: Its arguments after the output folder.
        workers: Processes (already resolved by :func:`resolve_workers`).
        progress: Show a progress bar.
        description: Progress-bar label.

    Returns:
        Clips written now.
    """
    remove_stale_temporaries(folders)
    pending = [it for it in items if not is_complete(out / it.rel_path, frames, sr)]
    log.info("%d clips planned, %d already complete, %d to write", len(items),
             len(items) - len(pending), len(pending))
    return run_chunks(render, chunked(pending, workers), (str(out), *args), workers, progress,
                      description)
