"""The run folder: where a training run keeps its config, detectors, logs, scores and provenance."""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from soundwatch.atomic import remove_leftovers, write_json, write_text
from soundwatch.config import RunConfig, load_config
from soundwatch.datasets.clip import Clip
from soundwatch.errors import ConfigError, DetectorError, OutputError

__all__ = [
    "LIBRARIES",
    "LOCK_NAME",
    "Run",
    "added_normals",
    "default_run_name",
    "git_commit",
    "git_dirty",
    "library_versions",
]

log = logging.getLogger(__name__)

LIBRARIES = (
    "numpy",
    "scipy",
    "torch",
    "lightning",
    "scikit-learn",
    "soundfile",
    "soxr",
    "librosa",
    "nnAudio",
    "pandas",
    "matplotlib",
)
"""Distributions whose versions ``run.json`` records (read from metadata, never imported)."""


LOCK_NAME = ".lock"
"""The file a command holds an exclusive ``flock`` on while it writes into a run folder."""

_HELD: dict[str, list[int]] = {}
"""Run folders this process holds the lock of: real path -> ``[fd, users]``."""
_HELD_LOCK = threading.Lock()


def _acquire(root: Path) -> str:
    """Take the run folder's lock (shared by every :class:`Run` of this process)."""
    key = os.path.realpath(root)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, but still clean up
        remove_leftovers(root)
        return key
    with _HELD_LOCK:
        if key in _HELD:
            _HELD[key][1] += 1
            return key
        path = root / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise OutputError(
                root, f"cannot write into the run folder ({exc.strerror or exc})"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                # a file system without locks (some network mounts): carry on unlocked
                log.warning("%s: cannot lock the run folder (%s); not protected against "
                            "a second command writing into it", root, exc.strerror or exc)
                _HELD[key] = [fd, 1]
                return key
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = f" (process {int(os.pread(fd, 32, 0).decode().strip())})"
            os.close(fd)
            raise ConfigError(
                root,
                f"another soundwatch command is writing into this run folder{holder}; "
                "wait for it to finish or choose another --out",
            ) from exc
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _HELD[key] = [fd, 1]
    removed = remove_leftovers(root)  # we hold the lock: no other command writes here
    if removed:
        log.info("%s: removed %d temporary file(s) of an interrupted command", root, len(removed))
    return key


def _release(key: str) -> None:
    with _HELD_LOCK:  # (a key that was never held, on platforms without fcntl: nothing)
        held = _HELD.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] <= 0:
            del _HELD[key]
            with contextlib.suppress(OSError):
                os.close(held[0])  # closing the descriptor drops the flock


def file_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Size, line count and blake2b digest of a file soundwatch wrote (for ``run.json``)."""
    data = Path(path).read_bytes()
    return {"bytes": len(data), "lines": data.count(b"\n"),
            "blake2b": hashlib.blake2b(data, digest_size=16).hexdigest()}


def library_versions(names: Iterable[str] = LIBRARIES) -> dict[str, str | None]:
    """Installed versions of some distributions (``None`` for a missing one).

    Reads package metadata only, so nothing heavy (torch) gets imported.
    """
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit(path: str | os.PathLike[str] | None = None) -> str | None:
    """The commit hash of the git checkout that tracks ``path`` (default: this module).

    Returns ``None`` when the file is not tracked by a git checkout (an installed wheel,
    even inside somebody else's repository), the checkout has no commit yet, or git is
    not installed.
    """
    file = Path(path) if path is not None else Path(__file__).resolve()
    folder = file if file.is_dir() else file.parent
    tracked = _git(folder, "ls-files", "--error-unmatch", "--", str(file))
    if tracked is None or tracked.returncode != 0:
        return None
    head = _git(folder, "rev-parse", "--verify", "-q", "HEAD")
    if head is None or head.returncode != 0 or not head.stdout.strip():
        return None
    return head.stdout.strip()


def git_dirty(path: str | os.PathLike[str] | None = None) -> bool | None:
    """Whether the checkout holding ``path`` has uncommitted changes to tracked files.

    ``None`` when :func:`git_commit` is ``None``.
    """
    if git_commit(path) is None:
        return None
    file = Path(path) if path is not None else Path(__file__).resolve()
    folder = file if file.is_dir() else file.parent
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    if status is None or status.returncode != 0:
        return None
    return bool(status.stdout.strip())


def default_run_name(detector: str, now: _dt.datetime | None = None) -> str:
    """``<detector>-<YYYYmmdd-HHMMSS>``, the default name of a new run folder."""
    now = now or _dt.datetime.now()
    return f"{detector}-{now.strftime('%Y%m%d-%H%M%S')}"


def _now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).astimezone().isoformat(timespec="seconds")


class Run:
    """A run folder on disk.

    Files::

        <root>/
          config.yaml              resolved RunConfig
          run.json                 provenance: seed, git commit, versions, step times, skipped files
          detector/<machine>/      one saved detector per machine type
          train_log/<machine>.csv  per-epoch training log (networks)
          scores/train_scores.csv  training clips' scores (for the gamma threshold)
          scores/<name>/           one folder per scoring, never overwritten: scores.csv
                                   (+ DCASE CSVs, window series, explanations) and its
                                   evaluation (metrics.json, results.csv, plots/, report.html)

    Create one with :meth:`create` or open an existing one with :meth:`open`. Every write
    is atomic; ``run.json`` is rewritten after each recorded step, so an interrupted
    run keeps the record of what it finished.

    Args:
        root: The run folder.
        info: The content of ``run.json``.
    """

    def __init__(self, root: str | os.PathLike[str], info: dict[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.info: dict[str, Any] = info if info is not None else {}
        self._lock_key: str | None = None
        self._finalizer: weakref.finalize | None = None

    # ------------------------------------------------------------------ lock
    def lock(self) -> Run:
        """Take the exclusive lock on the run folder (``<root>/.lock``, ``fcntl.flock``).

        Every write through this object takes it first (``create``, ``save_info``...), so
        a second command writing into the same folder fails at once instead of mixing
        its files with the first one's. The lock is held until :meth:`close`, until the
        object is garbage-collected or until the process ends (also when it is killed:
        the kernel drops it). Runs of one process share it. Taking it also removes the
        temporary files that killed commands left in the folder.

        Returns:
            ``self``.

        Raises:
            ConfigError: Another process holds the lock.
            OutputError: The folder cannot be written (read-only, a file in the way).
        """
        if self._lock_key is None:
            self._lock_key = _acquire(self.root)
            self._finalizer = weakref.finalize(self, _release, self._lock_key)
        return self

    def close(self) -> None:
        """Release the run folder's lock (if this object holds it)."""
        if self._finalizer is not None:
            self._finalizer()
        self._lock_key = None
        self._finalizer = None

    @property
    def locked(self) -> bool:
        """Whether this object holds the run folder's lock."""
        return self._lock_key is not None

    def __repr__(self) -> str:
        return f"Run({str(self.root)!r})"

    # ------------------------------------------------------------------ paths
    @property
    def config_path(self) -> Path:
        """``config.yaml``."""
        return self.root / "config.yaml"

    @property
    def info_path(self) -> Path:
        """``run.json``."""
        return self.root / "run.json"

    @property
    def detectors_dir(self) -> Path:
        """``detector/`` (one sub-folder per machine type)."""
        return self.root / "detector"

    def detector_dir(self, machine: str) -> Path:
        """``detector/<machine>/``."""
        return self.detectors_dir / machine

    @property
    def train_log_dir(self) -> Path:
        """``train_log/``."""
        return self.root / "train_log"

    def train_log_path(self, machine: str) -> Path:
        """``train_log/<machine>.csv``."""
        return self.train_log_dir / f"{machine}.csv"

    @property
    def scores_dir(self) -> Path:
        """``scores/``."""
        return self.root / "scores"

    def scorings(self) -> list[Path]:
        """Folders of finished scorings (``scores/<name>/scores.csv``), oldest first.

        Order: as recorded in ``run.json`` (``scorings``), then by modification time; a
        run scored by an older version (``scores/scores.csv``) gives ``scores/`` itself.
        """
        if not self.scores_dir.is_dir():
            return []
        recorded = [str(k) for k in (self.info.get("scorings") or {})]
        found = [p for p in self.scores_dir.iterdir()
                 if p.is_dir() and (p / "scores.csv").is_file()]
        rank = {name: i for i, name in enumerate(recorded)}
        found.sort(key=lambda p: (rank.get(p.name, -1), p.stat().st_mtime_ns, p.name))
        if (self.scores_dir / "scores.csv").is_file():
            found.insert(0, self.scores_dir)
        return found

    @property
    def latest_scores_dir(self) -> Path | None:
        """The newest finished scoring's folder (see :meth:`scorings`), or ``None``."""
        found = self.scorings()
        return found[-1] if found else None

    @property
    def scores_path(self) -> Path:
        """The newest scoring's ``scores.csv`` (``scores/scores.csv`` when none yet)."""
        latest = self.latest_scores_dir
        return (latest or self.scores_dir) / "scores.csv"

    @property
    def train_scores_path(self) -> Path:
        """``scores/train_scores.csv`` (training clips)."""
        return self.scores_dir / "train_scores.csv"

    @property
    def metrics_path(self) -> Path:
        """``metrics.json`` (evaluation)."""
        return self.root / "metrics.json"

    @property
    def plots_dir(self) -> Path:
        """``plots/`` (evaluation)."""
        return self.root / "plots"

    @property
    def report_path(self) -> Path:
        """``report.html`` (evaluation)."""
        return self.root / "report.html"

    # ------------------------------------------------------------- lifecycle
    @classmethod
    def create(
        cls,
        config: RunConfig,
        root: str | os.PathLike[str] | None = None,
        *,
        runs_dir: str | os.PathLike[str] = "runs",
        resume: bool = False,
        command: list[str] | None = None,
    ) -> Run:
        """Make a new run folder (or reopen one to resume) and write ``config.yaml`` + ``run.json``.

        Args:
            config: The resolved config.
            root: The folder; default ``<runs_dir>/<detector>-<timestamp>``.
            runs_dir: Parent of the default folder.
            resume: Reuse an existing folder that holds a run of the same detector
                (its ``run.json`` is kept and extended).
            command: The command line to record (default ``sys.argv``).

        Returns:
            The run.

        Raises:
            ConfigError: If ``root`` is a file, or already holds a run and ``resume`` is
                false, or holds a run of another detector.
        """
        if root is None:
            root = Path(runs_dir) / default_run_name(config.detector)
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise OutputError(root, "run folder path is a file")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(exc.filename or root, f"cannot make the run folder "
                              f"({exc.strerror or exc})") from exc
        holder = cls(root).lock()  # before looking: two commands racing get one winner
        existing = root / "run.json"
        if (root / "config.yaml").exists() or existing.exists():
            if not resume:
                raise ConfigError(
                    root, "run folder already holds a run (use --resume or another --out)"
                )
            old = cls.open(root, need_detector=False)
            old.lock()
            holder.close()
            old_cfg = old.config()
            if old_cfg.detector != config.detector:
                raise ConfigError(
                    root,
                    f"cannot resume: run is {old_cfg.detector!r}, asked for {config.detector!r}",
                )
            if old_cfg.channel != config.channel:  # one channel per run: its config says which
                raise ConfigError(
                    root, f"cannot resume: run reads channel {old_cfg.channel}, asked for "
                    f"{config.channel} (--channel)",
                )
            if old_cfg.params != config.params or old_cfg.seed != config.seed:
                log.warning(
                    "%s: resuming with changed params or seed; finished machines keep the old ones",
                    root,
                )
            old.write_config(config)
            old.info.setdefault("resumed", []).append(_now_iso())
            old.save_info()
            return old
        from soundwatch import __version__

        info = {
            "soundwatch_version": __version__,
            "created": _now_iso(),
            "command": list(sys.argv if command is None else command),
            "detector": config.detector,
            "seed": config.seed,
            "device": config.device,
            "git_commit": git_commit(),
            "git_dirty": git_dirty(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "libraries": library_versions(),
            "steps": {},
            "wall_times": {},
            "machines": {},
            "skipped": [],
        }
        run = cls(root, info).lock()
        holder.close()
        run.write_config(config)
        run.save_info()
        log.info("created run folder %s", root)
        return run

    @classmethod
    def open(cls, root: str | os.PathLike[str], *, need_detector: bool = True) -> Run:
        """Open an existing run folder.

        Args:
            root: The folder.
            need_detector: Require at least one trained detector in ``detector/``.

        Raises:
            ConfigError: The folder or its ``config.yaml`` is missing, or ``run.json`` is
                not valid JSON.
            DetectorError: ``need_detector`` and no trained detector in the folder.
        """
        root = Path(root)
        if not root.is_dir():
            raise ConfigError(root, "no such run folder")
        if not (root / "config.yaml").is_file():
            raise ConfigError(root, "not a run folder (no config.yaml)")
        info: dict[str, Any] = {}
        info_path = root / "run.json"
        if info_path.is_file():
            try:
                info = json.loads(info_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(info_path, f"unreadable run.json ({exc})") from exc
            if not isinstance(info, dict):
                raise ConfigError(info_path, "run.json must hold a JSON object")
        run = cls(root, info)
        if need_detector:
            run.check_detectors()
            if not run.machines():
                raise DetectorError(
                    root, "no trained detector in the run folder (detector/ is empty)"
                )
        return run

    def check_detectors(self) -> None:
        """Refuse a run folder whose saved detectors are incomplete.

        A ``detector/<machine>/`` folder without its ``config.json`` (written last, so
        it marks a finished detector), or a machine that ``run.json`` records as trained
        but whose folder is gone, would otherwise make scoring skip that machine
        silently.

        Raises:
            DetectorError: Naming the missing file or folder.
        """
        folder = self.detectors_dir
        present = set()
        if folder.is_dir():
            for sub in sorted(folder.iterdir()):
                if sub.name.startswith(".") or not sub.is_dir():
                    continue
                present.add(sub.name)
                if not (sub / "config.json").is_file():
                    raise DetectorError(
                        sub / "config.json",
                        f"missing: the saved detector of {sub.name!r} is incomplete "
                        "(train that machine again with --resume, or delete its folder)",
                    )
        recorded = self.info.get("machines", {})
        if isinstance(recorded, dict):
            for machine in sorted(recorded):
                if machine not in present:
                    raise DetectorError(
                        self.detector_dir(machine),
                        "missing: run.json records this machine as trained but its saved "
                        "detector is gone",
                    )

    # ---------------------------------------------------------------- config
    def config(self) -> RunConfig:
        """The run's resolved config (``config.yaml``)."""
        return load_config(self.config_path)

    def write_config(self, config: RunConfig) -> None:
        """Write ``config.yaml`` atomically (under the run folder's lock)."""
        self.lock()
        write_text(self.config_path, config.to_yaml())

    # -------------------------------------------------------------- machines
    def machines(self) -> list[str]:
        """Machine types with a saved detector (``detector/<m>/config.json`` present), sorted."""
        if not self.detectors_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.detectors_dir.iterdir()
            if p.is_dir() and (p / "config.json").is_file()
        )

    def has_detector(self, machine: str) -> bool:
        """Whether ``detector/<machine>/`` holds a saved detector."""
        return (self.detector_dir(machine) / "config.json").is_file()

    def detector_fingerprint(self, machine: str) -> str:
        """A digest of every file of ``detector/<machine>/`` (names, sizes, contents).

        Keys the score parts: a detector trained again (even into the same folder, with
        the same file sizes) invalidates the scores made with the old one.
        """
        from soundwatch.features.cache import fingerprint

        digest = hashlib.blake2b(digest_size=16)
        folder = self.detector_dir(machine)
        if folder.is_dir():
            files = (p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
            for item in sorted(files):
                rel = item.relative_to(folder).as_posix()
                digest.update(f"{rel}\t{fingerprint(item)}\n".encode("utf-8", "surrogateescape"))
        return digest.hexdigest()

    def channel(self) -> int | str:
        """The audio channel the run trained on (``config.yaml``; ``"mean"``: mixed down)."""
        return self.config().channel

    # -------------------------------------------------------------- run.json
    def save_info(self) -> None:
        """Write ``run.json`` atomically (under the run folder's lock).

        Records the size, line count and digest of the scores tables written so far
        (``outputs``), so that :meth:`check_output` can tell a cut or altered file.
        """
        self.lock()
        self._record_outputs()
        write_json(self.info_path, self.info)

    def _output_files(self) -> list[Path]:
        """The scores tables of this run: training scores and every scoring's table."""
        files = [self.train_scores_path, self.scores_dir / "scores.csv"]
        for name in self.info.get("scored") or {}:  # output folders as given (--out)
            files.append(Path(name) / "scores.csv")
        for name in self.info.get("scorings") or {}:  # names under scores/, or absolute
            folder = Path(name) if Path(name).is_absolute() else self.scores_dir / name
            files.append(folder / "scores.csv")
        return list(dict.fromkeys(files))

    def _record_outputs(self) -> None:
        records = self.info.setdefault("outputs", {})
        for path in self._output_files():
            key = self._output_key(path)
            try:
                stat = path.stat()
            except OSError:
                records.pop(key, None)
                continue
            old = records.get(key)
            if old and old.get("mtime_ns") == stat.st_mtime_ns and old.get("bytes") == stat.st_size:
                continue
            with contextlib.suppress(OSError):
                records[key] = {**file_record(path), "mtime_ns": stat.st_mtime_ns}

    def _output_key(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path.resolve())

    def check_output(self, path: str | os.PathLike[str]) -> None:
        """Check a scores table against what ``run.json`` recorded when it was written.

        Raises:
            ConfigError: The file is shorter or longer than recorded, or its content
                changed (a copy cut mid-row, a disk that filled up...).
        """
        path = Path(path)
        record = self.info.get("outputs", {}).get(self._output_key(path))
        if not record or not path.is_file():
            return
        now = file_record(path)
        if now["bytes"] != record.get("bytes") or now["blake2b"] != record.get("blake2b"):
            raise ConfigError(
                path,
                f"changed or cut since soundwatch wrote it ({now['bytes']} bytes, "
                f"{now['lines']} lines; recorded {record.get('bytes')} bytes, "
                f"{record.get('lines')} lines): score again",
            )

    def record_step(self, name: str, seconds: float, **extra: Any) -> None:
        """Record the wall time of a step (``"train/fan"``, ``"score/pump"``...) and save.

        ``steps[name]`` gets ``wall_s``, ``finished`` and the ``extra`` facts;
        ``wall_times[name]`` the seconds alone (a flat table for reports).
        """
        entry = {"wall_s": round(float(seconds), 3), "finished": _now_iso()}
        entry.update(extra)
        self.info.setdefault("steps", {})[name] = entry
        self.info.setdefault("wall_times", {})[name] = entry["wall_s"]  # flat view for reports
        self.save_info()

    @contextlib.contextmanager
    def step(self, name: str, **extra: Any) -> Iterator[dict[str, Any]]:
        """Time a block and record it as a step when it succeeds.

        Yields:
            A dict the block may fill with extra facts to record (clip counts...).
        """
        facts: dict[str, Any] = dict(extra)
        start = time.perf_counter()
        yield facts
        self.record_step(name, time.perf_counter() - start, **facts)

    def add_skipped(self, items: Iterable[Mapping[str, Any]], step: str) -> None:
        """Record files skipped as unreadable (``{"path", "reason"}`` each) and save.

        A file already recorded for the same step is not duplicated.
        """
        skipped = self.info.setdefault("skipped", [])
        seen = {(s.get("path"), s.get("step")) for s in skipped}
        for item in items:
            entry = {"path": str(item["path"]), "reason": str(item["reason"]), "step": step}
            if (entry["path"], step) not in seen:
                skipped.append(entry)
                seen.add((entry["path"], step))
        self.save_info()

    def set_machine_info(self, machine: str, **facts: Any) -> None:
        """Record facts about one machine's training (clip counts...) and save."""
        self.info.setdefault("machines", {}).setdefault(machine, {}).update(facts)
        self.save_info()


def added_normals(run: Run, machine: str) -> list[Clip]:
    """The clips added to a machine's normal data by earlier feedback (oldest first).

    Args:
        run: A :class:`Run`.
        machine: A machine type of the run.

    Returns:
        :class:`~soundwatch.datasets.clip.Clip` objects (split ``train``, label 0).
    """
    out = []
    for change in run.info.get("changes") or []:
        if change.get("kind") != "add-normal" or change.get("machine") != machine:
            continue
        for item in change.get("files") or []:
            path = Path(run.root) / item["stored"]
            out.append(Clip(path=path, machine=machine, split="train", label=0,
                            layout="added-normal"))
    return out
