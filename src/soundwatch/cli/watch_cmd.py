"""``soundwatch watch``: score each audio file that appears in a folder, with alerts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from soundwatch.cli.app import app
from soundwatch.cli.channel_option import ChannelOption, channel_value
from soundwatch.cli.options import AlertK, AlertN, Cooldown, ThresholdOption, WebhookOption
from soundwatch.errors import ConfigError


def make_alerter(on_anomaly: str | None, webhook: str | None, k: int, n: int,
                 cooldown: float) -> Any:
    """The :class:`~soundwatch.monitor.alerts.Alerter` of ``watch`` and ``serve``."""
    from soundwatch.monitor.alerts import Alerter, AlertRule

    return Alerter(on_anomaly, webhook, rule=AlertRule(k, n, cooldown))


def format_record(record: dict[str, Any]) -> str:
    """One line for a recorded clip: time, machine, verdict, score, percentile, file."""
    when = record["time"][:19].replace("T", " ")
    where = record.get("path") or record.get("name") or ""
    if record["status"] == "error":
        return f"{when}  {record['machine']:<10} ERROR    {where}: {record['error']}"
    if record["status"] == "sensor":
        return f"{when}  {record['machine']:<10} SENSOR   {where}: {record.get('error')}"
    mark = "ANOMALY" if record["decision"] == 1 else "normal "
    return (f"{when}  {record['machine']:<10} {mark}  score {record['score']:10.4f}  "
            f"threshold {record['threshold']:10.4f}  p{record['percentile']:5.1f}  {where}")


@app.command()
def watch(
    run: Annotated[Path, typer.Argument(help="Run folder written by soundwatch train.")],
    folder: Annotated[Path, typer.Argument(help="Folder to watch (recursively).")],
    db: Annotated[Path | None, typer.Option(
        "--db", help="History database (SQLite); default RUN/monitor/history.sqlite.")] = None,
    machine: Annotated[str | None, typer.Option(
        "--machine", help="Machine type of every file (default: told from each path: a "
        "folder or a word of the name).")] = None,
    on_anomaly: Annotated[str | None, typer.Option(
        "--on-anomaly", help="Shell command run for each anomalous clip, with SOUNDWATCH_PATH, "
        "_MACHINE, _SCORE, _PERCENTILE, _THRESHOLD, _CLIP_ID, _TIME in its environment.")] = None,
    webhook: WebhookOption = None,
    settle: Annotated[float, typer.Option(
        "--settle", help="Seconds a file must stay unchanged (size and time) before it is "
        "scored.")] = 1.0,
    poll: Annotated[float, typer.Option("--poll", help="Seconds between checks.")] = 0.25,
    rescan: Annotated[float, typer.Option(
        "--rescan", help="Seconds between full rescans of the folder (a safety net for "
        "file systems without change events; 0: only at start).")] = 30.0,
    once: Annotated[bool, typer.Option(
        "--once", help="Score the files present now, then exit.")] = False,
    alert_k: AlertK = 1,
    alert_n: AlertN = 1,
    cooldown: Cooldown = 0.0,
    threshold: ThresholdOption = None,
    channel: ChannelOption = None,
) -> None:
    """Watch a folder: score each new audio file once it is complete, record it, alert.

    Files already recorded (same path, size, modification time and content) are not
    scored again, so a restarted watcher resumes where it stopped. A bad file is recorded
    as an error with its reason and the watcher goes on. Alerts follow a k-of-n rule with a
    cool-down: ``--alert-k 3 --alert-n 5 --cooldown 600``.
    """
    import signal
    import threading

    from soundwatch.monitor.health import open_history
    from soundwatch.monitor.history import default_db
    from soundwatch.monitor.scoring import MachineScorer
    from soundwatch.monitor.watch import FolderWatcher

    if not folder.is_dir():
        raise ConfigError(folder, "no such folder to watch")
    alerter = make_alerter(on_anomaly, webhook, alert_k, alert_n, cooldown)
    scorer = MachineScorer([run], threshold, channel=channel_value(channel))
    scorer.warm_up()
    history, notes = open_history(db or default_db(run))
    for note in notes:
        typer.echo(f"warning: {note}", err=True)
    stop = threading.Event()

    def on_record(record: dict[str, Any]) -> None:
        typer.echo(format_record(record))

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    try:
        watcher = FolderWatcher(scorer, history, folder, machine=machine, alerter=alerter,
                                settle=settle, poll=poll, rescan=rescan, on_record=on_record)
        # SIGINT and SIGTERM stop the loop between files: the clip being scored is finished
        # and recorded, the summary printed, the exit code 0.
        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        if not once:
            typer.echo(f"watching {watcher.folder} for {', '.join(sorted(scorer.machines))} "
                       f"(history {history.path}); Ctrl-C stops", err=True)
        try:
            watcher.run(stop, once=once)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        typer.echo(f"{watcher.scored} scored, {watcher.errors} error(s), {watcher.skipped} "
                   "already recorded", err=True)
    finally:
        alerter.close()
        history.close()
