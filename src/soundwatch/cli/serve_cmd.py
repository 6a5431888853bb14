"""``soundwatch serve`` (the HTTP scoring service and page) and ``soundwatch feed`` (post clips)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soundwatch.cli.app import app
from soundwatch.cli.channel_option import ChannelOption, channel_value
from soundwatch.cli.options import AlertK, AlertN, Cooldown, ThresholdOption, WebhookOption
from soundwatch.cli.watch_cmd import make_alerter
from soundwatch.errors import ConfigError


def _need_serve_extra() -> None:
    import importlib.util

    from soundwatch.monitor import EXTRA_HINT

    for module in ("fastapi", "uvicorn", "prometheus_client", "python_multipart"):
        if importlib.util.find_spec(module) is None:
            raise ConfigError(module, f"not installed; {EXTRA_HINT}")


def _check_port(host: str, port: int) -> None:
    import socket

    if not 0 < port < 65536:
        raise ConfigError("--port", f"expected 1..65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"{host}:{port}", f"cannot listen there ({exc.strerror})") from exc


@app.command()
def serve(
    runs: Annotated[list[Path], typer.Argument(help="Run folder(s) written by soundwatch train.")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    db: Annotated[Path | None, typer.Option(
        "--db", help="History database (SQLite); default RUN/monitor/history.sqlite of the "
        "first run.")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="SOUNDWATCH_TOKEN", show_envvar=True,
        help="Bearer token every /v1 and /metrics request must carry.")] = None,
    max_upload_mb: Annotated[float, typer.Option(
        "--max-upload-mb", help="Largest request body accepted, in MB.")] = 64.0,
    keep_clips: Annotated[int, typer.Option(
        "--keep-clips", help="Latest uploads kept on disk for the page's spectrograms.")] = 500,
    on_anomaly: Annotated[str | None, typer.Option(
        "--on-anomaly", help="Shell command run for each anomalous clip (SOUNDWATCH_* "
        "variables in its environment).")] = None,
    webhook: WebhookOption = None,
    access_log: Annotated[bool, typer.Option(
        "--access-log/--no-access-log", help="Log every request.")] = False,
    alert_k: AlertK = 1,
    alert_n: AlertN = 1,
    cooldown: Cooldown = 0.0,
    threshold: ThresholdOption = None,
    channel: ChannelOption = None,
    allow_no_token: Annotated[bool, typer.Option(
        "--allow-no-token", help="Serve a non-loopback --host without a --token (anyone "
        "who reaches it can score and read the history).")] = False,
    keep_days: Annotated[float | None, typer.Option(
        "--keep-days", help="Delete history rows older than this many days.")] = None,
) -> None:
    """Serve the runs' detectors over HTTP, with the history API and the monitoring page."""
    _need_serve_extra()
    from soundwatch.monitor.security import check_bind

    check_bind(host, token, allow_no_token)
    if keep_days is not None and not keep_days > 0:
        raise ConfigError("--keep-days", f"must be positive, got {keep_days}")
    import uvicorn

    from soundwatch.monitor.health import Health, open_history
    from soundwatch.monitor.history import default_db
    from soundwatch.monitor.scoring import MachineScorer
    from soundwatch.monitor.service import Service, create_app

    if max_upload_mb <= 0:
        raise ConfigError("--max-upload-mb", f"must be positive, got {max_upload_mb}")
    _check_port(host, port)
    alerter = make_alerter(on_anomaly, webhook, alert_k, alert_n, cooldown)
    scorer = MachineScorer(runs, threshold, channel=channel_value(channel))
    scorer.warm_up()
    history, notes = open_history(db or default_db(runs[0]))
    for note in notes:
        typer.echo(f"warning: {note}", err=True)
    try:
        health = Health(history, [(m.run, [name]) for name, m in scorer.machines.items()],
                        startup=notes)
        service = Service(scorer, history, token=token, alerter=alerter,
                          max_upload_bytes=int(max_upload_mb * 1024 * 1024),
                          keep_clips=keep_clips, health=health, keep_days=keep_days)
        shown = f"[{host}]" if ":" in host else host
        typer.echo(f"serving {len(scorer.machines)} machine type(s) "
                   f"({', '.join(sorted(scorer.machines))}) on http://{shown}:{port}/ "
                   f"(API docs /docs, metrics /metrics); history {history.path}", err=True)
        uvicorn.run(create_app(service), host=host, port=port, log_level="warning",
                    access_log=access_log, timeout_graceful_shutdown=5)
    finally:
        alerter.close()
        history.close()


@app.command()
def feed(
    folders: Annotated[list[Path], typer.Argument(help="Folders (or files) of clips to post.")],
    url: Annotated[str, typer.Option("--url", help="The service's address.")] = (
        "http://127.0.0.1:8000"),
    machine: Annotated[str | None, typer.Option(
        "--machine", help="Machine type of every clip (default: told from each path).")] = None,
    interval: Annotated[float, typer.Option(
        "--interval", help="Seconds to wait between clips (a live machine's pace).")] = 0.0,
    limit: Annotated[int | None, typer.Option("--limit", help="Post at most N clips.")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="SOUNDWATCH_TOKEN", show_envvar=True, help="Bearer token.")] = None,
) -> None:
    """Post audio files to a running soundwatch serve, one line per clip.

    Each clip is sent as a multipart upload under its path below the folder given (the
    service records and shows that name), with an idempotency key made of its machine and
    content, so feeding the same folder twice records nothing twice.
    """
    import time

    from soundwatch.monitor.feed import FeedClient, feed_name, plan_feed

    client = FeedClient(url, token=token)
    known = client.machines()
    plan = plan_feed(folders, known, machine=machine)
    if limit is not None:
        plan = plan[: max(0, limit)]
    if not plan:
        raise ConfigError(" ".join(map(str, folders)), "no audio file to post")
    failed = 0
    for i, (path, kind) in enumerate(plan):
        if i and interval > 0:
            time.sleep(interval)
        status, body = client.post_file(kind, path, feed_name(path, folders))
        if status == 200:
            mark = "ANOMALY" if body.get("decision") == 1 else "normal "
            again = " (already recorded)" if body.get("duplicate") else ""
            if body.get("status") == "sensor":  # no machine verdict: no score shown, as watch
                typer.echo(f"{kind:<10} SENSOR  {path}: {body.get('status_reason')}{again}")
                continue
            typer.echo(f"{kind:<10} {mark} score {body['score']:10.4f}  "
                       f"p{body['percentile']:5.1f}  {path}{again}")
        else:
            failed += 1
            typer.echo(f"{kind:<10} REFUSED {status}: {body.get('error', '?')}  {path}")
    typer.echo(f"posted {len(plan)} clip(s) to {url}, {failed} refused", err=True)
    if failed == len(plan):
        raise typer.Exit(1)

