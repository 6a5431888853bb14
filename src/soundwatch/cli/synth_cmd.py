"""``soundwatch synth``: write synthetic data sets (machine sounds, the pink-noise task)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soundwatch.cli.app import app
from soundwatch.cli.options import QuietOption

synth_app = typer.Typer(
    help="Make synthetic data sets: DCASE-layout machine sounds, the pink-noise task.",
    no_args_is_help=True,
)
app.add_typer(synth_app, name="synth")

_Out = Annotated[Path, typer.Argument(help="Output folder (created; rerun to resume).")]
_Seconds = Annotated[float, typer.Option("--seconds", help="Clip length in seconds.")]
_Sr = Annotated[int, typer.Option("--sr", help="Sample rate in Hz.")]
_Seed = Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bytes).")]
_Workers = Annotated[
    int | None, typer.Option("--workers", help="Worker processes (default: CPU count).")
]
_Machines = Annotated[
    str | None,
    typer.Option("--machines", help="Comma-separated machine types (fan,pump,slider,valve,"
                 "gearbox) or a count (first N) (default: all)."),
]
_TrainSource = Annotated[
    int, typer.Option("--train-source", help="Normal source-domain training clips per machine.")
]
_TrainTarget = Annotated[
    int, typer.Option("--train-target", help="Normal target-domain training clips per machine.")
]
_TestPerGroup = Annotated[
    int, typer.Option("--test-per-group",
                      help="Test clips per domain x normal/anomaly group, per machine.")
]
_SpeechSnr = Annotated[
    float | None,
    typer.Option("--speech-snr-db", help="Add synthesised speech (espeak-ng) to the environment, "
                 "this many dB below the background (default: no speech)."),
]


@synth_app.command("machines")
def machines(
    out: _Out,
    machines: _Machines = None,
    train_source: _TrainSource = 990,
    train_target: _TrainTarget = 10,
    test_per_group: _TestPerGroup = 50,
    seconds: _Seconds = 10.0,
    sr: _Sr = 16000,
    seed: _Seed = 0,
    workers: _Workers = None,
    quiet: QuietOption = False,
) -> None:
    """Write a DCASE 2024-layout development set of synthetic machine sounds.

    Example: soundwatch synth machines data/synth --machines fan,valve --train-source 100
    """
    from soundwatch.synth import synth_machines

    root = synth_machines(out, machines, train_source, train_target, test_per_group, seconds,
                          sr, seed, workers, progress=not quiet)
    _done(root)


@synth_app.command("dcase2025")
def dcase2025(
    out: _Out,
    machines: _Machines = None,
    train_source: _TrainSource = 990,
    train_target: _TrainTarget = 10,
    test_per_group: _TestPerGroup = 50,
    supplemental: Annotated[
        int, typer.Option("--supplemental", help="Clean-machine clips and as many noise-only "
                          "clips per machine in <machine>/supplemental/ (0: none).")
    ] = 100,
    snr_db: Annotated[
        float, typer.Option("--snr-db", help="Machine-to-background ratio, source domain "
                            "(target: 6 dB lower).")
    ] = 10.0,
    speech_snr_db: _SpeechSnr = None,
    seconds: _Seconds = 10.0,
    sr: _Sr = 16000,
    seed: _Seed = 0,
    workers: _Workers = None,
    quiet: QuietOption = False,
) -> None:
    """Write a DCASE 2025-layout set with supplementary clean-machine and noise-only clips.

    Example: soundwatch synth dcase2025 data/synth25 --machines fan,valve --supplemental 20
    """
    from soundwatch.synth.recent import synth_dcase2025

    root = synth_dcase2025(out, machines, train_source, train_target, test_per_group,
                           supplemental, snr_db, speech_snr_db, seconds, sr, seed, workers,
                           progress=not quiet)
    _done(root)


@synth_app.command("dcase2026")
def dcase2026(
    out: _Out,
    machines: _Machines = None,
    train_source: _TrainSource = 990,
    train_target: _TrainTarget = 10,
    test_per_group: _TestPerGroup = 50,
    near_snr_db: Annotated[
        float, typer.Option("--near-snr-db", help="Machine-to-environment ratio at the near "
                            "microphone (channel 0), source domain.")
    ] = 6.0,
    far_snr_db: Annotated[
        float, typer.Option("--far-snr-db", help="The same at the far microphone (channel 1).")
    ] = -6.0,
    speech_snr_db: _SpeechSnr = None,
    seconds: _Seconds = 10.0,
    sr: _Sr = 16000,
    seed: _Seed = 0,
    workers: _Workers = None,
    quiet: QuietOption = False,
) -> None:
    """Write a DCASE 2026-layout two-channel set (near, far) with known environmental SNRs.

    Example: soundwatch synth dcase2026 data/synth26 --near-snr-db 0 --far-snr-db -12
    """
    from soundwatch.synth.recent import synth_dcase2026

    root = synth_dcase2026(out, machines, train_source, train_target, test_per_group,
                           near_snr_db, far_snr_db, speech_snr_db, seconds, sr, seed, workers,
                           progress=not quiet)
    _done(root)


@synth_app.command("pink-noise")
def pink_noise(
    out: _Out,
    base: Annotated[
        Path | None,
        typer.Option("--base", help="Folder of WAV base clips (recursive) (default: synthetic "
                     "machine sounds)."),
    ] = None,
    n_train: Annotated[int, typer.Option("--n-train", help="Training clips (both classes).")] = 400,
    n_test: Annotated[int, typer.Option("--n-test", help="Test clips (both classes).")] = 200,
    snr_db: Annotated[
        str, typer.Option("--snr-db", help="Pink-noise SNR in dB: a value (5) or a range (0:10).")
    ] = "0:10",
    seconds: _Seconds = 10.0,
    sr: _Sr = 16000,
    seed: _Seed = 0,
    workers: _Workers = None,
    quiet: QuietOption = False,
) -> None:
    """Write the pink-noise detection task as OUT/{train,test}/{0,1}/*.wav (1 = pink noise).

    Example: soundwatch synth pink-noise data/pink --snr-db 0:10 --n-train 400 --n-test 200
    """
    from soundwatch.synth import synth_pink_noise

    root = synth_pink_noise(out, base, n_train, n_test, snr_db, seconds, sr, seed, workers,
                            progress=not quiet)
    _done(root)


def _done(root: Path) -> None:
    import json

    info = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    typer.echo(f"wrote {info['total_clips']} clips to {root} (see {root / 'dataset.json'})")
