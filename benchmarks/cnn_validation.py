"""One run on the seed-1 validation set on which the cnn1d/wavevision presets were chosen.

Run:  .venv/bin/python benchmarks/cnn_validation.py DETECTOR [--config NAME] [--set JSON]

The set is ``synth_machines(seed=1; fan, pump, valve; 90 + 10 training clips, 15 per test
group, 4 s clips)``, generated into ``--data`` (default /tmp/soundwatch-cnn-validation)
and never used by the benchmarks (they use seed 0 and 10 s clips). The detector is fitted
per machine type with the ``configs/`` preset ``--config`` (default: the detector's own),
overridden by ``--set '{"epochs": 40, "seed": 1}'``; the line printed gives the official
score (DCASE 2024 harmonic mean) overall and per machine type, and AUC (source), AUC
(target) and pAUC per type. Nothing is written into docs/.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

from cnn import _fit_score, shipped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("detector", help="registered detector name (cnn1d, wavevision, ae...)")
    parser.add_argument("--config", default=None, help="configs/ preset (default: the detector)")
    parser.add_argument("--set", default="{}", help="JSON object of parameter overrides")
    parser.add_argument("--data", type=Path, default=Path("/tmp/soundwatch-cnn-validation"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)

    import pandas as pd

    from soundwatch.datasets.discovery import discover
    from soundwatch.evaluation.evaluate import evaluate_scores
    from soundwatch.synth.devset import synth_machines

    synth_machines(args.data, machines="fan,pump,valve", train_source=90, train_target=10,
                   test_per_group=15, seconds=4.0, seed=1, workers=1)
    clips = discover(args.data)
    config = shipped(args.config or args.detector)
    params = dict(json.loads(args.set))
    seed = int(params.pop("seed", 0))
    t0 = time.perf_counter()
    table = pd.concat([_fit_score((args.detector, config, params, str(args.data), m, seed,
                                   str(args.data.parent / f"{args.data.name}-runs" / m)))
                       for m in sorted({c.machine for c in clips})], ignore_index=True)

    def evaluate(t: pd.DataFrame) -> object:
        return evaluate_scores(t, threshold="fixed:0.5", mode="dcase2024")

    per = []
    for m in sorted(set(table["machine"])):
        r = evaluate(table[table["machine"] == m])
        row = r.machines.iloc[0]
        per.append(f"{m} {r.official_score:.3f} (AUC-s {row['auc_source']:.2f}, "
                   f"AUC-t {row['auc_target']:.2f}, pAUC {row['pauc']:.2f})")
    print(f"{args.detector} {config} {args.set}: official {evaluate(table).official_score:.3f}; "
          f"{'; '.join(per)}; {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
