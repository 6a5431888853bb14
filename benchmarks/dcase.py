"""Train and evaluate soundwatch's presets on a DCASE Task 2 development set (vs. baseline).

Run (a user with the data; ``soundwatch download dcase2025-dev --dir data`` fetches it)::

    .venv/bin/python benchmarks/dcase.py --year 2025 --data data/dcase2025t2/dev_data/raw
    .venv/bin/python benchmarks/dcase.py --year 2026 --data data/dcase2026t2/dev_data/raw
        --presets knn-frames,mahalanobis --machines fan,valveEmu --out /tmp/dcase26  # (one line)

Each preset is trained per machine type on the ``train`` split and scored on ``test``
(``soundwatch train`` / ``score`` / ``evaluate`` as a user runs them); the table shows the
per-machine harmonic mean of AUC (source), AUC (target) and pAUC (max FPR 0.1) and the
official score (their harmonic mean over all machine types and sections), in percent, next
to the official baseline's development-set score for that year where one is cited
(:data:`BASELINES`). DCASE 2026 clips have two channels; this script scores the near
channel (channel 0, soundwatch's default), as the issue's comparison "near channel alone"
asks. Results are written to ``--out`` as ``dcase_<year>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the CLI: one torch thread unless set

BASELINES: dict[int, tuple[float, str]] = {
    2025: (56.26, "official baseline, DCASE 2025 development set"),
    2026: (57.66, "official baseline (Mahalanobis mode), DCASE 2026 development set"),
}
"""Official development-set scores (percent) as cited in issue 27 from the task pages."""

DEFAULT_PRESETS = ("knn-frames", "mahalanobis", "mahalanobis-hf", "ae")
YEARS = tuple(range(2020, 2027))


def run_preset(data: Path, preset: str, out: Path, machines: list[str] | None,
               params: dict[str, Any], seed: int, cache_dir: Path | None = None
               ) -> dict[str, Any]:
    """Train, score and evaluate one preset; its per-machine and official scores.

    ``cache_dir``: a feature cache for the training clips (default: none).
    """
    from soundwatch import pipeline
    from soundwatch.evaluation.evaluate import evaluate_run
    from soundwatch.evaluation.metrics import floored_hmean
    from soundwatch.training.context import RunContext

    start = time.perf_counter()
    run = pipeline.train(data, detector=preset, machines=machines, out=out / preset,
                         params=params or None, seed=seed,
                         context=RunContext(cache_dir=None if cache_dir is None
                                            else str(cache_dir)))
    trained = time.perf_counter()
    pipeline.score(run.root, out=run.root / "scores" / "dev")
    result = evaluate_run(run.root, scores=run.root / "scores" / "dev", plots=False,
                          report=False, explain=0)
    columns = ["auc_source", "auc_target", "pauc"] if result.mode == "dcase2024" else ["auc"]
    per_machine = {str(r["machine"]): floored_hmean([float(r[c]) for c in columns])
                   for _, r in result.machines.iterrows()}
    return {
        "preset": preset,
        "mode": result.mode,
        "official_score": float(result.summary["official_score"]),
        "machines": per_machine,
        "train_s": round(trained - start, 1),
        "total_s": round(time.perf_counter() - start, 1),
    }


def table(year: int, rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table (percent), with the cited baseline."""
    machines = sorted({m for r in rows for m in r["machines"]})
    head = ["preset", *machines, "official score", "vs. baseline", "seconds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    base = BASELINES.get(year)
    for r in rows:
        cells = [r["preset"]] + [f"{100 * r['machines'][m]:.2f}" if m in r["machines"] else "-"
                                 for m in machines]
        score = 100 * r["official_score"]
        diff = f"{score - base[0]:+.2f}" if base else "n/a"
        cells += [f"{score:.2f}", diff, f"{r['total_s']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if base:
        lines.append("| " + " | ".join([f"baseline ({base[1]})", *["-"] * len(machines),
                                        f"{base[0]:.2f}", "0.00", "-"]) + " |")
    else:
        lines.append(f"\nno official baseline score is cited here for {year}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; 0 on success, 2 on a user's mistake."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--year", type=int, required=True, choices=YEARS)
    parser.add_argument("--data", type=Path, required=True,
                        help="The development set (its machine folders hold train/ and test/).")
    parser.add_argument("--presets", default=",".join(DEFAULT_PRESETS),
                        help="Comma-separated detector presets (soundwatch detectors).")
    parser.add_argument("--machines", default=None, help="Comma-separated machine types.")
    parser.add_argument("--param", action="append", default=[],
                        help="key=value hyper-parameter override for every preset (repeat).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="Runs and results (default: a temporary folder).")
    args = parser.parse_args(argv)

    from soundwatch.config import parse_params
    from soundwatch.detectors import list_detectors
    from soundwatch.errors import SoundwatchError, printable

    try:
        params = parse_params(args.param)
        presets = [p.strip() for p in args.presets.split(",") if p.strip()]
        unknown = [p for p in presets if p not in list_detectors()]
        if unknown or not presets:
            print(f"error: --presets: unknown {', '.join(unknown) or '(none given)'}; choose "
                  f"from {', '.join(list_detectors())}", file=sys.stderr)
            return 2
        if not args.data.is_dir():
            print(f"error: {args.data}: no such folder", file=sys.stderr)
            return 2
        machines = [m.strip() for m in args.machines.split(",")] if args.machines else None
        out = args.out or Path(tempfile.mkdtemp(prefix=f"dcase{args.year}-"))
        out.mkdir(parents=True, exist_ok=True)
        rows = []
        for preset in presets:
            print(f"{preset}: training and evaluating ...", file=sys.stderr, flush=True)
            rows.append(run_preset(args.data, preset, out, machines, params, args.seed))
    except SoundwatchError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return 2
    text = table(args.year, rows)
    print(f"DCASE {args.year} Task 2 development set: {args.data}")
    print(text)
    payload = {"year": args.year, "data": str(args.data), "params": params, "seed": args.seed,
               "baseline": BASELINES.get(args.year), "results": rows}
    (out / f"dcase_{args.year}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out / f"dcase_{args.year}.md").write_text(text + "\n")
    print(f"results: {out / f'dcase_{args.year}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
