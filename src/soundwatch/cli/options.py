"""Typer options several commands share, defined once (``--channel`` is in ``channel_option``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

__all__ = [
    "AlertK",
    "AlertN",
    "Cooldown",
    "QuietOption",
    "ThresholdOption",
    "WebhookOption",
    "ray_options",
]

QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
"""``--quiet`` of the commands that draw a progress bar (synth, download)."""

AlertK = Annotated[int, typer.Option(
    "--alert-k", help="Alert when K of the last --alert-n scored clips of a machine are "
    "anomalous (sensor faults and errors do not count).")]
"""``--alert-k`` of ``watch`` and ``serve``."""

AlertN = Annotated[int, typer.Option("--alert-n", help="The alert window, in scored clips.")]
"""``--alert-n`` of ``watch`` and ``serve``."""

Cooldown = Annotated[float, typer.Option(
    "--cooldown", help="Seconds after an alert during which the same machine raises no "
    "other.")]
"""``--cooldown`` of ``watch`` and ``serve``."""

WebhookOption = Annotated[str | None, typer.Option(
    "--webhook", help="URL that gets a JSON POST for each anomalous clip.")]
"""``--webhook`` of ``watch`` and ``serve``."""

ThresholdOption = Annotated[str | None, typer.Option(
    "--threshold", help="Alarm level instead of the run's saved one (refitted on its "
    "out-of-fold training scores): far:RATE (target false-alarm rate on normal clips), "
    "fixed:V, gamma:Q or contamination:Q. Default: the rule fixed at training.",
    show_default=False)]
"""``--threshold`` of ``watch`` and ``serve``."""


def ray_options(backend_help: str, addresses: str, unit: str) -> tuple[Any, Any, Any, Any]:
    """``--backend``, ``--address``, ``--cpus-per-task``, ``--gpus-per-task`` of a command.

    Args:
        backend_help: Help of ``--backend`` (what ``local`` and ``ray`` do for the command).
        addresses: The address forms the command accepts, e.g. ``"auto, HOST:PORT"``.
        unit: What one Ray task is for the command, e.g. ``"scoring actor"``.

    Returns:
        The four option types, in that order (``Annotated`` aliases for a signature).
    """
    return (
        Annotated[str, typer.Option("--backend", help=backend_help)],
        Annotated[str | None, typer.Option(
            "--address", help=f"Ray cluster address ({addresses}); default: a local Ray "
            "instance.", show_default=False)],
        Annotated[float, typer.Option("--cpus-per-task", help=f"Ray: CPUs per {unit}.")],
        Annotated[float, typer.Option("--gpus-per-task", help=f"Ray: GPUs per {unit}.")],
    )
