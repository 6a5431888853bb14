"""Loading a run's saved detectors with this command's run settings (above ``runs``).

:class:`soundwatch.runs.Run` knows only paths; loading a detector needs the detectors
package, which sits above ``runs`` in the layers (docs/architecture.md), so it lives here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from soundwatch.detectors.base import Detector
from soundwatch.errors import DetectorError
from soundwatch.training.context import RunContext

if TYPE_CHECKING:
    from soundwatch.runs import Run

__all__ = ["load_run_detector", "set_runtime"]


def load_run_detector(run: Run, machine: str) -> Detector:
    """Load the saved detector of one machine type of a run (reading audio as it trained).

    Args:
        run: An open run.
        machine: One of its machine types.

    Raises:
        DetectorError: No detector saved for that machine.
    """
    if not run.has_detector(machine):
        trained = ", ".join(run.machines()) or "none"
        raise DetectorError(run.root, f"no detector for machine {machine!r} (trained: {trained})")
    det = Detector.load(run.detector_dir(machine))
    det.set_context(RunContext(channel=run.channel()))  # read audio as it trained
    return det


def set_runtime(det: Detector, *, device: str | None, progress: bool,
                channel: int | str | None = None) -> None:
    """Give a loaded detector the run settings of this command (never saved).

    ``channel`` ``None`` keeps the one the detector was given (the run's, by
    :func:`load_run_detector`).
    """
    if channel is None:
        channel = det._context(None).channel
    settings = {"device": device, "progress": progress, "channel": channel}
    det.set_context(RunContext(**{k: v for k, v in settings.items() if v is not None}))
