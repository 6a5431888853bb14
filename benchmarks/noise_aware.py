"""Noise-aware front-end options of composed detectors vs. the near channel alone.

Each option is a front-end parameter of any composed detector (docs/features.md,
"Noise-aware options"); this script trains a preset (``-d mahalanobis`` by default) with
each option through the real pipeline (``soundwatch train`` / ``score`` / ``evaluate`` as a
user runs them, via :func:`benchmarks.dcase.run_preset`) on two-channel sets written by
``soundwatch synth dcase2026`` (one per environmental-noise level), and, with ``--data25``,
the noise-only-clip options on a ``soundwatch synth dcase2025`` set. The table shows the
official DCASE score (harmonic mean over machine types and sections of AUC source, AUC
target and pAUC at 0.1), in percent.

    python benchmarks/noise_aware.py --data /tmp/n26/snr0 --data /tmp/n26/snr-6
        --data25 /tmp/n25/snr0 --write   # (one line)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the CLI: one torch thread unless set
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_doc import machine, write_section  # noqa: E402
from dcase import run_preset  # noqa: E402

OPTIONS_2026: dict[str, dict[str, Any]] = {
    "near channel alone": {},
    "reference=subtract": {"frontend__reference": "subtract"},
    "reference=wiener": {"frontend__reference": "wiener"},
    "reference=gate-far": {"frontend__reference": "gate-far"},
    "reference=near-far": {"frontend__reference": "near-far"},
    "reference=near+far": {"frontend__reference": "near+far"},
    "reference=gate (no reference)": {"frontend__reference": "gate"},
}
"""Options on the two-channel sets (the first is the baseline: channel 0, near)."""

OPTIONS_2025: dict[str, dict[str, Any]] = {
    "no noise option": {},
    "reference=subtract-noise": {"frontend__reference": "subtract-noise"},
    "reference=gate-noise": {"frontend__reference": "gate-noise"},
    "noise_augment=2 (0-20 dB)": {"frontend__noise_augment": 2},
    "subtract-noise + noise_augment=2": {"frontend__reference": "subtract-noise",
                                         "frontend__noise_augment": 2},
}
"""Options on the DCASE 2025-layout set (noise-only clips in ``supplemental/``)."""


def sweep(data: Path, options: dict[str, dict[str, Any]], presets: list[str], out: Path,
          seed: int) -> dict[tuple[str, str], tuple[float, float]]:
    """(preset, option) -> (official score, seconds) on one set."""
    results = {}
    for preset in presets:
        for label, params in options.items():
            folder = out / data.name / label.split(" ")[0].replace("=", "-")
            print(f"{data.name}: {preset} {label} ...", file=sys.stderr, flush=True)
            # one feature cache for the set: presets with the same front-end share features
            row = run_preset(data, preset, folder, None, params, seed, out / "cache")
            results[(preset, label)] = (100 * row["official_score"], row["total_s"])
            print(f"  {results[(preset, label)][0]:.2f} ({row['total_s']:.0f} s)",
                  file=sys.stderr, flush=True)
    return results


def table(sets: list[str], options: dict[str, dict[str, Any]], presets: list[str],
          results: dict[str, dict[tuple[str, str], tuple[float, float]]]) -> str:
    """Markdown: one row per preset and option, one score column per set."""
    head = ["detector", "option", "`-p`", *sets, "seconds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for preset in presets:
        for label, params in options.items():
            given = " ".join(f"{k}={v}" for k, v in params.items()) or "(none)"
            scores = [f"{results[s][(preset, label)][0]:.2f}" for s in sets]
            seconds = sum(results[s][(preset, label)][1] for s in sets)
            lines.append(f"| {preset} | {label} | `{given}` | " + " | ".join(scores)
                         + f" | {seconds:.0f} |")
    return "\n".join(lines)


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", default=[],
                        help="a soundwatch synth dcase2026 set (repeat: one per noise level)")
    parser.add_argument("--data25", type=Path, default=None,
                        help="a soundwatch synth dcase2025 set (noise-only-clip options)")
    parser.add_argument("--presets", default="mahalanobis",
                        help="comma-separated composed presets for the 2026 sets "
                        "(e.g. mahalanobis,knn-frames)")
    parser.add_argument("--presets25", default="mahalanobis",
                        help="comma-separated composed presets for the 2025 set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="runs (default: a temp folder)")
    parser.add_argument("--write", action="store_true",
                        help="write the tables into docs/benchmarks.md (noise-aware section)")
    args = parser.parse_args()
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    presets25 = [p.strip() for p in args.presets25.split(",") if p.strip()]
    out = args.out or Path(tempfile.mkdtemp(prefix="noise-aware-"))
    start = time.perf_counter()
    parts = []
    if args.data:
        res26 = {d.name: sweep(d, OPTIONS_2026, presets, out, args.seed) for d in args.data}
        parts.append(table([d.name for d in args.data], OPTIONS_2026, presets, res26))
    if args.data25 is not None:
        res25 = {args.data25.name: sweep(args.data25, OPTIONS_2025, presets25, out, args.seed)}
        parts.append(table([args.data25.name], OPTIONS_2025, presets25, res25))
    minutes = (time.perf_counter() - start) / 60
    text = "\n\n".join(parts)
    print(text)
    print(f"{minutes:.1f} min | {machine()}")
    if args.write:
        sets = ", ".join(d.name for d in [*args.data, *([args.data25] if args.data25 else [])])
        given = [f"--data {d}" for d in args.data]
        given += [f"--data25 {args.data25}"] if args.data25 else []
        given += [f"--presets {args.presets}", f"--presets25 {args.presets25}", "--write"]
        command = "python benchmarks/noise_aware.py " + " ".join(given)
        write_section("noise-aware", f"Machine: {machine()}. Sets: {sets}; {minutes:.1f} min "
                      f"in all. Command: `{command}`. Official DCASE score (%).\n\n{text}\n")


if __name__ == "__main__":
    main()
