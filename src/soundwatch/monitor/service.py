"""``soundwatch serve``: the HTTP scoring service (FastAPI), its history API and monitoring page."""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at
# definition time, and the FastAPI types are imported inside create_app (a light import).
import contextlib
import logging
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from soundwatch.decisions import section_of_path
from soundwatch.errors import AudioError, ConfigError, DetectorError, SoundwatchError
from soundwatch.monitor.alerts import Alerter
from soundwatch.monitor.health import Health
from soundwatch.monitor.history import History, default_db, parse_since
from soundwatch.monitor.routes import add_routes
from soundwatch.monitor.scoring import MachineScorer, load_native
from soundwatch.monitor.security import SecurityHeaders, bearer_matches
from soundwatch.monitor.service_error import ServiceError
from soundwatch.monitor.state import DEFAULT_WINDOW, machine_state, verdict_columns
from soundwatch.monitor.uploads import BodyLimit, Upload, multipart_upload

__all__ = ["RAW_FORMATS", "Service", "ServiceError", "create_app", "default_db"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"

RAW_FORMATS: dict[str, tuple[str, int]] = {
    "u8": ("u1", 1),
    "s16le": ("<i2", 2),
    "s32le": ("<i4", 4),
    "f32le": ("<f4", 4),
    "f64le": ("<f8", 8),
}
"""Raw PCM sample formats the score endpoint takes: name -> (numpy dtype, bytes)."""

_FULL_SCALE = {"u8": 128.0, "s16le": 32768.0, "s32le": 2147483648.0}


class _Metrics:
    """The service's Prometheus metrics, in a registry of their own (one per app)."""

    def __init__(self, history: History) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.clips = Counter("soundwatch_clips", "Clips scored, by machine and decision",
                             ["machine", "decision"], registry=self.registry)
        self.rejected = Counter("soundwatch_rejected", "Requests refused, by reason",
                                ["reason"], registry=self.registry)
        self.scoring = Histogram("soundwatch_scoring_seconds", "Detector time per clip",
                                 ["machine"], registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))
        self.request = Histogram("soundwatch_score_request_seconds",
                                 "Wall time of a score request (decode, score, record)",
                                 ["machine"], registry=self.registry,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
        self.last_score = Gauge("soundwatch_last_score", "Score of the latest clip",
                                ["machine"], registry=self.registry)
        self.threshold = Gauge("soundwatch_threshold", "Decision threshold", ["machine"],
                               registry=self.registry)
        stored = Gauge("soundwatch_history_clips", "Clips in the history database",
                       registry=self.registry)
        stored.set_function(lambda: float(history.count()))


class Service:
    """The state behind the HTTP app: loaded runs, history, kept clips, metrics, alerts.

    Args:
        scorer: The loaded runs.
        history: The history database.
        token: Bearer token every ``/v1`` and ``/metrics`` request must carry (None: open).
        max_upload_bytes: Largest request body accepted.
        keep_clips: How many of the latest uploads to keep on disk for the page's
            spectrograms (0: keep none).
        clips_dir: Where kept uploads go (default: beside the database).
        alerter: Alerts for anomalous uploads.
        health: What ``/healthz`` reports (default: watches this history and these runs).
        keep_days: Delete clips older than this many days (``--keep-days``; None: keep all).
    """

    def __init__(self, scorer: MachineScorer, history: History, *, token: str | None = None,
                 max_upload_bytes: int = 64 * 1024 * 1024, keep_clips: int = 500,
                 clips_dir: str | os.PathLike[str] | None = None,
                 alerter: Alerter | None = None, health: Health | None = None,
                 keep_days: float | None = None) -> None:
        if max_upload_bytes <= 0:
            raise ConfigError("--max-upload-mb", "must be positive")
        self.scorer = scorer
        self.history = history
        self.token = token or None
        self.max_upload_bytes = int(max_upload_bytes)
        self.keep_clips = max(0, int(keep_clips))
        self.clips_dir = Path(clips_dir) if clips_dir else history.path.with_name(
            history.path.stem + "-clips")
        self.clips_dir.mkdir(parents=True, exist_ok=True)
        self.alerter = alerter or Alerter()
        self.metrics = _Metrics(history)
        self.started = time.time()
        self.health = health or Health(
            history, [(m.run, [name]) for name, m in scorer.machines.items()])
        self.keep_days = keep_days
        self._retained_at = float("-inf")
        self._since_prune = 0
        self._prune_lock = threading.Lock()
        for name, loaded in scorer.machines.items():
            self.metrics.threshold.labels(name).set(float(loaded.decider.threshold))
        self._remove_orphans()
        self.retain()

    def _remove_orphans(self) -> None:
        """Delete kept-clip files no history row points to (left by a killed server)."""
        for path in self.history.prune_audio(self.keep_clips):
            with contextlib.suppress(OSError):
                os.unlink(path)
        try:
            files = list(self.clips_dir.iterdir())
        except OSError:
            return
        if not files:
            return
        referenced = self.history.kept_audio()
        for path in files:
            if str(path) not in referenced and path.is_file():
                with contextlib.suppress(OSError):
                    path.unlink()

    # ---------------------------------------------------------------- auth
    def check_token(self, authorization: str | None) -> None:
        """Raise a 401 unless the ``Authorization`` header carries the bearer token."""
        if self.token is None:
            return
        if not bearer_matches(authorization, self.token):
            self.metrics.rejected.labels("auth").inc()
            raise ServiceError(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)")

    # -------------------------------------------------------------- uploads
    def new_clip_path(self, suffix: str = ".wav") -> Path:
        """A fresh file name in the kept-clips folder."""
        return self.clips_dir / f"{uuid.uuid4().hex}{suffix}"

    def raw_to_file(self, body: bytes, rate: int, fmt: str, channels: int) -> Path:
        """Write a raw PCM body as a float WAV file (then checked like any upload).

        Raises:
            ServiceError: 400 for a bad rate, format or length; 422 for an empty body.
        """
        import soundfile as sf

        if fmt not in RAW_FORMATS:
            raise ServiceError(400, f"format: expected one of {', '.join(RAW_FORMATS)}, "
                               f"got {fmt!r}")
        if not 1000 <= rate <= 384000:
            raise ServiceError(400, f"rate: expected 1000..384000 Hz, got {rate}")
        if not 1 <= channels <= 64:
            raise ServiceError(400, f"channels: expected 1..64, got {channels}")
        dtype, width = RAW_FORMATS[fmt]
        if not body:
            raise ServiceError(422, "upload: empty body (0 bytes)")
        if len(body) % (width * channels):
            raise ServiceError(400, f"upload: {len(body)} bytes is not a whole number of "
                               f"{channels}-channel {fmt} frames ({width * channels} bytes each)")
        data = np.frombuffer(body, dtype=dtype).astype(np.float64)
        if fmt == "u8":
            data = data - 128.0
        data = (data / _FULL_SCALE.get(fmt, 1.0)).reshape(-1, channels)
        path = self.new_clip_path(".wav")
        # Readers only reach a kept clip through its history row, committed after the file
        # is complete, so a plain write is safe here (and spares an fsync per request).
        sf.write(path, data.astype(np.float32), int(rate), subtype="FLOAT", format="WAV")
        return path

    def score_upload(self, machine: str, upload: Upload,
                     request_id: str | None = None) -> dict[str, Any]:
        """Validate, score and record one uploaded clip (runs in a worker thread).

        Returns:
            The response body.

        Raises:
            ServiceError: 404 unknown machine, 422 unusable audio.
        """
        start = time.perf_counter()
        keep = False
        try:
            loaded = self.scorer.machines.get(machine)
            if loaded is None:
                known = ", ".join(sorted(self.scorer.machines)) or "none"
                self.metrics.rejected.labels("unknown_machine").inc()
                raise ServiceError(404, f"unknown machine type {machine!r} (known: {known})")
            try:
                signal, sr = load_native(upload.path, loaded.context.channel)
                verdict = self.scorer.score_signal(machine, signal, sr,
                                                   section=section_of_path(upload.name))
            except AudioError as exc:
                self.metrics.rejected.labels("bad_audio").inc()
                raise ServiceError(422, f"{upload.name}: {exc.reason}") from exc
            except DetectorError as exc:
                self.metrics.rejected.labels("bad_audio").inc()
                raise ServiceError(422, f"{upload.name}: {exc.reason}") from exc
            keep = self.keep_clips > 0
            status, columns = verdict_columns(verdict)
            try:
                record = self.history.record(
                    machine, "upload", status, name=upload.name, request_id=request_id,
                    audio=str(upload.path) if keep else None, **columns)
            except sqlite3.Error as exc:  # disk full, read-only, corrupt: not accepted
                keep = False
                reason = self.health.write_failed(exc)
                self.metrics.rejected.labels("history").inc()
                raise ServiceError(503, f"history: the clip cannot be recorded ({reason}); "
                                   "it was not accepted, retry later") from exc
            self.health.write_ok()
            if record["duplicate"]:
                keep = False
            else:
                self.metrics.clips.labels(machine, str(verdict.decision)).inc()
                self.metrics.scoring.labels(machine).observe(verdict.scoring_s)
                self.metrics.last_score.labels(machine).set(verdict.score)
                self.alerter.submit(record)
                self._maybe_prune()
        finally:
            if not keep:
                with contextlib.suppress(OSError):
                    upload.path.unlink()
        self.metrics.request.labels(machine).observe(time.perf_counter() - start)
        return self.response(record)

    def response(self, record: dict[str, Any]) -> dict[str, Any]:
        """The JSON answer for a recorded clip."""
        base = f"/v1/clips/{record['id']}"
        return {
            "id": record["id"], "machine": record["machine"], "time": record["time"],
            "score": record["score"], "threshold": record["threshold"],
            "decision": record["decision"], "anomaly": bool(record["decision"]),
            "percentile": record["percentile"], "seconds": record["seconds"],
            "name": record["name"], "duplicate": bool(record.get("duplicate")),
            "status": record["status"], "status_reason": record.get("status_reason"),
            "spectrogram": f"{base}/spectrogram.png" if record["has_audio"] else None,
            "explanation": f"{base}/explanation.png" if record["has_audio"] else None,
        }

    def _maybe_prune(self) -> None:
        with self._prune_lock:
            self._since_prune += 1
            if self._since_prune < 50:
                return
            self._since_prune = 0
        self.retain()
        for path in self.history.prune_audio(self.keep_clips):
            with contextlib.suppress(OSError):
                os.unlink(path)

    def retain(self, every_s: float = 600.0) -> None:
        """Apply ``--keep-days`` (at most once every ``every_s`` seconds)."""
        if self.keep_days is None or time.monotonic() - self._retained_at < every_s:
            return
        self._retained_at = time.monotonic()
        from soundwatch.monitor.backup import prune_older

        for path in prune_older(self.history, self.keep_days):
            with contextlib.suppress(OSError):
                os.unlink(path)

    # --------------------------------------------------------------- reading
    def machines(self, window: int = DEFAULT_WINDOW) -> list[dict[str, Any]]:
        """Every loaded machine type with its history counts and its state over a window.

        The state (:func:`~soundwatch.monitor.state.machine_state`) summarises the last
        ``window`` clips under the alert rule, not the last clip alone.
        """
        summary = self.history.summary()
        rule = self.alerter.rule
        span = max(int(window), rule.n)
        out = []
        for name in sorted(self.scorer.machines):
            facts = self.scorer.machines[name].describe()
            stats = summary.get(name, {"clips": 0, "anomalies": 0, "errors": 0, "sensor": 0,
                                       "last": None})
            recent = self.history.history(name, None, span) if stats["clips"] else []
            out.append({**facts, **stats, **machine_state(recent, rule, window)})
        return out

    def clip_audio(self, clip_id: int) -> Path:
        """The audio of a recorded clip.

        Raises:
            ServiceError: 404 when the clip is unknown or its audio is no longer kept.
        """
        if self.history.get(clip_id) is None:
            raise ServiceError(404, f"clip {clip_id}: no such clip")
        audio = self.history.audio_path(clip_id)
        if not audio or not Path(audio).is_file():
            raise ServiceError(404, f"clip {clip_id}: its audio is no longer kept")
        return Path(audio)

    def spectrogram_png(self, clip_id: int) -> bytes:
        """A clip's log-mel spectrogram as PNG bytes: time in s, frequency in Hz, dB scale.

        Raises:
            ServiceError: 404 (see :meth:`clip_audio`), 422 when the file is unreadable now.
        """
        from soundwatch.features.render import render_file

        audio = self.clip_audio(clip_id)
        with tempfile.TemporaryDirectory(prefix="soundwatch-png-") as tmp:
            out = Path(tmp) / "spectrogram.png"
            try:
                record = self.history.get(clip_id) or {}
                render_file(audio, out, frontend="logmel", axes=True,
                            title=f"{record.get('name') or 'clip'} · clip {clip_id} (log-mel)")
            except SoundwatchError as exc:
                raise ServiceError(422, f"clip {clip_id}: {exc.reason}") from exc
            return out.read_bytes()

    def explanation_png(self, clip_id: int) -> bytes:
        """Where a clip deviates from the machine's normal sound, as PNG bytes.

        Uses :mod:`soundwatch.explain` when this installation has it.

        Raises:
            ServiceError: 404 when the clip's audio is gone or explanations are not
                available; 422 when the clip cannot be explained.
        """
        audio = self.clip_audio(clip_id)
        record = self.history.get(clip_id)
        return explain_clip_png(self.scorer, record, audio)


def explain_clip_png(scorer: MachineScorer, record: dict[str, Any], audio: Path) -> bytes:
    """A PNG of where in time and frequency a clip deviates (:mod:`soundwatch.explain`).

    The machine's normal statistics are computed once from the run's training clips and
    kept in the run folder by :func:`soundwatch.explain.normal_stats`.

    Raises:
        ServiceError: 404 when ``soundwatch.explain`` is not available or the machine is not
            loaded; 422 when the clip cannot be explained (unreadable audio, no training
            clips left to compare with).
    """
    clip_id = record["id"]
    try:
        from soundwatch import explain
    except ImportError as exc:
        raise ServiceError(404, "explanations are not available in this installation "
                           "(soundwatch.explain is missing)") from exc
    loaded = scorer.machines.get(record["machine"])
    if loaded is None:
        raise ServiceError(404, f"clip {clip_id}: machine {record['machine']!r} is not loaded")
    from soundwatch.runs import Run

    with tempfile.TemporaryDirectory(prefix="soundwatch-explain-") as tmp:
        out = Path(tmp) / "explanation.png"
        try:
            signal, sr = load_native(audio, loaded.context.channel)
            stats = None
            if not callable(getattr(loaded.detector, "explain_signal", None)):
                stats = explain.normal_stats(Run.open(loaded.run), loaded.machine, sr)
            score, threshold = (float("nan") if record[k] is None else float(record[k])
                                for k in ("score", "threshold"))
            found = explain.explain_clip(loaded.detector, signal, sr, stats, score=score,
                                         threshold=threshold, context=loaded.context)
            explain.plot_explanation(found, out, title=f"{loaded.machine} · clip {clip_id}")
        except SoundwatchError as exc:
            raise ServiceError(422, f"clip {clip_id}: {exc}") from exc
        return out.read_bytes()


# --------------------------------------------------------------------------- the app
def create_app(service: Service) -> Any:
    """Build the FastAPI application over a :class:`Service`.

    Args:
        service: The loaded runs, history and settings.

    Returns:
        The ASGI app (``app.state.service`` is the service).
    """
    from fastapi import Depends, FastAPI, Header, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from soundwatch import __version__

    kwargs: dict[str, Any] = {
        "title": "soundwatch",
        "version": __version__,
        "description": "Anomalous sound detection as a service: score clips, read the history.",
    }
    try:
        from fastapi_offline import FastAPIOffline

        app = FastAPIOffline(**kwargs)
    except ImportError:  # the docs page needs swagger-ui's assets; serve the schema only
        app = FastAPI(docs_url=None, redoc_url=None, **kwargs)
    app.state.service = service

    # ---------------------------------------------------------------- errors
    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error(exc.status, exc.message)

    @app.exception_handler(SoundwatchError)
    async def _soundwatch_error(request: Request, exc: SoundwatchError) -> JSONResponse:
        return error(400, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            detail = f"method {request.method} not allowed on {request.url.path}"
        return error(exc.status_code, detail)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = (exc.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
        return error(400, f"{where or 'request'}: {first.get('msg', 'invalid')}")

    @app.exception_handler(OSError)
    async def _storage_error(request: Request, exc: OSError) -> JSONResponse:
        if not request.url.path.endswith("/score"):
            log.warning("%s %s: %s", request.method, request.url.path, exc)
            return error(503, f"the server cannot read a file now ({exc.strerror or exc})")
        # storing an upload failed (disk full, read-only folder): not accepted, retry later
        reason = service.health.write_failed(exc)
        service.metrics.rejected.labels("storage").inc()
        return error(503, f"the server cannot store the upload now ({reason}); it was not "
                     "accepted, retry later")

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error(500, f"internal error ({type(exc).__name__}); see the server log")

    # --------------------------------------------------------- body size cap
    limit = service.max_upload_bytes

    app.add_middleware(BodyLimit, limit=limit, on_refuse=service.metrics.rejected)
    app.add_middleware(SecurityHeaders)

    async def read_body(request: Request) -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                service.metrics.rejected.labels("too_large").inc()
                raise ServiceError(413, f"upload: over the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    # ------------------------------------------------------------------ auth
    def auth(authorization: str | None = Header(None, include_in_schema=False)) -> None:
        service.check_token(authorization)

    secured = [Depends(auth)]

    # ----------------------------------------------------------------- score
    async def upload_from(request: Request, rate: int | None, fmt: str,
                          channels: int) -> Upload:
        ctype = request.headers.get("content-type", "").lower()
        if ctype.startswith("multipart/form-data"):
            if rate is not None:
                raise ServiceError(400, "rate: raw PCM goes in the body, not in a multipart form")
            body = await read_body(request)
            return await run_in_threadpool(multipart_upload, service.new_clip_path, body, ctype)
        body = await read_body(request)
        if rate is not None:
            path = await run_in_threadpool(service.raw_to_file, body, rate, fmt, channels)
            return Upload(path, f"raw {fmt} {rate} Hz")
        if not body:
            raise ServiceError(422, "upload: empty body (0 bytes)")
        path = service.new_clip_path(".flac" if "flac" in ctype else ".wav")
        await run_in_threadpool(path.write_bytes, body)
        return Upload(path, "body")

    @app.post(
        "/v1/machines/{machine}/score", dependencies=secured, tags=["score"],
        summary="Score one clip",
        openapi_extra={"requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                               "properties": {"file": {"type": "string",
                                                                       "format": "binary"}}}},
            "audio/wav": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        }}},
    )
    async def score(
        request: Request,
        machine: str,
        rate: int | None = Query(None, description="Raw PCM: the sample rate in Hz. Without "
                                 "it the body is an audio file (WAV, FLAC...)."),
        format: str = Query("s16le", description="Raw PCM sample format: "
                            + ", ".join(RAW_FORMATS)),
        channels: int = Query(1, description="Raw PCM: interleaved channels (the first "
                              "is scored)."),
        x_request_id: str | None = Header(None, max_length=128, description="Idempotency "
                                          "key: a retried request is recorded once."),
    ) -> dict[str, Any]:
        """Score one clip: a multipart ``file`` field, an audio file body, or raw PCM.

        Answers ``score``, ``threshold``, ``decision`` (1 = anomaly), ``percentile`` among
        the machine's normal training clips, and links to the clip's spectrogram and
        explanation.
        """
        if machine not in service.scorer.machines:
            known = ", ".join(sorted(service.scorer.machines)) or "none"
            service.metrics.rejected.labels("unknown_machine").inc()
            raise ServiceError(404, f"unknown machine type {machine!r} (known: {known})")
        if x_request_id:
            found = await run_in_threadpool(service.history.get_by_request_id, x_request_id)
            if found is not None:
                return service.response({**found, "duplicate": True})
        upload = await upload_from(request, rate, format, channels)
        return await run_in_threadpool(service.score_upload, machine, upload, x_request_id)

    # ----------------------------------------------------------------- reads
    @app.get("/v1/machines", dependencies=secured, tags=["history"])
    def machines(window: int = Query(DEFAULT_WINDOW, ge=1, le=10000, description="Clips "
                                     "the state summarises.")) -> list[dict[str, Any]]:
        """Every machine type: detector, threshold, clip counts, state over the last clips."""
        return service.machines(window)

    @app.get("/v1/machines/{machine}/history", dependencies=secured, tags=["history"])
    def history(machine: str,
                since: str | None = Query(None, description="Unix seconds or ISO 8601."),
                limit: int = Query(500, ge=1, le=10000),
                before: str | None = Query(None, description="Page back: clips older than "
                                           "this (the first ts of the previous page).")
                ) -> dict[str, Any]:
        """A machine's recorded clips after ``since``: the newest ``limit``, oldest first."""
        loaded = service.scorer.machines.get(machine)
        if loaded is None:
            raise ServiceError(404, f"unknown machine type {machine!r}")
        bound = parse_since(since)
        return {"machine": machine, "threshold": float(loaded.decider.threshold),
                "clips": service.history.history(machine, bound, limit,
                                                 before=parse_since(before, "before"))}

    @app.get("/v1/events", dependencies=secured, tags=["history"])
    def events(since: str | None = Query(None, description="Unix seconds or ISO 8601."),
               machine: str | None = None,
               limit: int = Query(100, ge=1, le=10000)) -> dict[str, Any]:
        """Anomalous clips (decision 1), newest first."""
        return {"events": service.history.events(parse_since(since), limit, machine)}

    @app.get("/v1/clips/{clip_id}", dependencies=secured, tags=["history"])
    def clip(clip_id: int) -> dict[str, Any]:
        """One recorded clip."""
        found = service.history.get(clip_id)
        if found is None:
            raise ServiceError(404, f"clip {clip_id}: no such clip")
        return found

    @app.get("/v1/clips/{clip_id}/spectrogram.png", dependencies=secured, tags=["history"],
             response_class=Response)
    def spectrogram(clip_id: int) -> Response:
        """The clip's log-mel spectrogram (PNG)."""
        return Response(service.spectrogram_png(clip_id), media_type="image/png")

    @app.get("/v1/clips/{clip_id}/explanation.png", dependencies=secured, tags=["history"],
             response_class=Response)
    def explanation(clip_id: int) -> Response:
        """Where the clip deviates from the machine's normal sound (PNG)."""
        return Response(service.explanation_png(clip_id), media_type="image/png")

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, Any]:
        """Liveness and readiness: ``ok``, or ``degraded`` with the ``reasons``.

        503 only when the history database cannot be read at all.
        """
        try:
            report = service.health.report()
        except Exception as exc:  # any database failure makes the service unhealthy
            raise ServiceError(503, f"history database unavailable: {exc}") from exc
        return {**report, "machines": len(service.scorer.machines),
                "uptime_s": round(time.time() - service.started, 1)}

    @app.get("/metrics", dependencies=secured, tags=["service"], response_class=Response)
    def metrics() -> Response:
        """Prometheus metrics."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(service.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    add_routes(app, service, secured)  # trend and feedback

    # ------------------------------------------------------------------ page
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
