"""``soundwatch download``: fetch a public data set's archives, verify them, unpack them.

pooch does the fetching (its checksum check, and a temporary file moved into place only
when the checksum matches); :class:`ResumingDownloader` is the pooch downloader that adds
what pooch lacks: resuming an interrupted download with an HTTP ``Range`` request from a
``.part`` file, a size check and a progress bar. Archives are unpacked into a temporary
folder beside the target and moved into place member by member only once every member
was extracted and its CRC checked, so an interrupted, corrupt or disk-full run leaves no
half-written data set. A marker per archive makes reruns skip finished archives.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soundwatch.datasets.sources import SOURCES, Archive, DatasetSource
from soundwatch.errors import ConfigError, DatasetError

__all__ = [
    "BASE_URL_ENV",
    "DownloadResult",
    "ResumingDownloader",
    "archive_url",
    "describe_sources",
    "download_dataset",
    "select_archives",
]

log = logging.getLogger(__name__)

BASE_URL_ENV = "SOUNDWATCH_DOWNLOAD_URL"
"""Environment variable: a mirror to download from instead of the official records.

The archive ``FILE`` of data set ``NAME`` is then fetched from ``<base>/NAME/FILE``.
"""

MARKER_DIR = ".soundwatch-download"
"""Folder (inside the data set's folder) of the markers of unpacked archives."""

ARCHIVE_DIR = "archives"
"""Folder (under ``--dir``) where archives are downloaded before unpacking."""

_CHUNK = 1 << 16
_INSTALL_HINT = "needs the download extra: pip install 'soundwatch[download]'"


def _write_chunk(handle: Any, data: bytes) -> None:
    """Write one downloaded chunk (a seam for the tests' full-disk simulation)."""
    handle.write(data)


def _disk_error(where: Path, exc: OSError, what: str) -> DatasetError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DatasetError(where, f"no space left on the device while {what}; free some space "
                            "and run the same command again (it resumes)")
    return DatasetError(where, f"cannot write while {what}: {exc.strerror or exc}")


class ResumingDownloader:
    """A pooch downloader that resumes from a ``.part`` file and checks the size.

    Args:
        part: The partial file kept between runs (beside the final archive).
        size: Expected size in bytes (``None``: the server's ``Content-Length``).
        progress: Show a rich progress bar on stderr.
        timeout: Seconds to wait for the server.
    """

    def __init__(self, part: Path, size: int | None = None, progress: bool = False,
                 timeout: float = 60.0) -> None:
        self.part = Path(part)
        self.size = size
        self.progress = progress
        self.timeout = timeout

    def __call__(self, url: str, output_file: str | Any, pooch: Any = None,
                 check_only: bool = False) -> bool | None:
        """Fetch ``url`` into ``output_file`` (a path; pooch hands a temporary one)."""
        import requests

        if check_only:
            return True
        have = self.part.stat().st_size if self.part.is_file() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with requests.get(url, headers=headers, stream=True, timeout=self.timeout) as resp:
                if resp.status_code == 416 and have:  # nothing left to fetch
                    total = have
                else:
                    if resp.status_code == 404:
                        raise DatasetError(url, "not found on the server (404)")
                    resp.raise_for_status()
                    if have and resp.status_code != 206:  # the server ignored the range
                        have = 0
                    length = resp.headers.get("Content-Length")
                    total = have + int(length) if length and length.isdigit() else None
                    self._receive(resp, have, total)
                    total = total if total is not None else self.part.stat().st_size
        except requests.RequestException as exc:
            got = self.part.stat().st_size if self.part.is_file() else 0
            raise DatasetError(url, f"download interrupted after {got} bytes ({exc}); run the "
                               "same command again to resume") from exc
        got = self.part.stat().st_size
        expected = self.size if self.size is not None else total
        if expected is not None and got != expected:
            if got > expected:
                self.part.unlink(missing_ok=True)
                raise DatasetError(url, f"received {got} bytes, expected {expected}; the "
                                   "partial file was removed, run the command again")
            raise DatasetError(url, f"download incomplete: {got} of {expected} bytes; run the "
                               "same command again to resume")
        shutil.move(str(self.part), str(output_file))
        return None

    def _receive(self, resp: Any, have: int, total: int | None) -> None:
        import requests

        bar = _Bar(self.progress, self.part.name.removesuffix(".part"), total, have)
        try:
            with open(self.part, "ab" if have else "wb") as handle:
                for chunk in resp.iter_content(_CHUNK):
                    if chunk:
                        _write_chunk(handle, chunk)
                        bar.advance(len(chunk))
        except requests.RequestException:  # an OSError too: the caller reports it
            raise
        except OSError as exc:
            raise _disk_error(self.part, exc, "downloading") from exc
        finally:
            bar.stop()


class _Bar:
    """A rich download bar on stderr, or nothing."""

    def __init__(self, enabled: bool, label: str, total: int | None, done: int) -> None:
        self._bar = None
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                             TransferSpeedColumn(), TimeRemainingColumn())
        self._bar.start()
        self._task = self._bar.add_task(label, total=total, completed=done)

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=n)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@dataclass
class DownloadResult:
    """What :func:`download_dataset` did.

    Attributes:
        source: The data set.
        folder: Where it was unpacked (point ``soundwatch inspect`` / ``train`` here).
        unpacked: Archives downloaded and unpacked by this run.
        skipped: Archives already unpacked by an earlier run.
    """

    source: DatasetSource
    folder: Path
    unpacked: list[str]
    skipped: list[str]


def archive_url(source: DatasetSource, archive: Archive, base_url: str | None = None) -> str:
    """The URL to fetch: the official one, or ``<base>/<name>/<file>`` from a mirror.

    Args:
        source: The data set.
        archive: One of its archives.
        base_url: A mirror (default: the ``SOUNDWATCH_DOWNLOAD_URL`` environment variable,
            else the official record).
    """
    base = base_url or os.environ.get(BASE_URL_ENV) or None
    if not base:
        return archive.url
    return f"{base.rstrip('/')}/{source.name}/{archive.file}"


def select_archives(name: str, machines: Sequence[str] | None = None
                    ) -> tuple[DatasetSource, list[Archive]]:
    """The data set ``name`` and its archives for ``machines`` (all when ``None``).

    Raises:
        ConfigError: Unknown data set or machine type.
    """
    source = SOURCES.get(name)
    if source is None:
        raise ConfigError("NAME", f"unknown data set {name!r}; choose from "
                          f"{', '.join(SOURCES)}")
    archives = list(source.archives)
    if machines:
        known = sorted({a.machine for a in archives if a.machine})
        bad = [m for m in machines if m not in known]
        if bad:
            raise ConfigError("--machine", f"{', '.join(bad)} not in {name}; choose from "
                              f"{', '.join(known) or '(none: this set is not per machine)'}")
        archives = [a for a in archives if a.machine in machines]
    return source, archives


def _safe_members(archive: Path, zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The archive's members, refusing absolute paths and ``..`` (no writing outside)."""
    members = []
    for info in zf.infolist():
        name = info.filename.replace("\\", "/")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
            raise DatasetError(archive, f"unsafe member path {info.filename!r}; not unpacked")
        if parts and parts[0] == "__MACOSX":
            continue
        members.append(info)
    return members


def _unpack(archive: Path, target: Path) -> int:
    """Unpack a zip archive into ``target`` atomically per archive; the member count."""
    staging = target / f".unpack-{archive.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                members = _safe_members(archive, zf)
                bad = zf.testzip()  # every member's CRC-32
                if bad is not None:
                    raise DatasetError(archive, f"corrupt archive: member {bad!r} fails its "
                                       "CRC check; delete the archive and download it again")
                staging.mkdir(parents=True)
                for info in members:
                    zf.extract(info, staging)
        except zipfile.BadZipFile as exc:
            raise DatasetError(archive, f"not a valid zip archive ({exc}); delete it and "
                               "download it again") from exc
        except OSError as exc:
            raise _disk_error(target, exc, f"unpacking {archive.name}") from exc
        count = 0
        for src in sorted(p for p in staging.rglob("*") if p.is_file()):
            dest = target / src.relative_to(staging)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
            count += 1
        return count
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def download_dataset(
    name: str,
    directory: str | os.PathLike[str],
    machines: Sequence[str] | None = None,
    base_url: str | None = None,
    keep_archives: bool = False,
    progress: bool = False,
) -> DownloadResult:
    """Download, verify and unpack a public data set into the layout soundwatch reads.

    Archives go to ``DIR/archives/<name>/`` (a ``.part`` file while incomplete, resumed
    by the next run), are checked against their published MD5 (where one is published)
    and size, then unpacked into ``DIR/<folder>`` (:attr:`DatasetSource.folder`); the
    archive is deleted afterwards unless ``keep_archives``.

    Args:
        name: A name from :data:`~soundwatch.datasets.sources.SOURCES`.
        directory: Where data sets live.
        machines: Only these machine types (default: all of the set).
        base_url: A mirror instead of the official records (see :data:`BASE_URL_ENV`).
        keep_archives: Keep the archives after unpacking.
        progress: Show progress bars.

    Returns:
        What was done and where the data set is.

    Raises:
        ConfigError: Unknown name or machine; pooch not installed.
        DatasetError: Network failure (resumable), checksum mismatch (the download is
            deleted), corrupt or unsafe archive, no space left on the device.
    """
    source, archives = select_archives(name, machines)
    try:
        import pooch
    except ImportError as exc:
        raise ConfigError("soundwatch download", _INSTALL_HINT) from exc
    root = Path(directory)
    folder = root / source.folder
    cache = root / ARCHIVE_DIR / source.name
    markers = folder / MARKER_DIR
    try:
        for path in (folder, cache, markers):
            path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _disk_error(root, exc, "creating folders") from exc
    pooch.get_logger().setLevel(logging.WARNING)  # soundwatch logs what is fetched
    result = DownloadResult(source, folder, [], [])
    for archive in archives:
        marker = markers / f"{archive.file}.json"
        if marker.is_file():
            result.skipped.append(archive.file)
            continue
        target = folder / archive.subdir if archive.subdir else folder
        path = cache / archive.file
        url = archive_url(source, archive, base_url)
        downloader = ResumingDownloader(cache / f"{archive.file}.part", archive.size, progress)
        known = f"md5:{archive.md5}" if archive.md5 else None
        log.info("%s: fetching %s", source.name, url)
        try:
            pooch.retrieve(url, known_hash=known, fname=archive.file, path=cache,
                           downloader=downloader, progressbar=False)
        except ValueError as exc:  # pooch: checksum mismatch (its temporary file is removed)
            raise DatasetError(path, f"checksum mismatch (expected md5 {archive.md5}); the "
                               "download was deleted, run the command again") from exc
        except OSError as exc:
            raise _disk_error(path, exc, "downloading") from exc
        count = _unpack(path, target)
        from soundwatch.atomic import write_json

        write_json(marker, {"archive": archive.file, "url": url, "md5": archive.md5,
                            "members": count})
        if not keep_archives:
            path.unlink(missing_ok=True)
        result.unpacked.append(archive.file)
        log.info("%s: unpacked %s (%d files) into %s", source.name, archive.file, count, target)
    return result


def describe_sources() -> list[dict[str, Any]]:
    """One row per data set: name, description, record, archives, checksums (for the CLI)."""
    return [{"name": s.name, "description": s.description, "record": s.record,
             "folder": s.folder, "archives": len(s.archives),
             "machines": sorted({a.machine for a in s.archives if a.machine}),
             "checksums": s.checksums} for s in SOURCES.values()]

