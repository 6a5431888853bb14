"""The ``threshold`` command: show or change a run's alarm level without retraining."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from soundwatch.cli.app import app, make_console
from soundwatch.errors import ConfigError

__all__ = ["threshold", "describe_decider"]


def describe_decider(machine: str, decider: Any) -> str:
    """One line: the machine type's policy, threshold and estimated false-alarm rate."""
    far = decider.false_alarm
    line = (f"{machine}: {decider.policy}, threshold {decider.threshold:.6g}; "
            f"{far.describe()}")
    if far.too_few:
        line += (f"; with {far.n} normal training clips a {100 * far.target:.3g} % target "
                 "cannot be confirmed: record more normal clips")
    if decider.sections:
        line += f"; own thresholds for section(s) {', '.join(sorted(decider.sections))}"
    if decider.fallback:
        line += (f"; section(s) {', '.join(decider.fallback)} use the machine type's "
                 "(too few training clips)")
    return line


@app.command()
def threshold(
    run: Annotated[Path, typer.Argument(help="Run folder written by soundwatch train.")],
    far: Annotated[float | None, typer.Option(
        "--far", help="Target false-alarm rate on normal recordings (0.005 = 0.5 %).",
        show_default=False)] = None,
    policy: Annotated[str | None, typer.Option(
        "--policy", help="Any policy: far:RATE, fixed:V, gamma:Q or contamination:Q.",
        show_default=False)] = None,
    machine: Annotated[list[str] | None, typer.Option(
        "--machine", "-m", help="Only these machine types (default: all).")] = None,
) -> None:
    """Show or change RUN's alarm level (decision threshold), without retraining.

    Without --far/--policy, prints each machine type's rule and its estimated
    false-alarm rate. With one, refits the threshold on the run's out-of-fold training
    scores, saves it (RUN/decisions/<machine>.json) and records the change in run.json;
    later scorings, watch, serve and exports use it (earlier scorings keep theirs).
    """
    from soundwatch.run_decisions import load_deciders, refit_threshold
    from soundwatch.runs import Run

    if far is not None and policy is not None:
        raise ConfigError("--far", "give --far or --policy, not both")
    chosen = f"far:{far:g}" if far is not None else policy
    opened = Run.open(run)
    machines = machine or opened.machines()
    unknown = sorted(set(machines) - set(opened.machines()))
    if unknown:
        raise ConfigError("--machine", f"no trained detector for {', '.join(unknown)} in "
                          f"{run} (trained: {', '.join(opened.machines())})")
    console = make_console(highlight=False)
    if chosen is None:
        deciders = load_deciders(run)
        for name in machines:
            console.print(describe_decider(name, deciders[name]))
        return
    for name in machines:
        new = refit_threshold(opened, name, chosen, reason="soundwatch threshold")
        console.print(describe_decider(name, new))
    console.print(f"recorded in {opened.info_path}; next scorings use it")
