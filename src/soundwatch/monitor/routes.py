"""The service's trend and feedback endpoints (added to the app by ``create_app``)."""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations.
import threading
from pathlib import Path
from typing import Annotated, Any

from soundwatch.decisions import Decider
from soundwatch.detectors.loading import load_run_detector
from soundwatch.monitor.feedback import add_normal
from soundwatch.monitor.scoring import LoadedMachine
from soundwatch.monitor.service_error import ServiceError
from soundwatch.monitor.trend import daily_trend
from soundwatch.runs import Run

__all__ = ["add_normal_clips", "add_routes"]

_FEEDBACK_LOCK = threading.Lock()  # one refit at a time: each rewrites the run's files


def add_normal_clips(service: Any, machine: str, clip_ids: list[int]) -> dict[str, Any]:
    """Add recorded clips judged normal to a machine's normal data, refit, reload.

    The machine's scorer and threshold are refitted in its run folder
    (:func:`soundwatch.monitor.feedback.add_normal`) and the service scores the next
    clips with them.

    Returns:
        The change recorded in the run, with ``threshold`` (the one now in use).

    Raises:
        ServiceError: 404 unknown machine or clip, or a clip whose audio is no longer
            kept; 400 a clip of another machine or no clip given.
    """
    loaded = service.scorer.machines.get(machine)
    if loaded is None:
        raise ServiceError(404, f"unknown machine type {machine!r}")
    if not clip_ids:
        raise ServiceError(400, "clips: give the ids of the clips judged normal")
    files, names = [], []
    for clip_id in clip_ids:
        record = service.history.get(clip_id)
        if record is None:
            raise ServiceError(404, f"clip {clip_id}: no such clip")
        if record["machine"] != machine:
            raise ServiceError(400, f"clip {clip_id} is a {record['machine']} clip, "
                               f"not {machine}")
        audio = service.history.audio_path(clip_id)
        if not audio or not Path(audio).is_file():
            raise ServiceError(404, f"clip {clip_id}: its audio is no longer kept")
        files.append(audio)
        names.append(record.get("name") or f"clip {clip_id}")
    with _FEEDBACK_LOCK:
        change = add_normal(loaded.run, machine, files, names=names, via="service")
        if change["files"]:
            detector = load_run_detector(Run.open(loaded.run), machine)
            service.scorer.machines[machine] = LoadedMachine(
                machine, loaded.run, detector, Decider.from_detector(detector),
                loaded.context)  # the channel it read (--channel) stays
    threshold = float(service.scorer.machines[machine].decider.threshold)
    service.metrics.threshold.labels(machine).set(threshold)
    return {**change, "threshold": threshold}


def add_routes(app: Any, service: Any, secured: list[Any]) -> None:
    """Add ``GET /v1/machines/{m}/trend`` and ``POST /v1/machines/{m}/normal`` to the app."""
    from fastapi import Body, Query
    from starlette.concurrency import run_in_threadpool


    @app.get("/v1/machines/{machine}/trend", dependencies=secured, tags=["history"])
    def trend(machine: str, days: int = Query(30, ge=1, le=3660)) -> dict[str, Any]:
        """Daily score summaries of a machine (median, p90, max, anomalies, sensor faults)."""
        loaded = service.scorer.machines.get(machine)
        if loaded is None:
            raise ServiceError(404, f"unknown machine type {machine!r}")
        return {"machine": machine, "threshold": float(loaded.decider.threshold),
                "days": daily_trend(service.history, machine, days)}

    @app.post("/v1/machines/{machine}/normal", dependencies=secured, tags=["feedback"])
    async def normal(machine: str, clips: Annotated[list[int], Body(
            embed=True, description="Ids of recorded clips judged normal.")]) -> dict[str, Any]:
        """Add recorded clips judged normal to the machine's normal data.

        Refits the machine's scorer and threshold in its run folder (no network is
        retrained); the next clips are scored with them. The run's ``run.json`` records
        the change: file names, SHA-256 digests, thresholds before and after.
        """
        return await run_in_threadpool(add_normal_clips, service, machine, clips)
