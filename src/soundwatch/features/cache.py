"""On-disk feature cache: one .npy per (file content, front-end config, load parameters)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from soundwatch.atomic import atomic_path, ensure_writable_dir, remove_leftovers, write_json
from soundwatch.errors import ConfigError, OutputError

__all__ = ["FeatureCache", "content_hash", "default_cache_dir", "fingerprint"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_memo: dict[tuple[str, int, int, int, int], str] = {}
_memo_lock = threading.Lock()
_prepared: set[str] = set()
# np.load parses the .npy header with ast.literal_eval, and CPython 3.11.7 (this project's
# Python) raised "SystemError: AST constructor recursion depth mismatch" in the full suite
# when threads parsed at once: headers are read one thread at a time.
_load_lock = threading.Lock()


def _open_memmap(entry: Path) -> np.ndarray:
    with _load_lock:
        return np.load(entry, mmap_mode="r", allow_pickle=False)


def default_cache_dir() -> Path:
    """``platformdirs.user_cache_dir("soundwatch") / "features"``."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("soundwatch")) / "features"


def content_hash(path: str | os.PathLike[str]) -> str:
    """blake2b (128-bit) hex digest of a file's bytes (all of them).

    This is what the feature cache and the score parts are keyed on: a clip whose audio
    changes gets new features and a new score even when its path, size and modification
    time stay the same. The whole file is hashed (about 1 ms for a 10 s clip), not
    a sample of it, so a change anywhere counts. Memoised in-process on ``(path, size,
    mtime_ns, inode, ctime_ns)``, so a file that is rewritten is hashed again.

    Raises:
        OSError: The file cannot be read.
    """
    path = os.fspath(path)
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    with _memo_lock:
        hit = _memo.get(key)
    if hit is not None:
        return hit
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    value = digest.hexdigest()
    with _memo_lock:
        _memo[key] = value
    return value


def fingerprint(path: str | os.PathLike[str]) -> str:
    """``<size>-<content hash>`` of a file, or ``unreadable-<errno>`` (never raises).

    For job keys (which clips a scoring saw): an unreadable file gets a key too, and the
    error is reported where the file is loaded.
    """
    try:
        return f"{os.stat(path).st_size}-{content_hash(path)}"
    except OSError as exc:
        return f"unreadable-{exc.errno}"


class FeatureCache:
    """Features stored once per (file content, front-end config hash, ``sr``, ``channel``).

    Files: ``root/<frontend>-<config hash[:16]>/<content hash>-sr<sr>-ch<channel>.npy``,
    with a ``frontend.json`` per config folder that records the front-end's parameters.
    Entries are written to a temporary file and renamed into place, so concurrent writers
    (threads or processes) never leave a half-written entry; an unreadable entry is
    treated as a miss and rewritten. Hits are read-only memory maps.

    Args:
        root: Cache folder; ``None`` uses :func:`default_cache_dir`.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0
        self._described: set[str] = set()

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.root)!r})"

    @classmethod
    def from_options(cls, cache_dir: str | os.PathLike[str] | None = None,
                     no_cache: bool = False) -> FeatureCache | None:
        """The cache the CLI's ``--cache-dir`` / ``--no-cache`` flags ask for.

        Args:
            cache_dir: Folder; ``None`` for the default user cache folder.
            no_cache: Disable caching (returns ``None``).

        Returns:
            A cache, or ``None`` when disabled.

        Raises:
            ConfigError: ``cache_dir`` exists and is not a folder.
        """
        if no_cache:
            return None
        cache = cls(cache_dir)
        if cache.root.exists() and not cache.root.is_dir():
            raise ConfigError(cache.root, "--cache-dir is not a folder")
        cache.prepare()
        return cache

    def prepare(self) -> FeatureCache:
        """Check that the cache folder can be written and remove killed writers' leftovers.

        Done once per folder and process, before any feature is computed, so a cache
        folder that is a file or read-only fails at once (``error: <folder>: <reason>``).

        Raises:
            OutputError: The folder cannot be made or written.
        """
        key = str(self.root)
        if key in _prepared:
            return self
        if self.root.exists() and not self.root.is_dir():
            raise OutputError(self.root, "feature cache folder (--cache-dir) is a file")
        ensure_writable_dir(self.root, "feature cache folder (--cache-dir)")
        remove_leftovers(self.root)  # only files of dead processes: safe beside live writers
        _prepared.add(key)
        return self

    # -- keys -----------------------------------------------------------------------

    @staticmethod
    def _folder_name(frontend: Any) -> str:
        return f"{frontend.name}-{frontend.config_hash()[:16]}"

    def entry_path(self, path: str | os.PathLike[str], frontend: Any, sr: int | None,
                   channel: int | str = 0) -> Path:
        """Where the features of ``path`` under ``frontend`` are (or would be) stored."""
        digest = content_hash(path)
        chan = str(channel).replace(os.sep, "_")
        return self.root / self._folder_name(frontend) / f"{digest}-sr{sr}-ch{chan}.npy"

    # -- access ---------------------------------------------------------------------

    def get(self, entry: Path) -> np.ndarray | None:
        """The stored array at ``entry`` as a read-only memmap, or ``None`` on a miss."""
        try:
            arr = _open_memmap(entry)
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError, EOFError) as exc:
            log.warning("%s: unreadable cache entry (%s), recomputing", entry, exc)
            self.misses += 1
            return None
        self.hits += 1
        return arr

    def put(self, entry: Path, features: np.ndarray, frontend: Any = None) -> np.ndarray:
        """Store ``features`` at ``entry`` atomically; return the stored copy as a memmap."""
        entry.parent.mkdir(parents=True, exist_ok=True)
        if frontend is not None:
            self._describe(entry.parent, frontend)
        with atomic_path(entry) as tmp:
            np.save(tmp, np.ascontiguousarray(features), allow_pickle=False)
        return _open_memmap(entry)

    def _describe(self, folder: Path, frontend: Any) -> None:
        key = str(folder)
        if key in self._described:
            return
        meta = folder / "frontend.json"
        if not meta.exists():
            with contextlib.suppress(OSError):
                write_json(meta, {"frontend": frontend.name, "config_hash": frontend.config_hash(),
                                  "config": frontend.config_dict()})
        self._described.add(key)

    def clear(self) -> int:
        """Delete every cached entry under :attr:`root`; return the number of files removed."""
        removed = 0
        if not self.root.is_dir():
            return 0
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            for item in folder.iterdir():
                if item.suffix in (".npy", ".json") or ".tmp" in item.name:
                    with contextlib.suppress(OSError):
                        item.unlink()
                        removed += 1
            with contextlib.suppress(OSError):
                folder.rmdir()
        return removed
