"""The ``encoders`` command: every registered encoder, where its weights come from, licence."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from soundwatch.cli.app import app

__all__ = ["encoders"]


@app.command()
def encoders(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the encoders with where their weights come from, their licence and what they need.

    Pretrained weights are never downloaded by soundwatch itself except through the Hugging
    Face cache (hf-*, unless HF_HUB_OFFLINE=1); docs/detectors.md shows the commands.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from soundwatch.detectors.encoder_sources import encoder_sources

    data = encoder_sources()
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    table = Table(title="encoders", title_justify="left")
    for column in ("name", "weights", "licence", "needs"):
        table.add_column(column, style="bold" if column == "name" else None, overflow="fold")
    for name, entry in data.items():
        table.add_row(escape(name), escape(entry["weights"]), escape(entry["licence"]),
                      escape(entry["needs"]))
    Console(highlight=False).print(table)
