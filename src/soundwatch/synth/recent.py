"""Synthetic DCASE 2025-layout (supplementary clips) and 2026-layout (near/far) sets."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soundwatch.errors import ConfigError
from soundwatch.synth.devset import (
    SECTION,
    ClipPlan,
    _check_count,
    _machine_code,
    check_set_params,
    clip_seed,
    finish_set,
    plan_machine,
)
from soundwatch.synth.machines import (
    CLIP_RMS,
    render_machine_parts,
    sample_attributes,
)
from soundwatch.synth.writer import (
    claim_output,
    resolve_workers,
    write_clips,
    write_wav,
)

__all__ = [
    "FAR_DELAY_S",
    "FAR_MACHINE_DB",
    "RECENT_GENERATOR_VERSION",
    "mix_near_far",
    "synth_dcase2025",
    "synth_dcase2026",
]

log = logging.getLogger(__name__)

RECENT_GENERATOR_VERSION = "1"
"""Bumped whenever the same parameters would give different audio."""

FAR_MACHINE_DB = -12.0
"""Level of the machine at the far microphone relative to the near one."""

FAR_DELAY_S = 0.004
"""Extra travel time of the machine's sound to the far microphone (about 1.4 m)."""

_SUPPLEMENTAL_GROUP = {"machine": 100, "noise": 101}  # seed-key group codes (past _GROUPS)


@dataclass(frozen=True)
class _Supplemental:
    """One supplementary clip: the clean machine or the noise alone."""

    machine: str
    kind: str
    index: int
    attributes: dict[str, str]
    seed_key: tuple[int, ...]
    rel_path: str


def _plan_supplemental(machine: str, count: int, seed: int) -> list[_Supplemental]:
    plans = []
    for kind, group in _SUPPLEMENTAL_GROUP.items():
        for index in range(count):
            key = (_machine_code(machine), group, index)
            rng = np.random.default_rng(clip_seed(seed, key, 0))
            attributes = sample_attributes(machine, "source", rng)
            # numbered from 0001 with an empty attribute tail, as the official clips are
            name = f"section_{SECTION}_{kind}_{index + 1:04d}_.wav"
            plans.append(_Supplemental(machine, kind, index, attributes, key,
                                       f"{machine}/supplemental/{name}"))
    return plans


def _environment(
    background: np.ndarray, speech_snr_db: float | None, sr: int, rng: np.random.Generator
) -> np.ndarray:
    """The environment's noise at unit RMS: the factory background, speech mixed in if asked."""
    env = background
    if speech_snr_db is not None:
        from soundwatch.synth.speech import add_speech

        env = add_speech(env, speech_snr_db, sr, rng)
    return env / max(float(np.sqrt(np.mean(env.astype(np.float64) ** 2))), 1e-12)


def _at_level(y: np.ndarray, rms: float, reference: np.ndarray | None = None) -> np.ndarray:
    """``y`` scaled to ``rms``, peak kept below 0.98.

    The level is measured on ``reference`` (default: ``y``, all channels together).
    """
    ref = y if reference is None else reference
    y = y * (rms / max(float(np.sqrt(np.mean(ref.astype(np.float64) ** 2))), 1e-12))
    peak = float(np.max(np.abs(y)))
    if peak > 0.98:
        y = y * (0.98 / peak)
    return y.astype(np.float32)


def _snr_gain(signal_rms: float, noise_rms: float, snr_db: float) -> float:
    """The gain that puts noise of ``noise_rms`` ``snr_db`` below a signal of ``signal_rms``."""
    return signal_rms / (max(noise_rms, 1e-12) * 10.0 ** (snr_db / 20.0))


def _render_2025(chunk: list[Any], out: str, seed: int, seconds: float, sr: int,
                 snr_db: float, speech_snr_db: float | None) -> int:
    """Worker: the DCASE 2025-layout clips (module level so that it pickles)."""
    root = Path(out)
    for plan in chunk:
        rng = np.random.default_rng(clip_seed(seed, plan.seed_key, 1))
        extra = np.random.default_rng(clip_seed(seed, plan.seed_key, 2))
        if isinstance(plan, _Supplemental):
            machine, background = render_machine_parts(
                plan.machine, "source", plan.attributes, None, 0.0, seconds, sr, rng)
            y = machine if plan.kind == "machine" else _environment(
                background, speech_snr_db, sr, extra)
        else:
            machine, background = render_machine_parts(
                plan.machine, plan.domain, plan.attributes, plan.anomaly, plan.severity,
                seconds, sr, rng)
            env = _environment(background, speech_snr_db, sr, extra)
            snr = snr_db if plan.domain == "source" else snr_db - 6.0
            y = machine + _snr_gain(1.0, 1.0, snr) * env
        write_wav(root / plan.rel_path, _at_level(y, CLIP_RMS), sr)
    return len(chunk)


def mix_near_far(
    machine: np.ndarray, env: np.ndarray, near_snr_db: float, far_snr_db: float, sr: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """The two channels of a DCASE 2026-style clip from a machine sound and its environment.

    Near: ``machine + environment`` at ``near_snr_db``. Far: the machine
    :data:`FAR_MACHINE_DB` weaker and :data:`FAR_DELAY_S` later, plus the same environment
    (90 %) and a little of its own (10 %, a shifted copy), at ``far_snr_db``. Each SNR is
    exact: the power of the machine's part over the power of the rest, in its channel.

    Args:
        machine: The machine sound (mono).
        env: The environment's noise (mono, same length).
        near_snr_db: Machine-to-environment ratio at the near microphone.
        far_snr_db: The same at the far microphone.
        sr: Sample rate.
        rng: Random generator (the far microphone's own share of noise).

    Returns:
        float32 ``(frames, 2)``: near, far (not yet scaled to a clip level).
    """
    machine = np.asarray(machine, np.float64)
    env = np.asarray(env, np.float64)
    delay = int(round(FAR_DELAY_S * sr))
    far_machine = np.concatenate([np.zeros(delay), machine[: machine.size - delay]])
    far_machine *= 10.0 ** (FAR_MACHINE_DB / 20.0)
    own = np.roll(env, int(rng.integers(1, max(2, env.size))))
    far_env = 0.9 * env + 0.1 * own

    def rms(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(x * x)))

    near = machine + _snr_gain(rms(machine), rms(env), near_snr_db) * env
    far = far_machine + _snr_gain(rms(far_machine), rms(far_env), far_snr_db) * far_env
    return np.stack([near, far], axis=1).astype(np.float32)


def _render_2026(chunk: list[ClipPlan], out: str, seed: int, seconds: float, sr: int,
                 near_snr_db: float, far_snr_db: float, speech_snr_db: float | None) -> int:
    """Worker: two-channel (near, far) clips (module level so that it pickles)."""
    root = Path(out)
    for plan in chunk:
        rng = np.random.default_rng(clip_seed(seed, plan.seed_key, 1))
        extra = np.random.default_rng(clip_seed(seed, plan.seed_key, 2))
        machine, background = render_machine_parts(
            plan.machine, plan.domain, plan.attributes, plan.anomaly, plan.severity, seconds,
            sr, rng)
        env = _environment(background, speech_snr_db, sr, extra)
        shift = 0.0 if plan.domain == "source" else 3.0  # the target domain: 3 dB noisier
        y = mix_near_far(machine, env, near_snr_db - shift, far_snr_db - shift, sr, extra)
        write_wav(root / plan.rel_path, _at_level(y, CLIP_RMS, reference=y[:, 0]), sr)
    return len(chunk)


def _check_snr(name: str, value: float | None, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(name, f"must be a finite number of dB, got {value!r}")
    if not -60.0 <= value <= 60.0:
        raise ConfigError(name, f"must be between -60 and 60 dB, got {value!r}")
    return float(value)


def _check_speech(speech_snr_db: float | None) -> float | None:
    value = _check_snr("--speech-snr-db", speech_snr_db, allow_none=True)
    if value is not None:
        from soundwatch.synth.speech import ESPEAK, espeak_available

        if not espeak_available():
            raise ConfigError("--speech-snr-db", f"needs {ESPEAK}; install it with "
                              "`apt-get install espeak-ng`")
    return value


def _write(
    out: Path, layout: str, params: dict[str, Any], names: list[str], plans: list[ClipPlan],
    extra_plans: list[_Supplemental], frames: int, sr: int, workers: int | None, progress: bool,
    render: Any, args: tuple[Any, ...], counts: Sequence[int], extra_summary: dict[str, Any],
) -> Path:
    n_workers = resolve_workers(workers)
    claim_output(out, params)
    todo: list[Any] = [*plans, *extra_plans]
    splits = ("train", "test", "supplemental")
    write_clips(out, todo, (out / m / s for m in names for s in splits), frames, sr, render,
                args, n_workers, progress, f"synth {layout}")
    return finish_set(out, "soundwatch.synth.recent", RECENT_GENERATOR_VERSION, layout, params,
                      names, plans, counts, len(todo), extra_summary)


def _params(layout: str, names: list[str], counts: Sequence[int], seconds: float, sr: int,
            seed: int, **extra: Any) -> dict[str, Any]:
    """A recent-layout set's parameters (recorded in ``dataset.json``), ``extra`` in the middle."""
    return {
        "generator_version": RECENT_GENERATOR_VERSION, "layout": layout,
        "machines": names, "train_source": counts[0], "train_target": counts[1],
        "test_per_group": counts[2], **extra, "seconds": seconds, "sr": sr, "seed": seed,
    }


def synth_dcase2025(
    out: str | Path,
    machines: str | int | Sequence[str] | None = None,
    train_source: int = 990,
    train_target: int = 10,
    test_per_group: int = 50,
    supplemental: int = 100,
    snr_db: float = 10.0,
    speech_snr_db: float | None = None,
    seconds: float = 10.0,
    sr: int = 16000,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = False,
) -> Path:
    """Write a synthetic set in the DCASE 2025 Task 2 layout, supplementary clips included.

    ``OUT/<machine>/{train,test}/`` as :func:`~soundwatch.synth.devset.synth_machines`
    (DCASE 2024/2025 names), plus ``OUT/<machine>/supplemental/section_00_machine_NNNN_.wav``
    (the machine alone, no background) and ``section_00_noise_NNNN_.wav`` (the
    background alone), ``attributes_00.csv``, ``synth_manifest.csv`` and ``dataset.json``.
    Resumable, parallel and deterministic like every synth writer.

    Args:
        out: Output folder.
        machines: As :func:`~soundwatch.synth.devset.synth_machines`.
        train_source: Normal source-domain training clips per machine type.
        train_target: Normal target-domain training clips per machine type.
        test_per_group: Test clips per (domain, normal/anomaly) group.
        supplemental: Clean-machine clips and as many noise-only clips per machine type
            (0: no ``supplemental`` folder).
        snr_db: Machine-to-background ratio of the source domain (the target domain's
            is 6 dB lower).
        speech_snr_db: If given, synthesised speech (espeak-ng) is part of the
            environment, this many dB below the background.
        seconds: Clip length.
        sr: Sample rate.
        seed: Dataset seed.
        workers: Processes (``None``: ``os.cpu_count()``).
        progress: Show a progress bar.

    Returns:
        The output folder.

    Raises:
        ConfigError: Bad parameters, espeak-ng missing when speech is asked for, or
            ``out`` holds a dataset with other parameters.
    """
    out = Path(out)
    names, counts, seconds, sr, seed = check_set_params(machines, train_source, train_target,
                                                        test_per_group, seconds, sr, seed)
    supplemental = _check_count("--supplemental", supplemental)
    snr = _check_snr("--snr-db", snr_db)
    speech = _check_speech(speech_snr_db)
    params = _params("dcase2025", names, counts, seconds, sr, seed, supplemental=supplemental,
                     snr_db=snr, speech_snr_db=speech)
    plans = [p for m in names for p in plan_machine(m, counts, seed)]
    extra = [p for m in names for p in _plan_supplemental(m, supplemental, seed)]
    return _write(out, "dcase2025", params, names, plans, extra, int(round(seconds * sr)), sr,
                  workers, progress,
                  _render_2025, (seed, seconds, sr, snr, speech), counts,
                  {"supplemental": {m: {"machine": supplemental, "noise": supplemental}
                                    for m in names}})


def synth_dcase2026(
    out: str | Path,
    machines: str | int | Sequence[str] | None = None,
    train_source: int = 990,
    train_target: int = 10,
    test_per_group: int = 50,
    near_snr_db: float = 6.0,
    far_snr_db: float = -6.0,
    speech_snr_db: float | None = None,
    seconds: float = 10.0,
    sr: int = 16000,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = False,
) -> Path:
    """Write a synthetic two-channel set in the DCASE 2026 Task 2 layout.

    Same folders and names as the DCASE 2024/2025 layout; every WAV holds two channels
    recorded "at the same time": channel 0 the near microphone (machine plus environment
    at ``near_snr_db``), channel 1 the far one (the machine 12 dB weaker and 4 ms later,
    the same environment plus a little of its own, at ``far_snr_db``). The target
    domain's environment is 3 dB louder on both. SNRs are exact: machine power over
    environment power within each channel.

    Args:
        out: Output folder.
        machines: As :func:`~soundwatch.synth.devset.synth_machines`.
        train_source: Normal source-domain training clips per machine type.
        train_target: Normal target-domain training clips per machine type.
        test_per_group: Test clips per (domain, normal/anomaly) group.
        near_snr_db: Machine-to-environment ratio at the near microphone (source domain).
        far_snr_db: The same at the far microphone (lower: more noise, less machine).
        speech_snr_db: If given, synthesised speech (espeak-ng) is part of the
            environment, this many dB below the background.
        seconds: Clip length (DCASE 2026 clips are 6, 10 or 16 s).
        sr: Sample rate.
        seed: Dataset seed.
        workers: Processes (``None``: ``os.cpu_count()``).
        progress: Show a progress bar.

    Returns:
        The output folder.

    Raises:
        ConfigError: Bad parameters (``far_snr_db`` above ``near_snr_db`` among them),
            espeak-ng missing when speech is asked for, or ``out`` holds a dataset with
            other parameters.
    """
    out = Path(out)
    names, counts, seconds, sr, seed = check_set_params(machines, train_source, train_target,
                                                        test_per_group, seconds, sr, seed)
    near = float(_check_snr("--near-snr-db", near_snr_db) or 0.0)
    far = float(_check_snr("--far-snr-db", far_snr_db) or 0.0)
    if far > near:
        raise ConfigError("--far-snr-db", f"the far microphone carries more noise: must not "
                          f"exceed --near-snr-db ({far:g} > {near:g})")
    speech = _check_speech(speech_snr_db)
    params = _params("dcase2026", names, counts, seconds, sr, seed, near_snr_db=near,
                     far_snr_db=far, speech_snr_db=speech)
    plans = [p for m in names for p in plan_machine(m, counts, seed)]
    return _write(out, "dcase2026", params, names, plans, [], int(round(seconds * sr)), sr,
                  workers, progress,
                  _render_2026, (seed, seconds, sr, near, far, speech),
                  counts, {"channels": ["near", "far"],
                           "far_machine_db": FAR_MACHINE_DB, "far_delay_s": FAR_DELAY_S})
