"""Loading a run's saved detectors, and the run context to use them with (above ``runs``).

:class:`soundwatch.runs.Run` knows only paths; loading a detector needs the detectors
package, which sits above ``runs`` in the layers (docs/architecture.md), so it lives here.
A loaded detector keeps no run settings: a caller passes :func:`run_context_for`'s
:class:`~soundwatch.training.context.RunContext` (the run's audio channel, this command's
device...) to ``score``/``score_signals``/``embed`` explicitly.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from soundwatch.detectors.base import Detector
from soundwatch.errors import DetectorError
from soundwatch.training.context import RunContext

if TYPE_CHECKING:
    from soundwatch.runs import Run

__all__ = ["load_run_detector", "run_context_for"]


def load_run_detector(run: Run, machine: str) -> Detector:
    """Load the saved detector of one machine type of a run.

    Score with :func:`run_context_for`'s context, so that audio files are read as the
    run trained (its channel).

    Args:
        run: An open run.
        machine: One of its machine types.

    Raises:
        DetectorError: No detector saved for that machine.
    """
    if not run.has_detector(machine):
        trained = ", ".join(run.machines()) or "none"
        raise DetectorError(run.root, f"no detector for machine {machine!r} (trained: {trained})")
    return Detector.load(run.detector_dir(machine))


def run_context_for(run: Run, **settings: Any) -> RunContext:
    """The run context for using a run's detectors: the run's channel, this command's settings.

    Args:
        run: An open run (its ``config.yaml`` gives the audio channel it trained on).
        **settings: :class:`~soundwatch.training.context.RunContext` fields of this command
            (``device``, ``progress``, ``cache_dir``, ``channel``...); ``None`` keeps the
            default (for ``channel``: the run's). Paths become strings.
    """
    given = {k: (os.fspath(v) if isinstance(v, os.PathLike) else v)
             for k, v in settings.items() if v is not None}
    return RunContext(**{"channel": run.channel(), **given})
