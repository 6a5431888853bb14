"""``soundwatch download``: fetch a public data set (DCASE 2020-2026 Task 2, MIMII)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soundwatch.cli.app import app, make_console
from soundwatch.cli.options import QuietOption


@app.command("download")
def download(
    name: Annotated[
        str | None,
        typer.Argument(help="Data set, e.g. dcase2025-dev, dcase2025-add, dcase2025-eval, "
                       "dcase2024-truth, mimii (see --list)."),
    ] = None,
    machine: Annotated[
        list[str] | None,
        typer.Option("--machine", "-m", help="Only this machine type (repeat, or comma-separated; "
                     "default: all)."),
    ] = None,
    directory: Annotated[
        Path, typer.Option("--dir", help="Where data sets live (the set goes to a sub-folder).")
    ] = Path("data"),
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="Download from this mirror (<url>/<name>/<file>) instead "
                     "of the official record (also: SOUNDWATCH_DOWNLOAD_URL)."),
    ] = None,
    keep_archives: Annotated[
        bool, typer.Option("--keep-archives", help="Keep the zip files after unpacking.")
    ] = False,
    list_sets: Annotated[
        bool, typer.Option("--list", help="List the data sets, their records and checksums.")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Download, verify (published MD5, size, zip CRCs) and unpack a public data set; resumes.

    Example: soundwatch download dcase2025-dev --machine fan --dir data
    """
    from soundwatch.datasets.download import describe_sources, download_dataset
    from soundwatch.errors import ConfigError

    if list_sets:
        from rich.table import Table

        table = Table("name", "description", "archives", "checksums", "record")
        for row in describe_sources():
            table.add_row(row["name"], row["description"], str(row["archives"]),
                          row["checksums"], row["record"])
        for column in table.columns:
            column.overflow = "fold"
        make_console().print(table)
        return
    if name is None:
        raise ConfigError("NAME", "give a data set name (soundwatch download --list shows them)")
    machines = [m.strip() for item in machine or [] for m in item.split(",") if m.strip()]
    result = download_dataset(name, directory, machines or None, base_url, keep_archives,
                              progress=not quiet)
    done = ", ".join(result.unpacked) or "nothing new"
    typer.echo(f"{name}: {done}"
               + (f" ({len(result.skipped)} archive(s) already there)" if result.skipped else ""))
    typer.echo(f"data set: {result.folder}")
    typer.echo(f"next: soundwatch inspect {result.folder}")
