"""``soundwatch history``: check, back up, restore and prune the monitoring history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soundwatch.cli.app import app
from soundwatch.errors import ConfigError

history_app = typer.Typer(help="Check, back up, restore and prune the monitoring history "
                          "(the SQLite database of serve and watch).", no_args_is_help=True)
app.add_typer(history_app, name="history")

_DB_HELP = "History database, or a run folder (its monitor/history.sqlite)."


def _db(path: Path) -> Path:
    from soundwatch.monitor.history import default_db

    return default_db(path) if path.is_dir() else path


@history_app.command("check")
def check(db: Annotated[Path, typer.Argument(help=_DB_HELP)]) -> None:
    """Verify the database (PRAGMA integrity_check); exit 1 when it is damaged."""
    from soundwatch.monitor.health import integrity_problem

    path = _db(db)
    if not path.is_file():
        raise ConfigError(path, "no such history database")
    problem = integrity_problem(path, quick=False)
    if problem is not None:
        typer.echo(f"{path}: DAMAGED: {problem} (restore a backup, or start serve/watch "
                   "to recover its readable rows)")
        raise typer.Exit(1)
    typer.echo(f"{path}: ok")


@history_app.command("backup")
def backup_command(
    db: Annotated[Path, typer.Argument(help=_DB_HELP)],
    out: Annotated[Path, typer.Argument(help="Backup file (or folder: a dated file in it).")],
) -> None:
    """Copy the history to a backup file, consistently, while serve and watch run."""
    from soundwatch.monitor.backup import backup

    count = backup(_db(db), out)
    typer.echo(f"backed up {count} clip(s) to {out}")


@history_app.command("restore")
def restore_command(
    backup_file: Annotated[Path, typer.Argument(help="A file made by soundwatch history backup.")],
    db: Annotated[Path, typer.Argument(help=_DB_HELP)],
) -> None:
    """Replace the history's content by a backup's (checked first; safe while serving)."""
    from soundwatch.monitor.backup import restore

    count = restore(backup_file, _db(db))
    typer.echo(f"restored {count} clip(s) into {_db(db)}")


@history_app.command("prune")
def prune_command(
    db: Annotated[Path, typer.Argument(help=_DB_HELP)],
    keep_days: Annotated[float, typer.Option("--keep-days", help="Keep this many days.")],
) -> None:
    """Delete the clips older than --keep-days (serve --keep-days does it while serving)."""
    import contextlib
    import os

    from soundwatch.monitor.backup import prune_older
    from soundwatch.monitor.history import History

    path = _db(db)
    if not path.is_file():
        raise ConfigError(path, "no such history database")
    with History(path) as history:
        before = history.count()
        for audio in prune_older(history, keep_days):
            with contextlib.suppress(OSError):
                os.unlink(audio)
        after = history.count()
    typer.echo(f"deleted {before - after} clip(s) older than {keep_days:g} day(s); "
               f"{after} kept")
