"""The ``refit`` command: new scorers for a trained run's networks (a thin wrapper)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soundwatch.cli.app import app

__all__ = ["refit"]


@app.command()
def refit(
    run: Annotated[Path, typer.Argument(help="A run folder written by `soundwatch train`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The new run folder.")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Change key=value: scorer, scorer__*, pooling..."),
    ] = None,
    machine: Annotated[
        list[str] | None, typer.Option("--machine", "-m", help="Only these machine types.")
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="Dataset root (default: the run's).")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not cache features.")] = False,
) -> None:
    """Refit the scorer of every detector of RUN into a new run, keeping the trained networks.

    Example: ``soundwatch refit runs/ae -p scorer=selective_mahalanobis --out runs/ae-maha``
    (the DCASE baseline's ``--score MAHALA`` on the same trained autoencoder).
    """
    from soundwatch.config import parse_params
    from soundwatch.pipeline import refit as refit_run

    changes = parse_params(param or [])
    new = refit_run(run, out, changes, machines=machine, data=data, no_cache=no_cache)
    typer.echo(f"refitted {', '.join(sorted(new.machines()))} -> {new.root}")
