"""The ``train``, ``score`` and ``detectors`` commands (thin wrappers of soundwatch.pipeline)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from soundwatch.cli.app import app
from soundwatch.cli.channel_option import (
    ChannelOption,
    TrainChannelOption,
    channel_value,
)
from soundwatch.cli.options import ray_options
from soundwatch.errors import ConfigError

if TYPE_CHECKING:  # rich, pandas and the pipeline stay out of ``soundwatch --help``
    import pandas as pd
    from rich.console import Console

    from soundwatch.runs import Run

__all__ = ["detectors", "score", "train"]


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


PROGRESS_INTERVAL_S = 30.0
"""Seconds between progress log lines when stderr is not a terminal."""


class _Heartbeat:
    """Periodic ``<verb> <machine>: N s`` log lines while a machine type is being worked on.

    On a terminal the detectors draw progress bars; in a pipe or a log file nothing
    would show for minutes, so a line every :data:`PROGRESS_INTERVAL_S` seconds says
    the command is alive and how long the step has taken.
    """

    def __init__(self, verb: str, interval: float = PROGRESS_INTERVAL_S) -> None:
        import threading

        self.verb = verb
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, machine: str) -> None:
        import logging
        import threading
        import time

        self.stop()
        self._stop = threading.Event()
        started = time.monotonic()
        stop = self._stop
        log = logging.getLogger("soundwatch.progress")

        def beat() -> None:
            while not stop.wait(self.interval):
                log.info("%s %s: %.0f s", self.verb, machine, time.monotonic() - started)

        self._thread = threading.Thread(target=beat, daemon=True, name="soundwatch-progress")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None


def _feedback(verb: str) -> Callable[[str, str], None]:
    import os

    err = _console(stderr=True)
    interval = float(os.environ.get("SOUNDWATCH_PROGRESS_INTERVAL", PROGRESS_INTERVAL_S))
    heartbeat = None if sys.stderr.isatty() else _Heartbeat(verb, interval)

    def on_machine(machine: str, event: str) -> None:
        if event == "start":
            err.print(f"[bold]{verb}[/] {machine} ...")
            if heartbeat is not None:
                heartbeat.start(machine)
        elif event == "skip":
            err.print(f"[dim]{machine}: already done, skipped[/]")
        elif heartbeat is not None:
            heartbeat.stop()

    return on_machine


_TrainBackend, _TrainAddress, _TrainCpus, _TrainGpus = ray_options(
    "local (here, one machine type after another) or ray (one Ray task per machine type; "
    "needs the ray extra; docs/scale.md).", "auto, HOST:PORT, ray://HOST:10001",
    "machine-type task")
_ScoreBackend, _ScoreAddress, _ScoreCpus, _ScoreGpus = ray_options(
    "local or ray (Ray Data batch scoring; needs the ray extra; docs/scale.md).",
    "auto, HOST:PORT", "scoring actor")

DEFAULT_PLACEHOLDER = "{default_detector}"
"""Stands for the default preset's name in help texts (filled in when help is shown)."""


class _DefaultNameCommand(TyperCommand):
    """A command whose help names the real default detector, read when the help is shown.

    Importing the presets module at start-up would cost every command (``soundwatch
    --help`` included) its import time, so the name is filled in here instead.
    """

    def format_help(self, ctx: Any, formatter: Any) -> None:  # noqa: D102
        from soundwatch.detectors.registry import DEFAULT_DETECTOR

        for param in self.params:
            text = getattr(param, "help", None)
            if text and DEFAULT_PLACEHOLDER in text:
                param.help = text.replace(DEFAULT_PLACEHOLDER, DEFAULT_DETECTOR)
        super().format_help(ctx, formatter)


@app.command(cls=_DefaultNameCommand)
def train(
    data: Annotated[Path, typer.Argument(
        help="Folder of recordings: a dataset in a known layout, MACHINE/... sub-folders, "
        "normal/ (+ abnormal/) folders, or any recordings of one machine with --machine "
        "(docs/datasets.md).")],
    detector: Annotated[
        str | None, typer.Option("--detector", "-d", help="Detector name (soundwatch detectors); "
                                 f"default: the recommended {DEFAULT_PLACEHOLDER} (also "
                                 "reachable as `default`).", show_default=False)
    ] = None,
    config: Annotated[
        str | None,
        typer.Option("--config", "-c",
                     help="YAML config file, or a shipped config's name (configs/<name>.yaml)."),
    ] = None,
    machine: Annotated[
        list[str] | None, typer.Option("--machine", "-m", help="Machine type (repeatable).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run folder (default runs/<detector>-<t>).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs (network detectors).")] = None,
    objective: Annotated[
        str | None,
        typer.Option(help="Training objective: supervised, synthetic, auxiliary... (networks)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or auto (default auto).")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Hyper-parameter key=value, YAML value (repeatable)."),
    ] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Feature cache folder.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not cache features.")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out; skip finished machines.")
    ] = False,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Skip unreadable audio files (recorded in run.json).")
    ] = False,
    train_normals: Annotated[
        int | None,
        typer.Option("--train-normals", min=1, help="Clips without a split (MIMII raw): normal "
                     "recordings per machine ID to train on; the rest are tested. Default: "
                     "all but as many as there are anomalies, at most half."),
    ] = None,
    split_seed: Annotated[
        int | None,
        typer.Option("--split-seed", help="Seed of that split (default: --seed)."),
    ] = None,
    backend: _TrainBackend = "local",
    address: _TrainAddress = None,
    cpus_per_task: _TrainCpus = 1.0,
    gpus_per_task: _TrainGpus = 0.0,
    devices: Annotated[
        str | None, typer.Option(help="Lightning devices per node for network training (N, "
                                 "auto or a list 0,1); more than one trains with DDP.",
                                 show_default=False)
    ] = None,
    strategy: Annotated[
        str | None, typer.Option(help="Lightning strategy (ddp, ddp_spawn...; default: ddp "
                                 "with several devices).", show_default=False)
    ] = None,
    num_nodes: Annotated[
        int, typer.Option("--num-nodes", min=1, help="Lightning nodes (run the same command "
                          "on each; docs/scale.md).")
    ] = 1,
    threshold: Annotated[str | None, typer.Option("--threshold", help=THRESHOLD_HELP,
                                                  show_default=False)] = None,
    channel: TrainChannelOption = None,
) -> None:
    """Train one detector per machine type on the training split of DATA."""
    from soundwatch.config import parse_params
    from soundwatch.pipeline import cache_folder
    from soundwatch.pipeline import train as run_train
    from soundwatch.training.context import RunContext

    if resume and out is None:
        raise ConfigError("--resume", "needs --out RUN (the run folder to continue)")
    from soundwatch.errors import MachinesFailed

    executor = _executor(backend, address, cpus_per_task, gpus_per_task)
    context = RunContext(cache_dir=cache_folder(cache_dir, no_cache), resume=resume,
                         progress=sys.stderr.isatty(), devices=_parse_devices(devices),
                         strategy=strategy, num_nodes=num_nodes)  # device, channel: the config's
    try:
        run = run_train(
            data,
            detector=detector,
            config=config,
            machines=machine or None,
            out=out,
            params=parse_params(param or []),
            epochs=epochs,
            objective=objective,
            seed=seed,
            device=device,
            channel=channel_value(channel),
            threshold=threshold,
            train_normals=train_normals,
            split_seed=split_seed,
            skip_bad=skip_bad,
            context=context,
            on_machine=_feedback("training"),
            executor=executor,
        )
    except MachinesFailed as exc:  # one line per failed machine type, then the error line
        for name, reason in sorted(exc.failures.items()):
            typer.echo(f"failed {name}: {reason}", err=True)
        raise
    _print_train_summary(run)


THRESHOLD_HELP = (
    "Alarm level, fitted on the out-of-fold scores of the normal training clips: "
    "far:RATE (target false-alarm rate on normal recordings; default far:0.01), fixed:V, "
    "gamma:Q (DCASE baseline) or contamination:Q. Change it later with soundwatch threshold.")
"""``--threshold`` of train (score, watch and serve: instead of the run's saved rule)."""


def _parse_devices(text: str | None) -> int | str | list[int] | None:
    """``--devices``: ``N``, ``auto``, ``-1`` or a list of indices ``0,1``."""
    if text is None:
        return None
    text = text.strip()
    try:
        if "," in text:
            return [int(t) for t in text.split(",") if t.strip()]
        return text if text == "auto" else int(text)
    except ValueError as exc:
        raise ConfigError("--devices", f"{text!r} is not a number, 'auto' or a list "
                          "such as 0,1") from exc


def _print_train_summary(run: Run) -> None:
    from rich.table import Table

    console = _console()
    steps = run.info.get("steps", {})
    table = Table(title=f"run {run.root}", title_justify="left")
    table.add_column("machine")
    table.add_column("clips", justify="right")
    table.add_column("skipped", justify="right")
    table.add_column("train s", justify="right")
    for machine, facts in sorted(run.info.get("machines", {}).items()):
        wall = steps.get(f"train/{machine}", {}).get("wall_s")
        table.add_row(machine, str(facts.get("train_clips", "")), str(facts.get("skipped", 0)),
                      f"{wall:.1f}" if wall is not None else "")
    console.print(table)
    _print_decisions(run, console)
    from soundwatch.abnormal_check import describe_check

    for machine, facts in sorted(run.info.get("machines", {}).items()):
        if "abnormal_check" in facts:
            console.print(describe_check(machine, facts["abnormal_check"]), highlight=False,
                          soft_wrap=True)
    skipped = run.info.get("skipped", [])
    if skipped:
        console.print(f"[yellow]{len(skipped)} unreadable file(s) skipped[/] (see run.json)")
    channel = run.info.get("channel", 0)
    if channel != 0:
        console.print(f"audio channel: {channel} (recorded in the run; score, watch, serve and "
                      "export read the same one)", highlight=False)
    console.print(f"next: soundwatch score {run.root}")


def _print_decisions(run: Run, console: Any) -> None:
    """Each machine type's alarm level and its estimated false-alarm rate."""
    from soundwatch.cli.threshold_cmd import describe_decider
    from soundwatch.decisions import read_decider

    for machine in run.machines():
        decider = read_decider(run.root, machine)
        if decider is not None:
            console.print(describe_decider(machine, decider), highlight=False)


@app.command()
def score(
    run: Annotated[Path, typer.Argument(help="Run folder written by soundwatch train.")],
    data: Annotated[
        list[Path] | None,
        typer.Argument(help="Audio files and folders to score (recursive, any names, WAV, "
                       "FLAC, OGG...); default: the test split of the run's dataset. With "
                       "--window: one long recording."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder (default: a new RUN/scores/<name>-<time>; "
                     "earlier scores are never overwritten)."),
    ] = None,
    machine: Annotated[
        list[str] | None,
        typer.Option("--machine", "-m", help="Machine type whose detector scores recordings "
                     "whose names say nothing (needed when the run has several); repeatable "
                     "to score only those of a dataset."),
    ] = None,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Skip unreadable audio files (recorded in run.json).")
    ] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Write explanation PNGs of the flagged clips "
                           "(OUT/explain/).")
    ] = False,
    window: Annotated[
        float | None, typer.Option(help="Long recording: window length in seconds.")
    ] = None,
    hop: Annotated[
        float | None, typer.Option(help="Long recording: hop in seconds (default: --window).")
    ] = None,
    gap: Annotated[
        float, typer.Option(help="Long recording: flagged windows at most this many seconds "
                            "apart form one event.")
    ] = 0.0,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or auto.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON on stdout.")
    ] = False,
    backend: _ScoreBackend = "local",
    address: _ScoreAddress = None,
    cpus_per_task: _ScoreCpus = 1.0,
    gpus_per_task: _ScoreGpus = 0.0,
    exported: Annotated[
        bool, typer.Option("--exported", help="RUN is an export folder (soundwatch export): "
                           "score the DATA files with onnxruntime, without torch; CSV on stdout "
                           "or --out FILE.")
    ] = False,
    threshold: Annotated[str | None, typer.Option(
        "--threshold", help="Alarm level for this scoring instead of the run's saved one "
        "(refitted on the run's out-of-fold training scores): far:RATE, fixed:V, gamma:Q or "
        "contamination:Q. Default: the rule fixed at training.", show_default=False)] = None,
    channel: ChannelOption = None,
) -> None:
    """Score recordings (or one long recording in windows) with a trained RUN, with decisions."""
    chan = channel_value(channel)
    if exported:
        _score_exported(run, data or [], out, machine, chan)
        return
    paths = list(data or [])
    if backend == "ray" and (window is not None or hop is not None):
        raise ConfigError("--backend ray", "scores files and folders; a long recording "
                          "(--window) is scored locally")
    if window is not None or hop is not None:
        if len(paths) != 1 or not paths[0].is_file():
            where = ", ".join(map(str, paths)) or "DATA"
            raise ConfigError(where, "--window/--hop score one long audio file; give its path")
        if window is None:
            raise ConfigError("--window", "give the window length in seconds for a long recording")
        if machine and len(machine) > 1:
            raise ConfigError("--machine", "give one machine type for a long recording")
        from soundwatch.pipeline import score_long_recording

        result = score_long_recording(
            run, paths[0], window, hop if hop is not None else window,
            machine=machine[0] if machine else None, out=out, device=device, gap=gap,
            threshold=threshold,
            channel=chan,
        )
        if as_json:
            _print_json({
                "machine": result.machine, "windows_csv": str(result.csv_path),
                "events_csv": str(result.events_csv), "events_json": str(result.events_json),
                "plot": str(result.png_path) if result.png_path else None,
                "threshold": _finite(result.threshold),
                "windows": result.to_frame().to_dict("records"),
                "events": [{**e.__dict__, "duration_s": e.duration_s} for e in result.events],
            })
            return
        _print_windows_summary(result)
        return

    from soundwatch.pipeline import score as run_score
    executor = _executor(backend, address, cpus_per_task, gpus_per_task)
    table = run_score(run, paths or None, out, skip_bad=skip_bad, machines=machine or None,
                      device=device, progress=sys.stderr.isatty() and not as_json,
                      explain=explain, on_machine=_feedback("scoring"), executor=executor,
                      threshold=threshold, channel=chan)
    out_dir = Path(table.attrs.get("scores_dir", out or run / "scores"))
    if as_json:
        cols = [c for c in ("path", "machine", "section", "domain", "split", "label", "score",
                            "threshold", "decision", "percentile", "status", "status_reason")
                if c in table.columns]
        rows = table[cols].astype(object).where(table[cols].notna(), None)
        _print_json({"scores_dir": str(out_dir), "clips": rows.to_dict("records")})
        return
    _print_score_summary(table, out_dir)


def _score_exported(export: Path, data: list[Path], out: Path | None,
                    machine: list[str] | None, channel: int | str | None = None) -> None:
    """``score --exported``: the runtime's CSV for files (folders: their audio files).

    A file that cannot be scored gets an ``error`` row; the exit code is then 1.
    """
    from soundwatch.atomic import atomic_open
    from soundwatch.datasets.discovery import OTHER_AUDIO_EXTENSIONS
    from soundwatch.datasets.names import AUDIO_EXTENSIONS
    from soundwatch.runtime.__main__ import write_scores

    if not data:
        raise ConfigError("DATA", "give the audio files or folders to score with the export")
    suffixes = set(AUDIO_EXTENSIONS) | set(OTHER_AUDIO_EXTENSIONS)
    files = []
    for path in data:
        if path.is_dir():
            files += sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in suffixes)
        else:
            files.append(str(path))
    one = machine[0] if machine else None
    if out is None:
        done = write_scores(str(export), files, sys.stdout, one, channel=channel)
    else:
        with atomic_open(out, "w", newline="", encoding="utf-8") as handle:
            done = write_scores(str(export), files, handle, one, channel=channel)
        typer.echo(f"scored {done.scored} file(s) with {export} -> {out}", err=True)
    if done.failed:
        typer.echo(f"error: {done.failed} of {len(done)} file(s) could not be scored "
                   "(status 'error' rows)", err=True)
        sys.exit(1)  # typer.Exit's code is dropped in main()'s non-standalone mode


def _finite(value: float) -> float | None:
    import math

    return None if value is None or not math.isfinite(float(value)) else float(value)


def _print_json(obj: object) -> None:
    import json

    typer.echo(json.dumps(obj, indent=2, default=str, allow_nan=False))


def _print_windows_summary(result: object) -> None:
    import math

    console = _console()
    r: Any = result
    scores = r.scores
    if scores:
        top = max(range(len(scores)), key=scores.__getitem__)
        thr = "" if math.isnan(r.threshold) else f", threshold {r.threshold:.4g}"
        console.print(f"{r.windows} windows scored with the {r.machine} detector; max score "
                      f"{scores[top]:.4g} at {r.starts[top]:.1f} s{thr}; "
                      f"{sum(r.decisions)} window(s) flagged, {len(r.events)} event(s)")
    else:
        console.print("no window scored")
    for ev in r.events[:20]:
        console.print(f"  event {ev.start_s:.1f}-{ev.end_s:.1f} s, peak {ev.peak_score:.4g} "
                      f"at {ev.peak_s:.1f} s")
    if len(r.events) > 20:
        console.print(f"  ... and {len(r.events) - 20} more (see {r.events_csv})")
    console.print(f"wrote {r.csv_path}, {r.events_csv}, {r.events_json}")
    if r.png_path is not None:
        console.print(f"wrote {r.png_path}")


def _print_score_summary(table: pd.DataFrame, out_dir: Path) -> None:
    from rich.table import Table

    console = _console()
    summary = Table(title=f"scores in {out_dir}", title_justify="left")
    for col in ("machine", "section", "clips", "flagged", "threshold", "max percentile",
                "labelled"):
        summary.add_column(col, justify="left" if col in ("machine", "section") else "right")
    keys = table["section"].fillna("-")
    for (machine, section), part in table.assign(section=keys).groupby(["machine", "section"]):
        thr = part["threshold"].dropna() if "threshold" in part else []
        pct = part["percentile"].dropna() if "percentile" in part else []
        summary.add_row(str(machine), str(section), str(len(part)),
                        str(int(part["decision"].sum())) if "decision" in part else "",
                        f"{thr.iloc[0]:.4g}" if len(thr) else "",
                        f"{pct.max():.1f}" if len(pct) else "",
                        str(int(part["label"].notna().sum())))
    console.print(summary)
    for machine, rule in sorted((table.attrs.get("decisions") or {}).items()):
        far = rule.get("false_alarm") or {}
        if far.get("n"):
            console.print(f"{machine}: alarm level {rule['policy']}: false alarms expected on "
                          f"about {100 * far['estimate']:.3g} % of normal clips (95 % interval "
                          f"{100 * far['low']:.3g}-{100 * far['high']:.3g} %, from "
                          f"{far['n']} normal training clips)", highlight=False)
    if "status" in table and (table["status"] != "ok").any():
        bad = table[table["status"] != "ok"]
        console.print(f"{len(bad)} clip(s) with a sensor problem (never counted as anomalies):")
        for rec in bad.head(10).to_dict("records"):
            console.print(f"  {rec['machine']}: {Path(str(rec['path'])).name}  "
                          f"{rec['status']}: {rec['status_reason']}", highlight=False)
    flagged = table[table["decision"] == 1] if "decision" in table else table.iloc[:0]
    if len(flagged):
        console.print(f"{len(flagged)} clip(s) flagged as anomalous, highest first:")
        for rec in flagged.sort_values("score", ascending=False).head(10).to_dict("records"):
            console.print(f"  {rec['machine']}: {Path(str(rec['path'])).name}  score "
                          f"{rec['score']:.4g} (threshold {rec['threshold']:.4g}, percentile "
                          f"{rec['percentile']:.1f})", highlight=False)
    console.print(f"next: soundwatch evaluate {out_dir.parent.parent} {out_dir.name}"
                  if out_dir.parent.name == "scores" else f"wrote {out_dir}", highlight=False)


@app.command()
def detectors(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print name -> description as JSON.")
    ] = False,
) -> None:
    """List the registered detectors with a one-line description."""
    from rich.table import Table

    from soundwatch.detectors import describe_detectors

    if as_json:
        _print_json(describe_detectors())
        return

    table = Table(title="detectors", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("description")
    for name, text in describe_detectors().items():
        table.add_row(name, text)
    _console().print(table)


def _executor(backend: str, address: str | None, cpus_per_task: float,
              gpus_per_task: float) -> Any:
    """The pipeline executor of ``--backend`` (``None``: the local one)."""
    from soundwatch.scale import RaySettings, check_backend

    check_backend(backend)  # unknown, or Ray missing: one line with the install hint
    if backend != "ray":
        return None
    from soundwatch.scale.ray_backend import RayExecutor

    return RayExecutor(RaySettings(address, cpus_per_task, gpus_per_task))
