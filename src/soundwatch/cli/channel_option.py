"""The ``--channel N|mean`` option every command that reads audio shares."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["ChannelOption", "TrainChannelOption", "channel_value"]

ChannelOption = Annotated[
    str | None,
    typer.Option("--channel", metavar="N|mean", show_default=False,
                 help="Audio channel of multi-channel files: an index (0 the first, -1 the "
                 "last) or mean (all mixed down); default: the one the run trained on."),
]
"""``--channel`` of the commands that use a trained run (score, watch, serve, export...)."""

TrainChannelOption = Annotated[
    str | None,
    typer.Option("--channel", metavar="N|mean", show_default=False,
                 help="Audio channel of multi-channel files: an index (0 the first, -1 the "
                 "last) or mean (all mixed down); default 0. Recorded in the run: score, "
                 "watch, serve and export read the same one."),
]
"""``--channel`` of ``train``."""


def channel_value(text: str | None) -> int | str | None:
    """The parsed ``--channel`` (``None`` when not given).

    Raises:
        ConfigError: Neither an integer nor ``mean``.
    """
    if text is None:
        return None
    from soundwatch.config import parse_channel

    return parse_channel(text, "--channel")
