"""The Ray backend: one training task per machine type; batch scoring with Ray Data actors."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundwatch.datasets.checks import check_clips
from soundwatch.datasets.clip import Clip
from soundwatch.detectors.loading import load_run_detector, run_context_for
from soundwatch.errors import AudioError, ConfigError, SoundwatchError
from soundwatch.pipeline.machines import TrainJob, record_machine, train_machine
from soundwatch.runs import Run
from soundwatch.scale import RaySettings, require_ray, usable_cores

if TYPE_CHECKING:
    import numpy as np

    from soundwatch.datasets.clip import Clip
    from soundwatch.pipeline.executor import Remote
    from soundwatch.runs import Run

__all__ = ["RayExecutor", "ScoreActor", "ray_session", "score_on_ray", "train_on_ray"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def ray_session(settings: RaySettings) -> Iterator[Any]:
    """Connect to Ray for the duration of a command; yield the ``ray`` module.

    Reuses a Ray instance this process already joined (and leaves it running); else
    connects to ``settings.address`` or starts a local instance with
    :func:`~soundwatch.scale.usable_cores` CPUs and no dashboard, and shuts it down after.

    Raises:
        ConfigError: Ray missing, or no Ray cluster at ``settings.address``.
    """
    import signal

    ray = require_ray()
    started = False
    # ray.init installs its own SIGTERM/SIGINT handlers (sys.exit); soundwatch's
    # "interrupted" handling must come back once the Ray session ends
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    if not ray.is_initialized():  # type: ignore[attr-defined]
        quiet = {"logging_level": logging.WARNING, "log_to_driver": True}
        try:
            if settings.address:
                ray.init(address=settings.address, **quiet)  # type: ignore[attr-defined]
            else:
                ray.init(num_cpus=usable_cores(), include_dashboard=False,  # type: ignore[attr-defined]
                         **quiet)
        except ConnectionError as exc:
            raise ConfigError("--address", f"no Ray cluster at {settings.address!r} "
                              f"({' '.join(str(exc).split())[:160]})") from exc
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()  # type: ignore[attr-defined]
            for sig, handler in handlers.items():
                if handler is not None:
                    signal.signal(sig, handler)


def _reason(exc: BaseException) -> str:
    """One line saying why a Ray task failed (the user-facing error when it is one)."""
    cause = getattr(exc, "cause", None) or exc
    if isinstance(cause, SoundwatchError):
        return str(cause)
    text = " ".join(str(cause).split()) or type(cause).__name__
    if getattr(exc, "cause", None) is None and type(exc).__name__ != type(cause).__name__:
        return f"{type(exc).__name__}: {text[:300]}"
    return f"{type(cause).__name__}: {text[:300]}"


def _train_task(job: TrainJob, machine: str, clips: Sequence[Clip]) -> Any:
    """Body of a training task (runs in a Ray worker)."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return train_machine(job, machine, clips)


def train_on_ray(
    run: Run,
    job: TrainJob,
    work: Mapping[str, Sequence[Clip]],
    settings: RaySettings,
    on_machine: Callable[[str, str], None] | None = None,
) -> dict[str, str]:
    """Train machine types as Ray tasks; record each finished one in the driver.

    Each task runs :func:`soundwatch.pipeline.train_machine` (which writes only its
    machine type's files into the run folder, so the folder must be reachable by every
    node: a shared file system); the driver calls :func:`soundwatch.pipeline.record_machine`
    as results arrive. A failed task does not stop the others.

    Args:
        run: The run (written by the driver only).
        job: The shared training settings.
        work: ``machine -> training clips`` to train.
        settings: Where and with which resources.
        on_machine: ``on_machine(machine, event)`` with ``"start"`` (submitted),
            ``"done"`` and ``"failed"``.

    Returns:
        ``machine -> reason`` of the failed machine types (empty when all succeeded).
    """
    failures: dict[str, str] = {}
    if not work:
        return failures
    with ray_session(settings) as ray:
        task = ray.remote(num_cpus=settings.cpus_per_task, num_gpus=settings.gpus_per_task,
                          max_retries=0)(_train_task)
        job_ref = ray.put(job)
        refs: dict[Any, str] = {}
        for machine, clips in work.items():
            refs[task.remote(job_ref, machine, list(clips))] = machine
            if on_machine:
                on_machine(machine, "start")
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            machine = refs[done[0]]
            try:
                result = ray.get(done[0])
            except Exception as exc:  # noqa: BLE001 - any task failure is reported by machine
                failures[machine] = _reason(exc)
                if on_machine:  # the caller reports it (the CLI: one line per machine)
                    on_machine(machine, "failed")
                else:
                    log.error("%s: %s", machine, failures[machine])
                continue
            record_machine(run, result)
            if on_machine:
                on_machine(machine, "done")
    return failures


class ScoreActor:
    """Ray Data actor: scores batches of clips with the run's detectors, each loaded once.

    A batch (``{"i", "machine", "path"}`` columns) may hold clips of several machine
    types; each group is scored with :meth:`Detector.score` exactly as the local backend
    scores them. Unreadable clips come back as rows with a ``status``: ``"skipped"``
    (with ``skip_bad``) or ``"failed"`` (the batch's other clips of that machine unscored).

    Args:
        run_root: The run folder.
        device: Device override (``None``: the detectors' own).
        skip_bad: Skip unreadable clips (checked as the local backend does).
    """

    def __init__(self, run_root: str, device: str | None = None, skip_bad: bool = False) -> None:
        import os

        os.environ.setdefault("OMP_NUM_THREADS", "1")

        self.run = Run(run_root)
        self.context = run_context_for(self.run, device=device)  # the run's channel
        self.skip_bad = skip_bad
        self.detectors: dict[str, Any] = {}

    def detector(self, machine: str) -> Any:
        """The machine type's detector, loaded on first use."""
        det = self.detectors.get(machine)
        if det is None:
            det = load_run_detector(self.run, machine)
            self.detectors[machine] = det
        return det

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Score one batch; return ``i``, ``score``, ``status``, ``where``, ``reason``."""
        import numpy as np


        index = np.asarray(batch["i"], dtype=np.int64)
        machines = np.asarray(batch["machine"]).astype(str)
        paths = np.asarray(batch["path"]).astype(str)
        n = len(index)
        scores = np.full(n, math.nan)
        status = np.array(["ok"] * n, dtype=object)
        where = np.array([""] * n, dtype=object)
        reason = np.array([""] * n, dtype=object)
        for machine in sorted(set(machines.tolist())):
            rows = np.flatnonzero(machines == machine)
            clips = [Clip(Path(paths[k]), machine) for k in rows]
            good, skipped = check_clips(clips, self.skip_bad, self.context.channel)
            bad = {s["path"]: s["reason"] for s in skipped}
            keep = [k for k, c in zip(rows, clips, strict=True) if str(c.path) not in bad]
            for k in rows:
                if paths[k] in bad:
                    status[k], where[k], reason[k] = "skipped", paths[k], bad[paths[k]]
            if not good:
                continue
            try:
                values = self.detector(machine).score(good, self.context)
            except AudioError as exc:
                for k in keep:
                    status[k], where[k], reason[k] = "failed", exc.where, exc.reason
                continue
            scores[keep] = np.asarray(values, dtype=np.float64)
        return {"i": index, "score": scores, "status": status, "where": where, "reason": reason}


def score_on_ray(
    run: Run,
    work: Mapping[str, Sequence[Clip]],
    settings: RaySettings,
    *,
    skip_bad: bool = False,
    device: str | None = None,
    progress: bool = False,
) -> dict[str, tuple[list[Clip], list[dict[str, str]], np.ndarray]]:
    """Score clips with Ray Data: files read and scored in parallel by actors.

    The clips become a Ray dataset of ``(i, machine, path)`` rows; ``map_batches`` with
    :class:`ScoreActor` (one detector load per machine type per actor) scores them. Only
    the scores come back; the caller writes the tables (the local backend's code).

    Args:
        run: The run.
        work: ``machine -> clips`` to score.
        settings: Where, with which resources, how many actors and clips per batch.
        skip_bad: Skip unreadable clips (else the first one raises).
        device: Device override for the detectors.
        progress: Show Ray Data's progress bars.

    Returns:
        ``machine -> (scored clips, skipped {"path", "reason"}, scores)`` in the order
        of ``work``'s clips.

    Raises:
        AudioError: An unreadable clip (without ``skip_bad``).
    """
    import numpy as np

    items: list[tuple[str, Clip]] = [(m, c) for m, clips in work.items() for c in clips]
    if not items:
        return {}
    rows = [{"i": i, "machine": m, "path": str(c.path)} for i, (m, c) in enumerate(items)]
    with ray_session(settings) as ray:
        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = progress
        if not progress:  # its per-dataset INFO lines
            logging.getLogger("ray.data").setLevel(logging.WARNING)
        batches = math.ceil(len(rows) / settings.batch_size)
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        actors = settings.actors or max(1, int(cpus // settings.cpus_per_task))
        actors = max(1, min(actors, batches))
        ds = ray.data.from_items(rows, override_num_blocks=max(1, min(batches, 4 * actors)))
        ds = ds.map_batches(
            ScoreActor,
            fn_constructor_kwargs={"run_root": str(run.root), "device": device,
                                   "skip_bad": skip_bad},
            batch_size=settings.batch_size, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=settings.cpus_per_task,
            num_gpus=settings.gpus_per_task or None,
        )
        out = ds.take_all()
    by_index = {int(r["i"]): r for r in out}
    if len(by_index) != len(items):  # pragma: no cover - would be a Ray Data bug
        raise RuntimeError(f"Ray Data returned {len(by_index)} of {len(items)} clips")
    for i in range(len(items)):  # the first unreadable clip, as the local backend reports it
        r = by_index[i]
        if r["status"] == "failed":
            raise AudioError(str(r["where"]), str(r["reason"]))
    result: dict[str, tuple[list[Clip], list[dict[str, str]], np.ndarray]] = {}
    for i, (machine, clip) in enumerate(items):
        good, skipped, values = result.setdefault(machine, ([], [], []))  # type: ignore[arg-type]
        r = by_index[i]
        if r["status"] == "skipped":
            skipped.append({"path": str(clip.path), "reason": str(r["reason"])})
        else:
            good.append(clip)
            values.append(float(r["score"]))  # type: ignore[attr-defined]
    return {m: (g, s, np.asarray(v, dtype=np.float64)) for m, (g, s, v) in result.items()}


class RayExecutor:
    """The pipeline's executor on Ray (``--backend ray``): see :mod:`soundwatch.scale`.

    Training: one Ray task per machine type, a failed one does not stop the others.
    Scoring: the clips of the machine types not yet scored go through Ray Data actors.

    Args:
        settings: Where and with which resources (default: a local Ray instance).

    Raises:
        ConfigError: Ray is not installed (one line with the install hint).
    """

    name = "ray"
    any_channel = False  # the actors read the run's channel
    scores_ahead = True

    def __init__(self, settings: RaySettings | None = None) -> None:
        require_ray()
        self.settings = settings or RaySettings()

    def train_machines(self, run: Run, job: TrainJob, work: Mapping[str, Sequence[Clip]],
                       on_machine: Callable[[str, str], None] | None = None
                       ) -> dict[str, str]:
        """Train as Ray tasks (:func:`train_on_ray`); ``machine -> reason`` of failures."""
        return train_on_ray(run, job, work, self.settings, on_machine)

    def score_machines(self, run: Run, work: Mapping[str, Sequence[Clip]], *,
                       skip_bad: bool, device: str | None, progress: bool) -> Remote:
        """Score with Ray Data (:func:`score_on_ray`)."""
        return score_on_ray(run, work, self.settings, skip_bad=skip_bad, device=device,
                            progress=progress)
