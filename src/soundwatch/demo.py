"""The end-to-end demo: synthesise machines, train detectors, score, evaluate and report."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEMO_DETECTORS: tuple[str, ...] = ("ae-mahalanobis", "mahalanobis")
"""The DCASE baseline network (selective Mahalanobis score) and the strongest other detector
at the demo's size (docs/benchmarks.md)."""

DEMO_DATA: dict[str, Any] = {
    "machines": None,  # every synthetic machine type
    "train_source": 30,
    "train_target": 4,
    "test_per_group": 8,
    "seconds": 5.0,
}
"""The synthetic dataset the demo makes: small enough that ``make demo``, install included,
takes about four minutes on a fresh 2-core machine (the benchmarks measure quality on
larger sets)."""

DEMO_PARAMS: dict[str, dict[str, Any]] = {"ae-mahalanobis": {"epochs": 20}}
"""Per-detector overrides that keep the demo short."""

DEMO_SCORING = "test"
"""Name of the demo's scoring folder under each run's ``scores/`` (a rerun resumes it)."""

DEMO_EXPLAIN = 3
"""Flagged clips per machine type explained in the demo's reports."""

DEMO_WINDOW = 5.0
"""Window (s) of the demo's long-recording scoring (hop: the same, one clip per window)."""


def _monitoring_recording(data: Path, folder: Path) -> tuple[Path, str] | None:
    """A long recording made of test clips: normal, two anomalous, normal again.

    The demo scores it in windows, so the report shows a timeline with events.
    """
    import numpy as np
    import soundfile as sf

    from soundwatch.datasets import discover

    clips = [c for c in discover(data) if c.split == "test" and c.domain == "source"]
    if not clips:
        return None
    machine = sorted({c.machine for c in clips})[0]
    normal = [c.path for c in clips if c.machine == machine and c.label == 0][:6]
    anomalous = [c.path for c in clips if c.machine == machine and c.label == 1][:2]
    if len(normal) < 2 or not anomalous:
        return None
    path = folder / f"{machine}_monitor.wav"
    if path.is_file():
        return path, machine
    parts, sr = [], None
    half = (len(normal) + 1) // 2
    for clip in [*normal[:half], *anomalous, *normal[half:]]:
        x, sr = sf.read(clip, dtype="float32")
        parts.append(x)
    from soundwatch.atomic import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        sf.write(tmp, np.concatenate(parts), sr, format="WAV")
    return path, machine


@dataclass
class DemoResult:
    """What the demo produced.

    Attributes:
        root: The demo folder.
        data: The synthetic dataset folder.
        runs: Detector name -> its run folder.
        evaluations: Detector name -> its EvaluationResult.
        comparison: One row per detector: official score and mean AUCs.
    """

    root: Path
    data: Path
    runs: dict[str, Path] = field(default_factory=dict)
    evaluations: dict[str, Any] = field(default_factory=dict)
    comparison: Any = None

    @property
    def reports(self) -> dict[str, Path]:
        """Detector name -> its report.html."""
        return {name: Path(ev.paths["report"]) for name, ev in self.evaluations.items()}


def run_demo(
    out: str | os.PathLike[str] = "runs/demo",
    detectors: Sequence[str] = DEMO_DETECTORS,
    seed: int = 0,
    device: str = "auto",
    data_options: dict[str, Any] | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    progress: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the whole pipeline on the embedded synthetic data.

    Each step resumes: synthesised files already complete are kept, a detector already
    trained is not trained again, machines already scored are skipped.

    Args:
        out: Demo folder; holds ``data/`` and one run folder per detector.
        detectors: Registered detector names to train and compare.
        seed: Seed of the data and of training.
        device: ``cpu``, ``cuda`` or ``auto``.
        data_options: Overrides of :data:`DEMO_DATA` (``synth_machines`` arguments).
        params: Overrides of :data:`DEMO_PARAMS` (detector name -> hyper-parameters).
        progress: Show progress bars.
        on_step: Called with a short description before each step.

    Returns:
        The demo's folders, evaluations and comparison table.
    """
    import pandas as pd

    from soundwatch import pipeline
    from soundwatch.evaluation.evaluate import evaluate_run
    from soundwatch.synth import synth_machines
    from soundwatch.training.context import RunContext

    say = on_step or (lambda text: log.info("%s", text))
    root = Path(out)
    options = {**DEMO_DATA, **(data_options or {})}
    overrides = {**DEMO_PARAMS, **(params or {})}
    say(f"synthesising the machines set in {root / 'data'}")
    data = synth_machines(root / "data", seed=seed, progress=progress, **options)
    result = DemoResult(root=root, data=Path(data))
    monitor = _monitoring_recording(Path(data), root / "monitor")
    rows = []
    for name in detectors:
        run_dir = root / name
        resume = (run_dir / "config.yaml").exists()
        say(f"training {name}")
        context = RunContext(cache_dir=pipeline.cache_folder(None, no_cache=False),
                             resume=resume, progress=progress)
        run = pipeline.train(data, name, config=_config(name), out=run_dir,
                             params=overrides.get(name), seed=seed, device=device,
                             context=context)
        say(f"scoring {name}")
        scored = pipeline.score(run.root, out=run.root / "scores" / DEMO_SCORING,
                                progress=progress)
        if monitor is not None:
            import soundfile as sf

            say(f"scoring a long recording of {monitor[1]} with {name}")
            window = min(DEMO_WINDOW, sf.info(str(monitor[0])).duration / 4)
            pipeline.score_long_recording(run.root, monitor[0], window=window, hop=window,
                                          machine=monitor[1], out=run.root / "scores" / "monitor")
        say(f"evaluating {name}")
        evaluation = evaluate_run(run.root, scores=scored.attrs["scores_dir"],
                                  explain=DEMO_EXPLAIN)
        result.runs[name] = run.root
        result.evaluations[name] = evaluation
        machines = evaluation.sections
        rows.append({
            "detector": name,
            "official_score": evaluation.official_score,
            "auc_source": float(machines["auc_source"].mean()),
            "auc_target": float(machines["auc_target"].mean()),
            "pauc": float(machines["pauc"].mean()),
            "report": str(evaluation.paths.get("report", "")),
        })
    result.comparison = pd.DataFrame(rows)
    return result


def _config(name: str) -> str | None:
    """The detector's shipped config, when one exists (else its preset's values apply)."""
    from soundwatch.config import find_config

    found = find_config(name)
    return str(found) if found else None
