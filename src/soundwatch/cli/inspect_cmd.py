"""`soundwatch inspect`: what a dataset folder holds, or a run folder's self-check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from soundwatch.cli.app import app, make_console

_MAX_LISTED = 50


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return str(value)


def _print_report(report: Any) -> None:
    from rich.table import Table

    console = make_console()
    found, summ = report.discovery, report.summary
    table = Table(title=f"{found.root}", title_justify="left")
    table.add_column("machine", no_wrap=True, min_width=7)
    table.add_column("sec", no_wrap=True)
    table.add_column("domain", no_wrap=True)
    table.add_column("split", no_wrap=True)
    table.add_column("label", no_wrap=True, min_width=7)
    table.add_column("clips", justify="right", no_wrap=True)
    table.add_column("seconds", justify="right", no_wrap=True)
    table.add_column("Hz", justify="right", no_wrap=True)
    table.add_column("ch.", justify="right", no_wrap=True)
    for row in summ.table.to_dict("records"):
        table.add_row(
            *(_cell(row[k]) for k in ("machine", "section", "domain", "split", "label")),
            str(row["clips"]),
            f"{row['seconds']:.0f}" if row["seconds"] is not None else "-",
            _cell(row["sample_rates"]),
            _cell(row["channels"]),
        )
    console.print(table)
    layouts = ", ".join(f"{k} ({v})" for k, v in found.layouts.items()) or "none"
    rates = ", ".join(f"{k} Hz ({v})" for k, v in summ.sample_rates.items()) or "-"
    chans = ", ".join(f"{k} ({v})" for k, v in summ.channels.items()) or "-"
    console.print(f"clips: {summ.total_clips} in {len(found.machines)} machine type(s); "
                  f"layouts: {layouts}")
    console.print(f"total duration: {_fmt_duration(summ.total_seconds)}; "
                  f"sample rates: {rates}; channels: {chans}", highlight=False)
    for title, items in (("clip(s) with an unreadable audio header", summ.bad),
                         ("file(s) not recognised (left out)", found.unknown)):
        if not items:
            continue
        listing = Table(title=f"{len(items)} {title}", title_justify="left")
        listing.add_column("file")
        listing.add_column("reason")
        for path, reason in items[:_MAX_LISTED]:
            shown = path.relative_to(found.root) if path.is_relative_to(found.root) else path
            listing.add_row(str(shown), reason)
        console.print(listing)
        if len(items) > _MAX_LISTED:
            console.print(f"... and {len(items) - _MAX_LISTED} more (see --json)")
    if found.unknown and not found.clips:  # what `train` does with them instead
        from soundwatch.datasets.folders import layouts_hint

        console.print(f"soundwatch train reads them as plain folders; {layouts_hint()}",
                      highlight=False, soft_wrap=True)


def is_run_folder(path: Path) -> bool:
    """A run folder written by ``soundwatch train`` (config.yaml and run.json)."""
    return (path / "config.yaml").is_file() and (path / "run.json").is_file()


def print_self_checks(run: Path, json_output: bool) -> None:
    """Print a run's per-machine self-check (:func:`soundwatch.selfcheck.load_self_checks`)."""
    from rich.table import Table

    from soundwatch.selfcheck import load_self_checks

    checks = load_self_checks(run)
    if json_output:
        import json

        typer.echo(json.dumps({"run": str(run), "self_check": {
            m: c.to_dict() for m, c in sorted(checks.items())}}, indent=2))
        return
    console = make_console()
    if not checks:
        console.print(f"{run}: no self-check recorded (trained by an older version; train "
                      "again to get one)", highlight=False)
        return
    table = Table(title=f"{run}: self-check", title_justify="left")
    for name, justify in (("machine", "left"), ("training clips", "right"),
                          ("false alarms expected (out of fold)", "right"),
                          ("members agree", "right"), ("clips differ by", "right"),
                          ("trust", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for machine, c in sorted(checks.items()):
        rate = "-" if c.false_alarm_rate != c.false_alarm_rate else (
            f"{100 * c.false_alarm_rate:.1f}% ({c.false_alarms}/{c.clips}; "
            f"95% {100 * c.false_alarm_ci[0]:.1f}-{100 * c.false_alarm_ci[1]:.1f}%)")
        agree = ("n/a (single detector)" if not c.members else "n/a"
                 if c.member_agreement is None else f"{c.member_agreement:.2f}")
        spread = "-" if c.spread_db is None else f"{c.spread_db:.2f} dB"
        style = {"ok": "green", "caution": "yellow", "low": "red"}.get(c.trust, "")
        table.add_row(machine, str(c.clips), rate, agree, spread,
                      f"[{style}]{c.trust}[/{style}]" if style else c.trust)
    console.print(table)
    for machine, c in sorted(checks.items()):
        for warning in c.warnings:
            console.print(f"[yellow]{machine}:[/yellow] {warning}", highlight=False)


@app.command("inspect")
def inspect_command(
    data: Annotated[Path, typer.Argument(help="Dataset folder (several machine types, one "
                                         "machine type, a MIMII SNR folder or a labelled "
                                         "task), or a run folder (its self-check).",
                                         show_default=False)],
    json_output: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON "
                                              "to stdout instead of tables.")] = False,
    ground_truth: Annotated[Path | None, typer.Option(
        "--ground-truth", help="Folder of DCASE ground-truth CSVs (ground_truth_data/, "
        "ground_truth_domain/...) giving evaluation clips their labels and domains.",
        show_default=False)] = None,
    headers: Annotated[bool, typer.Option("--headers/--no-headers", help="Read audio headers "
                                          "for durations, sample rates and channels.")] = True,
) -> None:
    """Show what a dataset folder holds, or a run folder's self-check.

    A dataset folder: clips per machine, section, domain, split and label. A run folder
    (written by ``soundwatch train``): per machine, the training clips, the out-of-fold
    false-alarm estimate at the run's threshold, how far ensemble members agree and how
    different the training clips sound, with plain warnings.

    Recognised layouts: DCASE 2020 Task 2 (development and evaluation), DCASE 2021-2024
    development and evaluation sets, raw MIMII (with or without SNR folders) and labelled
    folders ({train,test}/{0,1,normal,anomaly}). Audio files in no known layout are listed.
    """
    from soundwatch.datasets import inspect_dataset

    if is_run_folder(data):
        print_self_checks(data, json_output)
        return
    report = inspect_dataset(data, ground_truth=ground_truth, audio_info=headers)
    if json_output:
        import json

        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
        return
    _print_report(report)
