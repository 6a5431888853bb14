"""The Typer application object that every command module registers on."""

from __future__ import annotations

import sys
from typing import Any

import typer

app = typer.Typer(
    name="soundwatch",
    help="Anomalous sound detection for machines: inspect data, synthesise, train, score, "
    "evaluate and report.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _clean_metavars() -> None:
    """Show no type after flags (``--ci``, not ``--ci <bool>``) and ``<path>`` for lists.

    Typer prints every parameter's Python type as its metavar; for an on/off flag that
    reads as if it took a value, and a repeatable one reads ``<list[str]>``.
    """
    from typer import core

    for cls in (getattr(core, "_TyperParameter", None), getattr(core, "TyperOption", None)):
        original = getattr(cls, "display_type_rich", None) if cls is not None else None
        if original is None or getattr(original, "_soundwatch", False):
            continue

        def display_type_rich(self: Any, ctx: Any, _original: Any = original) -> str | None:
            if self.metavar is None and (getattr(self, "is_flag", False)
                                         or getattr(self, "count", False)):
                return None
            shown = _original(self, ctx)
            if isinstance(shown, str) and shown.startswith("<list[") and "]>" in shown:
                return f"<{shown[6:shown.index(']>')].lower()}>{shown[shown.index(']>') + 2:]}"
            return shown

        display_type_rich._soundwatch = True  # type: ignore[attr-defined]
        cls.display_type_rich = display_type_rich  # type: ignore[union-attr]


_clean_metavars()


def _version(value: bool) -> None:
    if value:
        from soundwatch import __version__

        typer.echo(f"soundwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True,
                                help="More log lines (-v: info, -vv: debug)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Errors only, no warnings."),
) -> None:
    """Anomalous sound detection for machines: inspect, synthesise, train, score, evaluate."""
    import logging

    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[
        min(verbose, 2)]
    logging.getLogger().setLevel(level)
    logging.getLogger("soundwatch").setLevel(level)
    # progress lines (when stderr is not a terminal) show unless --quiet
    logging.getLogger("soundwatch.progress").setLevel(logging.ERROR if quiet else logging.INFO)


def make_console(**kwargs: Any) -> Any:
    """A rich Console for command output; 100 columns when stdout is not a terminal.

    Rich assumes 80 columns for pipes and files, which cuts the results tables short.
    """
    import shutil

    from rich.console import Console

    if not sys.stdout.isatty():
        kwargs.setdefault("width", max(100, shutil.get_terminal_size((100, 24)).columns))
    return Console(**kwargs)
