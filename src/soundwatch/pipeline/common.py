"""Shared steps of the pipeline: configuration, discovery, machine choice, run context."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundwatch.config import RunConfig, load_config
from soundwatch.datasets import assign_split
from soundwatch.datasets.folders import discover_training
from soundwatch.decisions import DEFAULT_POLICY
from soundwatch.detectors import Detector, create_detector
from soundwatch.detectors.registry import DEFAULT_DETECTOR, resolve_detector_name
from soundwatch.errors import ConfigError, DatasetError, DetectorError
from soundwatch.features.cache import default_cache_dir
from soundwatch.scores import read_scores_table
from soundwatch.thresholds import parse_threshold
from soundwatch.training.context import RunContext

if TYPE_CHECKING:
    import pandas as pd

    from soundwatch.datasets.clip import Clip

log = logging.getLogger(__name__)


RUNTIME_PARAMS = tuple(f.name for f in dataclasses.fields(RunContext))
"""Run settings (the :class:`~soundwatch.training.context.RunContext` fields), never params.

``device`` and ``channel`` are also top-level config keys (``device:``, ``--device``;
recorded in ``config.yaml``) that go into the run's context, never into the detector."""

TOP_LEVEL_PARAMS = ("seed",)
"""Hyper-parameters a config sets at its top level (``seed:``, ``--seed``), not in params.

The seed is a hyper-parameter only (``make_detector`` gives it to the detector, which
saves it); it is no run setting."""


RENAMED_PARAMS = {
    "score_method": "the scorer is a part now: -p scorer=NAME (soundwatch components scorer)",
}
"""Parameters of earlier versions (and of the DCASE baselines) and what replaced them."""

TRAIN_SPLIT = "train"


TEST_SPLIT = "test"


def check_data_folder(data: str | os.PathLike[str]) -> Path:
    """The data folder as a path.

    Raises:
        DatasetError: It does not exist or is not a folder.
    """
    root = Path(data)
    if not root.exists():
        raise DatasetError(root, "no such data folder")
    if not root.is_dir():
        raise DatasetError(root, "not a folder (give the dataset's root folder)")
    return root


def discover_clips(
    data: str | os.PathLike[str], seed: int, *, train_normals: int | None = None,
    machines: Sequence[str] | None = None,
) -> list[Clip]:
    """The dataset's clips; clips without a split (MIMII raw) get the DCASE-2020-style one.

    Args:
        data: Dataset root: a known layout, else plain folders
            (:func:`soundwatch.datasets.folders.discover_training`).
        seed: Seed of the split draw (``--split-seed``, default the run's seed).
        train_normals: Normal recordings per machine ID to train on (``--train-normals``).
        machines: The run's ``--machine`` names; one names the machine of plain recordings.
    """
    root = check_data_folder(data)
    one = machines[0] if machines and len(machines) == 1 else None
    clips = list(discover_training(root, one))
    if any(c.split is None for c in clips):
        log.info("%s: some clips have no split; assigning one (seed %d)", root, seed)
        clips = assign_split(clips, seed=seed, train_normals=train_normals)
    return clips


def group_by_machine(clips: Iterable[Clip]) -> dict[str, list[Clip]]:
    """``machine -> clips`` in the clips' order."""
    out: dict[str, list[Clip]] = {}
    for clip in clips:
        out.setdefault(clip.machine, []).append(clip)
    return dict(sorted(out.items()))


def pick_machines(found: Iterable[str], wanted: Iterable[str] | None, where: str) -> list[str]:
    """The machine types to work on: ``wanted`` (checked against ``found``), else all found.

    Raises:
        DatasetError: A wanted machine type is not in ``found``.
    """
    found = sorted(set(found))
    if not wanted:
        return found
    wanted = list(dict.fromkeys(wanted))
    unknown = [m for m in wanted if m not in found]
    if unknown:
        raise DatasetError(
            where, f"unknown machine(s) {', '.join(unknown)} (found: {', '.join(found) or 'none'})"
        )
    return wanted


def resolve_config(
    data: str | os.PathLike[str] | None,
    detector: str | None = None,
    config: str | os.PathLike[str] | RunConfig | None = None,
    *,
    machines: Iterable[str] | None = None,
    params: Mapping[str, Any] | None = None,
    epochs: int | None = None,
    objective: str | None = None,
    seed: int | None = None,
    device: str | None = None,
    channel: int | str | None = None,
) -> RunConfig:
    """Merge a YAML config (a file or a shipped config) with explicit options; options win.

    Args:
        data: Dataset root (stored as an absolute path).
        detector: Detector name (default: the config's, else the recommended ``default``).
        config: YAML file, shipped config name or a :class:`RunConfig`.
        machines: Machine types to train (``None``: all found).
        params: Detector hyper-parameters, merged over the YAML's ``params``.
        epochs: Shortcut for ``params["epochs"]``.
        objective: Shortcut for ``params["objective"]`` (network detectors).
        seed: Random seed (default: the YAML's, else 0).
        device: ``auto``, ``cpu``, ``cuda`` (default: the YAML's, else ``auto``).
        channel: Audio channel index or ``"mean"`` (default: the YAML's, else 0).

    Returns:
        The resolved, validated config.

    Raises:
        ConfigError: No detector given, an invalid value, or ``epochs``/``objective``
            for a detector without such a parameter.
        DetectorError: Unknown detector name.
    """
    if isinstance(config, RunConfig):
        base: RunConfig | None = config
    elif config is not None:
        base = load_config(config)
    else:
        base = None
    if base is None:
        if not detector:

            detector = DEFAULT_DETECTOR  # the recommended detector (docs/benchmarks.md)
        base = RunConfig(detector=detector)

    extra = dict(params or {})
    if detector:  # ``default``: the run records the preset's real name
        detector = resolve_detector_name(detector)
    name = detector or resolve_detector_name(base.detector)
    create_detector(name)  # raises DetectorError for an unknown name
    shortcuts = (("--epochs", "epochs", epochs), ("--objective", "objective", objective))
    for flag, key, value in shortcuts:
        if value is None:
            continue
        try:
            create_detector(name, **{key: value})
        except DetectorError as exc:
            if not exc.reason.startswith("unknown parameter"):  # a bad value, not a bad name
                raise ConfigError(flag, f"detector {name!r} does not accept {key}={value!r} "
                                  f"({exc.reason})") from exc
            raise ConfigError(flag, f"detector {name!r} has no {key!r} parameter "
                              f"({exc.reason})") from exc
        extra[key] = value
    resolved = base.override(
        detector=detector,
        params=extra,
        data=str(Path(data).resolve()) if data is not None else None,
        machines=machines,
        seed=seed,
        device=device,
        channel=channel,
    )
    if resolved.detector != name:  # a YAML's ``detector: default``: record the real name
        resolved = dataclasses.replace(resolved, detector=name)
    for key, hint in RENAMED_PARAMS.items():
        if key in resolved.params:
            raise ConfigError(f"params.{key}", f"unknown parameter; {hint}")
    for key in (*RUNTIME_PARAMS, *TOP_LEVEL_PARAMS):
        if key in resolved.params:
            option = f"--{key.replace('_', '-')} or top-level '{key}:'" if key in (
                "seed", "device", "channel") else "the pipeline"
            raise ConfigError(f"params.{key}", f"set by {option}, not as a detector parameter")
    return resolved


def cache_folder(cache_dir: str | os.PathLike[str] | None, no_cache: bool) -> str | None:
    """The feature-cache folder: ``None`` with ``no_cache``, else ``cache_dir`` or the default."""
    if no_cache:
        return None
    if cache_dir is not None:
        return str(cache_dir)

    return str(default_cache_dir())


def make_detector(cfg: RunConfig) -> Detector:
    """The (unfitted) detector a resolved config describes, with the config's seed."""
    return create_detector(cfg.detector, **{**cfg.params, "seed": cfg.seed})


def run_context(cfg: RunConfig | None = None, **settings: Any) -> RunContext:
    """The :class:`~soundwatch.training.context.RunContext` of a command (device from ``cfg``)."""
    if cfg is not None and "device" not in settings:
        settings["device"] = cfg.device
    if cfg is not None and "channel" not in settings:
        settings["channel"] = cfg.channel
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in settings.items()
                if v is not None}
    return RunContext(**settings)


def merge_table(path: Path, machine: str, table: pd.DataFrame) -> pd.DataFrame:
    """Replace ``machine``'s rows of the scores table at ``path`` (if any) by ``table``."""
    import pandas as pd


    if path.is_file():
        old = read_scores_table(path)
        old = old[old["machine"] != machine]
        if len(old):
            table = pd.concat([old, table], ignore_index=True)
    return table.sort_values(["machine", "path"], kind="stable").reset_index(drop=True)


def check_policy(threshold: str | None) -> str:
    """The decision policy to fit at training (parsed early: a bad one fails first)."""
    spec = parse_threshold(threshold or DEFAULT_POLICY)
    if spec.optimistic:
        raise ConfigError("--threshold", "best-f1 needs test labels; at training choose "
                          "far:RATE, gamma:Q, contamination:Q or fixed:V")
    return str(spec)


def now_stamp() -> str:
    """The local time as a folder-name stamp (``YYYYmmdd-HHMMSS``)."""
    import datetime as dt

    return dt.datetime.now().strftime("%Y%m%d-%H%M%S")
