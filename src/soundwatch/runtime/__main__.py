"""``python -m soundwatch.runtime EXPORT FILE...``: score audio files with an export, no torch.

Prints one CSV row per file with the columns of ``soundwatch score``'s table:
``path,machine,section,score,threshold,decision,percentile,status,status_reason``
(decision 1 = anomalous; status ``ok``, ``sensor`` or ``error``). A file that cannot be
scored gets an ``error`` row with its reason and the other files are still scored; the
exit code is then 1 (docs/export.md).
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass

from soundwatch.errors import SoundwatchError

__all__ = ["COLUMNS", "ScoredFiles", "main", "write_scores"]

COLUMNS = ("path", "machine", "section", "score", "threshold", "decision", "percentile",
           "status", "status_reason")
"""The runtime CSV's columns (the scores table's, less what only a dataset knows)."""

EXIT_ROW_FAILED = 1
"""Exit code when every file has its row but some rows are errors."""


@dataclass(frozen=True)
class ScoredFiles:
    """What :func:`write_scores` did.

    Attributes:
        scored: Files scored (status ``ok`` or ``sensor``).
        failed: Files with an error row.
    """

    scored: int
    failed: int

    def __len__(self) -> int:
        return self.scored + self.failed


def write_scores(export: str, files: list[str], handle: object, machine: str | None = None,
                 threads: int = 1, channel: int | str | None = None) -> ScoredFiles:
    """Score ``files`` with an export and write one CSV row per file (:data:`COLUMNS`).

    The files are scored together; when that fails on a bad file, each is scored on its
    own so the good ones keep their scores and the bad ones get an ``error`` row. Every
    scored file also gets the sensor check (:mod:`soundwatch.sensor`): a clip with a
    sensor problem keeps its score and is never decided anomalous.

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
    from soundwatch.decisions import section_of_path
    from soundwatch.runtime import load
    from soundwatch.sensor import STATUS_ERROR, check_file

    det = load(export, machine=machine, threads=threads, channel=channel)
    name = str(det.manifest.get("machine") or machine or "")
    try:
        scores = {i: float(v) for i, v in enumerate(det.score(files))}
        errors: dict[int, str] = {}
    except SoundwatchError:
        scores, errors = {}, {}
        for i, path in enumerate(files):
            try:
                scores[i] = float(det.score([path])[0])
            except SoundwatchError as exc:
                errors[i] = str(exc)  # names the file: one line, as the CLI prints
    decider = det.decider
    chan = getattr(det, "channel", 0) if channel is None else channel
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i, path in enumerate(files):
        section = section_of_path(path)
        rule = decider.for_section(section)
        if i in errors:
            writer.writerow([path, name, section or "", "", f"{rule.threshold:.6g}", "", "",
                             STATUS_ERROR, errors[i]])
            continue
        check = check_file(path, decider.sample_rates, chan)
        status = check.status if check.status != STATUS_ERROR else "ok"
        decision = int(rule.decide([scores[i]])[0]) if status == "ok" else 0
        pct = float(rule.percentile([scores[i]])[0])
        writer.writerow([path, name, section or "", f"{scores[i]:.6g}", f"{rule.threshold:.6g}",
                         decision, f"{pct:.1f}", status,
                         check.reason if status != "ok" else ""])
    return ScoredFiles(len(scores), len(errors))


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
