"""Atomic file writes: write to a temporary file in the same folder, then rename."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "TEMP_PATTERN",
    "atomic_open",
    "atomic_path",
    "ensure_writable_dir",
    "remove_leftovers",
    "write_json",
    "write_text",
]

log = logging.getLogger(__name__)

TEMP_PATTERN = re.compile(r"^\..+?\.(?:(?P<pid>\d+)\.)?[A-Za-z0-9_]{8}\.tmp(?:\.[A-Za-z0-9]+)?$")
"""Names of the temporary files this module makes: ``.<name>.<pid>.<random>.tmp[.<suffix>]``.

The writer's process id is part of the name, so :func:`remove_leftovers` can tell the
files of a killed process (safe to delete) from those of a live writer."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(tmp: str, path: Path) -> None:
    """Give the temporary file the mode a plain ``open`` would have, then rename it."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def _with_path(exc: BaseException, path: Path) -> BaseException:
    """An OSError that names ``path`` when ``exc`` names no file (ENOSPC from ``write``).

    A ``RuntimeError`` raised by a writer (``torch.save``: ``unexpected pos``) while the
    disk is full becomes ``OSError(ENOSPC)`` too, so the CLI can say what happened.
    """
    if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
        return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))
    if isinstance(exc, RuntimeError) and _disk_full(path.parent):
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return exc


@contextlib.contextmanager
def _published(tmp: str, path: Path) -> Iterator[None]:
    """Rename ``tmp`` onto ``path`` when the block succeeds; else delete it and re-raise.

    The error re-raised names ``path`` where the operating system named no file
    (:func:`_with_path`).
    """
    try:
        yield
        _publish(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        mapped = _with_path(exc, path)
        if mapped is not exc:
            raise mapped from exc
        raise


def _disk_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free == 0
    except OSError:
        return False


def _mkstemp(path: Path, suffix: str) -> tuple[int, str]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        blocker = next((p for p in (path.parent, *path.parent.parents)
                        if p.exists() and not p.is_dir()), path.parent)
        raise NotADirectoryError(
            errno.ENOTDIR, "is a file, not a folder (a folder is needed there)",
            str(blocker),
        ) from exc
    try:
        return tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=suffix,
                                dir=path.parent)
    except OSError as exc:  # name the folder that refused, not the temporary file's name
        code = exc.errno or errno.EIO
        raise OSError(code, exc.strerror or os.strerror(code), str(path.parent)) from exc


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` and rename it onto ``path`` on success.

    Readers never see a half-written file: if the block raises (or the process is
    killed), ``path`` keeps its old content or stays absent. A killed process leaves its
    temporary file behind; :func:`remove_leftovers` deletes it on the next run.

    Args:
        path: Final destination.
        mode: ``"w"`` (text) or ``"wb"`` (binary).
        **kwargs: Passed to :func:`open` (``encoding``, ``newline``...). Text files get
            ``errors="surrogateescape"`` unless told otherwise, so that the lone
            surrogates Python uses for non-UTF-8 bytes in file names are written as the
            original bytes instead of failing with ``UnicodeEncodeError``.

    Yields:
        The open temporary file.

    Raises:
        OSError: The folder cannot be made or written (the error names ``path`` even
            when the operating system named no file, as for a full disk).
    """
    path = Path(path)
    if "b" not in mode:  # file names with non-UTF-8 bytes are written back as those bytes
        kwargs.setdefault("errors", "surrogateescape")
    fd, tmp = _mkstemp(path, ".tmp")
    with _published(tmp, path), os.fdopen(fd, mode, **kwargs) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Give a temporary path beside ``path`` to a writer that wants a file name.

    For libraries that write by name (soundfile, matplotlib, torch.save): write to the
    yielded path; it is renamed onto ``path`` when the block succeeds.

    Args:
        path: Final destination. Its suffix is kept on the temporary name so that
            writers that choose a format by suffix still work.

    Yields:
        The temporary path to write to.

    Raises:
        OSError: As for :func:`atomic_open`.
    """
    path = Path(path)
    fd, tmp = _mkstemp(path.with_name(path.stem), f".tmp{path.suffix}")
    os.close(fd)
    with _published(tmp, path):
        yield Path(tmp)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8; lone surrogates from file names kept)."""
    with atomic_open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as handle:
        handle.write(text)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


def remove_leftovers(
    folders: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = True,
    stale_s: float = 3600.0,
) -> list[Path]:
    """Delete the temporary files that killed writers left in some folders.

    A temporary file (see :data:`TEMP_PATTERN`) is removed when the process that made it
    is gone; one without a process id in its name (older versions) when it is older than
    ``stale_s``. Files of live writers (this process included) are kept, so this is safe
    in folders that other processes write into (the feature cache).

    Args:
        folders: A folder or several; missing ones are ignored.
        recursive: Look into sub-folders too.
        stale_s: Age after which a temporary file without a process id is removed.

    Returns:
        The files removed.
    """
    if isinstance(folders, str | os.PathLike):
        folders = [folders]
    removed: list[Path] = []
    now = time.time()
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            continue
        candidates = root.rglob(".*tmp*") if recursive else root.glob(".*tmp*")
        for item in candidates:
            match = TEMP_PATTERN.match(item.name)
            if match is None:
                continue
            try:
                if not item.is_file() or item.is_symlink():
                    continue
                pid = match.group("pid")
                if pid is not None and _alive(int(pid)):
                    continue
                if pid is None and now - item.stat().st_mtime < stale_s:
                    continue
                item.unlink()
            except OSError:
                continue
            removed.append(item)
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted run", len(removed))
    return removed


def ensure_writable_dir(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Make ``path`` (and its parents) a folder and check that files can be created in it.

    Called before expensive work, so that a wrong ``--out`` or ``--cache-dir`` fails at
    once rather than after an hour of scoring.

    Args:
        path: The folder.
        what: What the folder is for, in the error message.

    Returns:
        The folder.

    Raises:
        OutputError: A path component is a file, the folder is read-only, the disk is
            full... (the message names the path and the reason).
    """
    from soundwatch.errors import OutputError

    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputError(folder, f"{what} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = _mkstemp(folder / ".write-test", ".tmp")
        os.close(fd)
        os.unlink(tmp)
    except FileExistsError as exc:
        raise OutputError(exc.filename or folder, f"{what}: a file is in the way") from exc
    except NotADirectoryError as exc:
        raise OutputError(folder, f"{what}: a parent path is a file ({exc.strerror})") from exc
    except OSError as exc:
        raise OutputError(exc.filename or folder,
                          f"cannot write into the {what} ({exc.strerror or exc})") from exc
    return folder
