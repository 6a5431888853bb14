"""``python -m soundwatch.runtime EXPORT FILE...``: score audio files with an export, no torch.

Prints one CSV row per file: ``path,score,decision,percentile`` (decision 1 = anomalous).
"""

from __future__ import annotations

import argparse
import csv
import sys

from soundwatch.errors import SoundwatchError


def write_scores(export: str, files: list[str], handle: object, machine: str | None = None,
                 threads: int = 1) -> int:
    """Score ``files`` with an export and write ``path,score,decision,percentile`` CSV rows.

    Returns:
        The number of files scored.

    Raises:
        SoundwatchError: A bad export folder or audio file (one line, named).
    """
    from soundwatch.runtime import load

    det = load(export, machine=machine, threads=threads)
    scores = det.score(files)
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["path", "score", "decision", "percentile"])
    decisions = det.decider.decide(scores)
    for path, score, decision, pct in zip(files, scores, decisions, det.percentile(scores),
                                          strict=True):
        writer.writerow([path, f"{score:.6g}", int(decision), f"{pct:.1f}"])
    return len(files)


def main(argv: list[str] | None = None) -> int:
    """Score files given on the command line; a bad input prints one line and exits 2."""
    parser = argparse.ArgumentParser(
        prog="python -m soundwatch.runtime",
        description="Score audio files with a detector exported by `soundwatch export` "
        "(onnxruntime + numpy; torch is not needed).")
    parser.add_argument("export", help="export folder (one detector, or a run's export)")
    parser.add_argument("files", nargs="+", help="audio files to score")
    parser.add_argument("--machine", "-m", default=None, help="machine type of a run's export")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    args = parser.parse_args(argv)
    try:
        write_scores(args.export, args.files, sys.stdout, args.machine, args.threads)
    except SoundwatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
