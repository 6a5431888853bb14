"""Write a DCASE 2024-layout development set of synthetic machine sounds (``synth machines``)."""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundwatch.atomic import write_json, write_text
from soundwatch.errors import ConfigError
from soundwatch.synth.machines import (
    MACHINE_TYPES,
    MACHINES,
    render_machine_clip,
    sample_attributes,
)
from soundwatch.synth.writer import (
    claim_output,
    release_output,
    resolve_workers,
    write_clips,
    write_wav,
)

__all__ = ["GENERATOR_VERSION", "ClipPlan", "parse_machines", "plan_machine", "synth_machines"]

log = logging.getLogger(__name__)

GENERATOR_VERSION = "1"
"""Bumped whenever the same parameters would give different audio."""

SECTION = "00"
SEVERITY_RANGE = (0.1, 1.0)
"""Anomaly severities are drawn uniformly from this range (graded: weak to strong)."""

# (split, domain, label) groups, in file order; the code enters each clip's seed.
_GROUPS = (
    ("train", "source", 0),
    ("train", "target", 0),
    ("test", "source", 0),
    ("test", "source", 1),
    ("test", "target", 0),
    ("test", "target", 1),
)


@dataclass(frozen=True)
class ClipPlan:
    """Everything that decides one clip: where it goes and how it is rendered.

    Attributes:
        machine: Machine type.
        split: ``train`` or ``test``.
        domain: ``source`` or ``target``.
        label: 0 normal, 1 anomaly.
        index: Number within its (split, domain, label) group.
        attributes: Operating conditions, in file-name order.
        anomaly: Anomaly kind, ``None`` for normal clips.
        severity: 0..1 (0 for normal clips).
        seed_key: Spawn key of the clip's ``SeedSequence`` (with the dataset seed).
        rel_path: Path relative to the dataset root, ``<machine>/<split>/<name>.wav``.
    """

    machine: str
    split: str
    domain: str
    label: int
    index: int
    attributes: dict[str, str] = field(hash=False, compare=False)
    anomaly: str | None
    severity: float
    seed_key: tuple[int, ...]
    rel_path: str


def _machine_code(machine: str) -> int:
    return zlib.crc32(machine.encode("utf-8"))


def clip_seed(seed: int, key: tuple[int, ...], stream: int) -> np.random.SeedSequence:
    """The ``SeedSequence`` of one clip: stream 0 plans it, stream 1 renders it."""
    return np.random.SeedSequence(entropy=seed, spawn_key=(*key, stream))


def plan_machine(machine: str, counts: Sequence[int], seed: int) -> list[ClipPlan]:
    """Plan every clip of one machine type.

    Args:
        machine: Machine type.
        counts: Clips per group, in the order train/source, train/target,
            test/source/normal, test/source/anomaly, test/target/normal,
            test/target/anomaly.
        seed: Dataset seed.

    Returns:
        The plans; each depends only on ``(seed, machine, group, index)``, so changing the
        counts or the number of workers never changes an existing clip.
    """
    model = MACHINES[machine]
    kinds = model.anomalies
    plans = []
    for g, ((split, domain, label), count) in enumerate(zip(_GROUPS, counts, strict=True)):
        for index in range(count):
            key = (_machine_code(machine), g, index)
            rng = np.random.default_rng(clip_seed(seed, key, 0))
            attributes = sample_attributes(machine, domain, rng)
            if label:
                anomaly = kinds[index % len(kinds)]
                severity = round(float(rng.uniform(*SEVERITY_RANGE)), 4)
            else:
                anomaly, severity = None, 0.0
            tail = "_".join(f"{k}_{v}" for k, v in attributes.items())
            state = "anomaly" if label else "normal"
            name = f"section_{SECTION}_{domain}_{split}_{state}_{index:04d}_{tail}.wav"
            plans.append(ClipPlan(machine, split, domain, label, index, attributes, anomaly,
                                  severity, key, f"{machine}/{split}/{name}"))
    return plans


def parse_machines(machines: str | int | Sequence[str] | None) -> list[str]:
    """Resolve ``--machines``: ``None`` (all), a count, or names (list or comma-separated).

    Raises:
        ConfigError: Unknown name, duplicate, or a count out of range.
    """
    if machines is None:
        return list(MACHINE_TYPES)
    if isinstance(machines, str):
        text = machines.strip()
        if text.isdigit():
            machines = int(text)
        else:
            machines = [m.strip() for m in text.split(",") if m.strip()]
    if isinstance(machines, int):
        if not 1 <= machines <= len(MACHINE_TYPES):
            raise ConfigError(
                "--machines", f"count must be 1..{len(MACHINE_TYPES)}, got {machines}")
        return list(MACHINE_TYPES[:machines])
    names = list(machines)
    if not names:
        raise ConfigError("--machines", "no machine type given")
    for name in names:
        if name not in MACHINES:
            raise ConfigError(
                "--machines",
                f"unknown machine type {name!r}; choose from {', '.join(MACHINE_TYPES)}")
    if len(set(names)) != len(names):
        raise ConfigError("--machines", "a machine type is listed twice")
    return names


def _check_count(name: str, value: int, minimum: int = 0) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ConfigError(name, f"must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_set_params(
    machines: str | int | Sequence[str] | None, train_source: int, train_target: int,
    test_per_group: int, seconds: float, sr: int, seed: int,
) -> tuple[list[str], tuple[int, ...], float, int, int]:
    """Validate the parameters every DCASE-layout writer takes (shared with ``recent``).

    Returns:
        ``(machine types, per-group counts in _GROUPS order, seconds, sr, seed)``.

    Raises:
        ConfigError: A bad name, count, length, rate or seed, or all counts zero.
    """
    names = parse_machines(machines)
    counts = (_check_count("--train-source", train_source),
              _check_count("--train-target", train_target))
    per_group = _check_count("--test-per-group", test_per_group)
    if sum(counts) + per_group == 0:
        raise ConfigError("counts", "nothing to generate: all clip counts are zero")
    seconds, sr, seed = check_audio_params(seconds, sr, seed)
    return names, counts + (per_group,) * 4, seconds, sr, seed


def finish_set(
    out: Path, generator: str, version: str, layout: str, params: dict[str, Any],
    names: list[str], plans: list[ClipPlan], counts: Sequence[int], total: int,
    extra: dict[str, Any],
) -> Path:
    """The last steps of a DCASE-layout writer: the CSV tables, then ``dataset.json``.

    ``attributes_00.csv`` per machine type and ``synth_manifest.csv`` from ``plans``;
    ``dataset.json`` (generator, parameters, counts, ``extra`` last) is written last and
    the output lock released, so a complete ``dataset.json`` means a complete set.
    """
    for m in names:
        write_text(out / m / f"attributes_{SECTION}.csv",
                   _attributes_csv([p for p in plans if p.machine == m]))
    write_text(out / "synth_manifest.csv", _manifest_csv(plans))
    from soundwatch import __version__

    summary = {
        "generator": generator,
        "generator_version": version,
        "soundwatch_version": __version__,
        "layout": layout,
        "parameters": params,
        "counts": {
            m: {f"{s}_{d}_{'anomaly' if lab else 'normal'}": c
                for (s, d, lab), c in zip(_GROUPS, counts, strict=True)}
            for m in names
        },
        "total_clips": total,
        "anomaly_kinds": {m: list(MACHINES[m].anomalies) for m in names},
        **extra,
    }
    write_json(out / "dataset.json", summary)
    release_output(out)
    return out


def check_audio_params(seconds: float, sr: int, seed: int) -> tuple[float, int, int]:
    """Validate ``--seconds``, ``--sr`` and ``--seed`` (shared with the pink-noise task)."""
    if not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError("--seconds", f"must be a positive number, got {seconds!r}")
    if seconds > 600:
        raise ConfigError("--seconds", f"at most 600 s per clip, got {seconds!r}")
    if isinstance(sr, bool) or int(sr) != sr or not 4000 <= sr <= 192000:
        raise ConfigError("--sr", f"must be an integer between 4000 and 192000 Hz, got {sr!r}")
    if int(round(seconds * sr)) < 0.05 * sr:
        raise ConfigError("--seconds", f"clip too short: {seconds!r} s (minimum 0.05 s)")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ConfigError("--seed", f"must be a non-negative integer, got {seed!r}")
    return float(seconds), int(sr), int(seed)


def _render_chunk(chunk: list[ClipPlan], out: str, seed: int, seconds: float, sr: int) -> int:
    """Worker: render and write some clips (module level so that it pickles)."""
    root = Path(out)
    for plan in chunk:
        rng = np.random.default_rng(clip_seed(seed, plan.seed_key, 1))
        y = render_machine_clip(plan.machine, plan.domain, plan.attributes, plan.anomaly,
                                plan.severity, seconds, sr, rng)
        write_wav(root / plan.rel_path, y, sr)
    return len(chunk)


def _attributes_csv(plans: list[ClipPlan]) -> str:
    width = max((len(p.attributes) for p in plans), default=0)
    header = ["file_name"] + [f"d{i}{c}" for i in range(1, width + 1) for c in "pv"]
    lines = [",".join(header)]
    for p in plans:
        cells = [p.rel_path]
        for k, v in p.attributes.items():
            cells += [k, v]
        cells += [""] * (len(header) - len(cells))
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def _manifest_csv(plans: list[ClipPlan]) -> str:
    lines = ["file_name,machine,section,domain,split,label,anomaly,severity"]
    for p in plans:
        lines.append(f"{p.rel_path},{p.machine},{SECTION},{p.domain},{p.split},{p.label},"
                     f"{p.anomaly or ''},{p.severity:g}")
    return "\n".join(lines) + "\n"


def synth_machines(
    out: str | Path,
    machines: str | int | Sequence[str] | None = None,
    train_source: int = 990,
    train_target: int = 10,
    test_per_group: int = 50,
    seconds: float = 10.0,
    sr: int = 16000,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = False,
) -> Path:
    """Write a synthetic development set in the DCASE 2024 Task 2 layout.

    ``OUT/<machine>/train/section_00_{source,target}_train_normal_NNNN_<attr>_<value>...wav``,
    ``OUT/<machine>/test/section_00_{source,target}_test_{normal,anomaly}_NNNN_...wav``,
    ``OUT/<machine>/attributes_00.csv``, ``OUT/synth_manifest.csv`` (anomaly kind and
    severity of every clip) and, last, ``OUT/dataset.json``.

    Files are written in parallel and atomically; rerunning with the same parameters
    skips the finished files, so an interrupted run resumes. The same parameters give
    byte-identical files whatever the number of workers.

    Args:
        out: Output folder.
        machines: ``None`` for all of :data:`~soundwatch.synth.machines.MACHINE_TYPES`, a
            count (the first ``k``), or names (a list or a comma-separated string).
        train_source: Normal source-domain training clips per machine type.
        train_target: Normal target-domain training clips per machine type.
        test_per_group: Test clips per (domain, normal/anomaly) group.
        seconds: Clip length.
        sr: Sample rate.
        seed: Dataset seed.
        workers: Processes (``None``: ``os.cpu_count()``).
        progress: Show a progress bar.

    Returns:
        The output folder.

    Raises:
        ConfigError: Bad parameters, or ``out`` holds a dataset with other parameters.
    """
    out = Path(out)
    names, counts, seconds, sr, seed = check_set_params(
        machines, train_source, train_target, test_per_group, seconds, sr, seed)
    n_workers = resolve_workers(workers)
    params: dict[str, Any] = {
        "generator_version": GENERATOR_VERSION,
        "machines": names,
        "train_source": counts[0],
        "train_target": counts[1],
        "test_per_group": counts[2],
        "seconds": seconds,
        "sr": sr,
        "seed": seed,
    }
    claim_output(out, params)
    plans = [p for m in names for p in plan_machine(m, counts, seed)]
    write_clips(out, plans, (out / m / s for m in names for s in ("train", "test")),
                int(round(seconds * sr)), sr, _render_chunk, (seed, seconds, sr), n_workers,
                progress, "synth machines")
    extra = {
        "attributes": {
            m: {a.name: {"source": list(a.source), "target": list(a.target)}
                for a in MACHINES[m].attributes}
            for m in names
        },
        "severity_range": list(SEVERITY_RANGE),
    }
    return finish_set(out, "soundwatch.synth.machines", GENERATOR_VERSION, "dcase2024-dev",
                      params, names, plans, counts, len(plans), extra)
