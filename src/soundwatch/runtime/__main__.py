"""``python -m soundwatch.runtime EXPORT FILE...``: score audio files with an export, no torch.

Prints one CSV row per file with the columns of ``soundwatch score``'s table:
``path,machine,score,threshold,decision,percentile,status,reason`` (decision 1 =
anomalous). A file that cannot be scored gets a row with status ``error`` and its reason,
and the other files are still scored; the exit code is then 1 (docs/export.md).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass

from soundwatch.errors import SoundwatchError

__all__ = ["COLUMNS", "ScoredFiles", "main", "write_scores"]

COLUMNS = ("path", "machine", "score", "threshold", "decision", "percentile", "status",
           "reason")
"""The CSV's columns: those of ``soundwatch score``'s scores table, plus the error reason."""

EXIT_ROW_FAILED = 1
"""Exit code when every file has its row but some rows are errors."""


@dataclass(frozen=True)
class ScoredFiles:
    """What :func:`write_scores` did.

    Attributes:
        scored: Files scored (status ``ok``).
        failed: Files with an error row.
    """

    scored: int
    failed: int

    def __len__(self) -> int:
        return self.scored + self.failed


def _fmt(value: float) -> str:
    return f"{value:.6g}" if math.isfinite(value) else ""


def write_scores(export: str, files: list[str], handle: object, machine: str | None = None,
                 threads: int = 1, channel: int | str | None = None) -> ScoredFiles:
    """Score ``files`` with an export and write one CSV row per file (:data:`COLUMNS`).

    The files are scored together; when that fails on a bad file, each is scored on its
    own so the good ones keep their scores and the bad ones get an ``error`` row.

    Args:
        export: The export folder.
        files: Audio files.
        handle: Text stream the CSV is written to.
        machine: Machine type of a run's export.
        threads: onnxruntime threads.
        channel: Audio channel to read (default: the export's, as the run trained).

    Returns:
        How many files were scored and how many failed.

    Raises:
        SoundwatchError: A bad export folder (one line, named); nothing is written then.
    """
    from soundwatch.runtime import load

    det = load(export, machine=machine, threads=threads, channel=channel)
    name = machine or str(det.manifest.get("machine") or "")
    threshold = float(det.threshold)
    results: list[tuple[float | None, str]] = []
    try:
        results = [(float(s), "") for s in det.score(files)]
    except SoundwatchError:
        for path in files:
            try:
                results.append((float(det.score([path])[0]), ""))
            except SoundwatchError as exc:
                results.append((None, str(exc)))
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(COLUMNS)
    failed = 0
    for path, (score, reason) in zip(files, results, strict=True):
        if score is None:
            failed += 1
            writer.writerow([path, name, "", _fmt(threshold), "", "", "error", reason])
            continue
        decision = int(det.decider.decide([score])[0])
        pct = float(det.percentile([score])[0])
        writer.writerow([path, name, _fmt(score), _fmt(threshold), decision, f"{pct:.1f}",
                         "ok", ""])
    return ScoredFiles(len(files) - failed, failed)


def main(argv: list[str] | None = None) -> int:
    """Score files given on the command line.

    Returns:
        0 when every file was scored, 1 when some rows are errors (the others are scored),
        2 for a bad export folder or option (one line on stderr, no CSV).
    """
    parser = argparse.ArgumentParser(
        prog="python -m soundwatch.runtime",
        description="Score audio files with a detector exported by `soundwatch export` "
        "(onnxruntime + numpy; torch is not needed). A file that cannot be scored gets an "
        "error row and the others are still scored; the exit code is then 1.")
    parser.add_argument("export", help="export folder (one detector, or a run's export)")
    parser.add_argument("files", nargs="+", help="audio files to score")
    parser.add_argument("--machine", "-m", default=None, help="machine type of a run's export")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    parser.add_argument("--channel", default=None, metavar="N|mean",
                        help="audio channel of multi-channel files: an index or mean "
                        "(default: the export's, the one the run trained on)")
    args = parser.parse_args(argv)
    try:
        channel = None
        if args.channel is not None:
            from soundwatch.config import parse_channel

            channel = parse_channel(args.channel, "--channel")
        done = write_scores(args.export, args.files, sys.stdout, args.machine, args.threads,
                            channel)
    except SoundwatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if done.failed:
        print(f"error: {done.failed} of {len(done)} file(s) could not be scored (status "
              "'error' rows)", file=sys.stderr)
        return EXIT_ROW_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
