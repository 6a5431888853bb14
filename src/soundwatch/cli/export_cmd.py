"""``soundwatch export``: a run's detectors as ONNX + arrays, scored without torch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soundwatch.cli.app import app
from soundwatch.cli.channel_option import ChannelOption, channel_value


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run folder written by `soundwatch train`.")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Export folder: one sub-folder per machine type.")],
    machine: Annotated[list[str] | None, typer.Option(
        "--machine", "-m", help="Machine type (repeatable; default: all trained).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
    verify: Annotated[bool, typer.Option(
        "--verify/--no-verify", help="Check the export's scores against torch on synthetic "
        "audio (refused beyond 1e-4 relative).")] = True,
    channel: ChannelOption = None,
) -> None:
    """Export trained detectors to ONNX for soundwatch.runtime (onnxruntime + numpy only)."""
    from soundwatch.export.run import MachineExport, export_run

    def report(result: MachineExport) -> None:
        if result.path is None:
            typer.echo(f"{result.machine}: not exported: {result.reason}")
            return
        check = result.verified
        note = (f" (verified: max relative difference {check['max_rel_diff']:.1e})"
                if check else "")
        typer.echo(f"{result.machine}: {result.path}{note}")

    export_run(run, out, machines=machine, fmt=fmt, verify=verify, on_machine=report,
               channel=channel_value(channel))
