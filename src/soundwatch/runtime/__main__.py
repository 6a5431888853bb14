"""``python -m soundwatch.runtime EXPORT FILE...``: score audio files with an export, no torch.

Prints one CSV row per file with the CLI's columns: ``path,machine,section,score,threshold,
decision,percentile,status,status_reason`` (decision 1 = anomalous; status ``ok``,
``sensor`` or ``error``). A bad file gives an ``error`` row and the batch goes on.
"""

from __future__ import annotations

import argparse
import csv
import sys

from soundwatch.errors import SoundwatchError

COLUMNS = ["path", "machine", "section", "score", "threshold", "decision", "percentile",
           "status", "status_reason"]
"""The runtime CSV's columns (the scores table's, less what only a dataset knows)."""


def write_scores(export: str, files: list[str], handle: object, machine: str | None = None,
                 threads: int = 1) -> int:
    """Score ``files`` with an export and write one CSV row per file (:data:`COLUMNS`).

    The files are scored together; when one is unusable, each is scored on its own so
    that the bad one gets an ``error`` row with its reason and the others their scores.

    Returns:
        The number of files scored (error rows not counted).

    Raises:
        SoundwatchError: A bad export folder (one line, named).
    """
    from soundwatch.decisions import section_of_path
    from soundwatch.runtime import load
    from soundwatch.sensor import STATUS_ERROR, check_file

    det = load(export, machine=machine, threads=threads)
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
                errors[i] = exc.reason
    decider = det.decider
    channel = getattr(det, "channel", 0)
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i, path in enumerate(files):
        section = section_of_path(path)
        if i in errors:
            writer.writerow([path, name, section or "", "", "", 0, "", STATUS_ERROR, errors[i]])
            continue
        rule = decider.for_section(section)
        check = check_file(path, decider.sample_rates, channel)
        status = check.status if check.status != STATUS_ERROR else "ok"
        decision = int(rule.decide([scores[i]])[0]) if status == "ok" else 0
        pct = float(rule.percentile([scores[i]])[0])
        writer.writerow([path, name, section or "", f"{scores[i]:.6g}", f"{rule.threshold:.6g}",
                         decision, f"{pct:.1f}", status,
                         check.reason if status != "ok" else ""])
    return len(scores)


def main(argv: list[str] | None = None) -> int:
    """Score files given on the command line; a bad export prints one line and exits 2.

    Bad audio files get error rows (the others are scored); the exit code is then 2.
    """
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
        scored = write_scores(args.export, args.files, sys.stdout, args.machine, args.threads)
    except SoundwatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if scored < len(args.files):
        print(f"error: {len(args.files) - scored} of {len(args.files)} file(s) not scored "
              "(status 'error' rows)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
