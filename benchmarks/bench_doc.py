"""Shared by the standalone benchmark scripts: the machine's description, marker sections."""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"


def usable_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def rss_mb() -> float:
    """Resident memory of this process now (MB; NaN where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class PeakRSS:
    """Polls VmRSS every 0.1 s in a thread: the peak resident memory inside the block.

    ``start`` is the memory when the block began, ``peak`` the largest seen.
    """

    def __init__(self) -> None:
        self.start = self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def median_score_ms(det: Any, signals: Sequence[Any], sr: int) -> float:
    """Milliseconds for ``det.score_signals`` on one signal: the median over ``signals``.

    One warm-up call first; the median because a shared VM stalls for seconds at times,
    which a total would keep.
    """
    det.score_signals(list(signals[:1]), sr)
    times = []
    for signal in signals:
        t0 = time.perf_counter()
        det.score_signals([signal], sr)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def scratch_folder(out: Path | None, prefix: str) -> tuple[Path, str | None]:
    """The scratch folder of a benchmark: ``out`` (created), else a new temporary one.

    Returns:
        ``(folder, temporary)``: ``temporary`` is the folder to delete afterwards, or None.

    Raises:
        SystemExit: ``out`` inside the repository (scratch data never goes there).
    """
    if out is None:
        tmp = tempfile.mkdtemp(prefix=prefix)
        return Path(tmp), tmp
    folder = out.resolve()
    if folder == REPO or REPO in folder.parents:
        raise SystemExit("--out must be outside the repository (scratch data never goes there)")
    folder.mkdir(parents=True, exist_ok=True)
    return folder, None


def real_recordings(root: Path) -> bool:
    """Quiet warnings and logs for a benchmark on ``root``; say so and False when it is missing."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    if not root.is_dir():
        print(f"skipped: {root} not found (the real recordings are not on this machine)")
        return False
    return True


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table (cells written with ``str``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    """One line: OS, CPU model, cores, torch version and threads, GPU, Python."""
    import torch

    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} logical cores, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), {gpu}, "
            f"Python {platform.python_version()}")


def write_section(name: str, text: str, doc: Path = DOC) -> Path:
    """Put ``text`` between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``doc``.

    ``doc`` is docs/benchmarks.md unless given. Other sections are kept; the section is
    appended when its markers are absent.
    """
    from soundwatch.atomic import write_text

    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text.rstrip()}\n{end}"
    old = doc.read_text(encoding="utf-8") if doc.is_file() else "# Benchmarks\n"
    if start in old and end in old:
        new = old[: old.index(start)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    write_text(doc, new)
    return doc


def publish(name: str, text: str, write: bool = True) -> None:
    """Print a benchmark's section; with ``write``, put it in benchmarks.md too."""
    print()
    print(text)
    if write:
        print(f"written: {write_section(name, text)}")


STANDALONE_HEADING = "# Standalone benchmark scripts"
"""The heading under which ``run.py`` keeps the standalone scripts' sections."""


def standalone_sections() -> str:
    """What benchmarks.md holds after ``# Standalone benchmark scripts``, verbatim.

    The marker sections (written by :func:`write_section`) and any prose between them (a
    section's heading and reading kept outside its markers); before ``run.py`` ever wrote
    that heading, the marker sections alone.
    """
    import re

    if not DOC.is_file():
        return ""
    text = DOC.read_text(encoding="utf-8")
    if STANDALONE_HEADING in text:
        rest = text[text.index(STANDALONE_HEADING) + len(STANDALONE_HEADING):]
        first = re.search(r"^(<!-- [\w-]+:start -->|## )", rest, flags=re.M)
        return rest[first.start():].strip() if first else ""
    blocks = re.finditer(r"<!-- ([\w-]+):start -->.*?<!-- \1:end -->", text, flags=re.S)
    return "\n\n".join(m.group(0) for m in blocks)
