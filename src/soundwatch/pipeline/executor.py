"""Where a run's per-machine work runs: :class:`LocalExecutor` here, or one given by the caller.

:func:`~soundwatch.pipeline.train` and :func:`~soundwatch.pipeline.score` take an
``executor``; :class:`soundwatch.scale.RayExecutor` (one Ray task per machine type, Ray Data
batch scoring) is the other one. The pipeline never imports ``scale``: the CLI, above both,
chooses (``--backend``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from soundwatch.pipeline.machines import TrainJob, record_machine, train_machine

if TYPE_CHECKING:
    import numpy as np

    from soundwatch.datasets.clip import Clip
    from soundwatch.runs import Run

__all__ = ["Executor", "LocalExecutor", "Remote"]

Remote = dict[str, tuple[list["Clip"], list[dict[str, str]], "np.ndarray"]]
"""``machine -> (readable clips, skipped files, scores)`` an executor scored elsewhere."""


class Executor(Protocol):
    """Runs the per-machine work of a training or a scoring.

    Attributes:
        name: Its ``--backend`` name (recorded nowhere; for messages).
        any_channel: Whether it can score another audio channel than the run's.
        scores_ahead: Whether :meth:`score_machines` scores the clips (else the pipeline
            scores each machine type itself, one detector loaded at a time).
    """

    name: str
    any_channel: bool
    scores_ahead: bool

    def train_machines(self, run: Run, job: TrainJob, work: Mapping[str, Sequence[Clip]],
                       on_machine: Callable[[str, str], None] | None = None
                       ) -> dict[str, str]:
        """Train and record each machine type of ``work``; ``machine -> reason`` of failures."""
        ...

    def score_machines(self, run: Run, work: Mapping[str, Sequence[Clip]], *,
                       skip_bad: bool, device: str | None, progress: bool) -> Remote:
        """Score ``work`` ahead of the pipeline's loop (empty: the loop scores them itself)."""
        ...


class LocalExecutor:
    """This process, one machine type after the other; a failure stops the command."""

    name = "local"
    any_channel = True
    scores_ahead = False

    def train_machines(self, run: Run, job: TrainJob, work: Mapping[str, Sequence[Clip]],
                       on_machine: Callable[[str, str], None] | None = None
                       ) -> dict[str, str]:
        """Train and record each machine type in turn (see :class:`Executor`)."""
        for machine, clips in work.items():
            if on_machine:
                on_machine(machine, "start")
            record_machine(run, train_machine(job, machine, clips))
            if on_machine:
                on_machine(machine, "done")
        return {}

    def score_machines(self, run: Run, work: Mapping[str, Sequence[Clip]], *,
                       skip_bad: bool, device: str | None, progress: bool) -> Remote:
        """Nothing ahead: the pipeline scores each machine type with its detector in turn."""
        del run, work, skip_bad, device, progress
        return {}

