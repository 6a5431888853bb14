"""The ``add-normal`` command: recordings judged normal refit a machine's scorer and threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soundwatch.cli.app import app

__all__ = ["add_normal"]


@app.command("add-normal")
def add_normal(
    run: Annotated[Path, typer.Argument(help="A run folder written by `soundwatch train`.")],
    files: Annotated[list[Path], typer.Argument(help="Recordings judged normal.")],
    machine: Annotated[str, typer.Option("--machine", "-m", help="Their machine type.")],
    data: Annotated[Path | None, typer.Option(
        "--data", help="The run's dataset root, if it moved (default: the one recorded).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not cache features.")] = False,
) -> None:
    """Add recordings judged normal to a machine's normal data; refit its scorer and threshold.

    No network is retrained. The files are copied into RUN/normal/MACHINE/ and run.json
    records the change (file names, SHA-256 digests, thresholds before and after). A running
    `soundwatch serve` uses it after a restart (its page's Mark as normal button refits
    through the service at once).

    Example: ``soundwatch add-normal runs/pump pumpA_2026-01-09.wav --machine pumpA``
    """
    from soundwatch.monitor.feedback import add_normal as add

    change = add(run, machine, files, data=data, no_cache=no_cache)
    for name in change["already"]:
        typer.echo(f"{name}: already added, skipped", err=True)
    if not change["files"]:
        typer.echo(f"{machine}: nothing new to add; threshold {change['threshold_before']:.6g}")
        return
    typer.echo(f"{machine}: {len(change['files'])} recording(s) added as normal; scorer refitted "
               f"on {change['train_clips']} clip(s); threshold {change['threshold_before']:.6g} "
               f"-> {change['threshold_after']:.6g}")
