"""Export every machine type's detector of a run folder (what ``soundwatch export`` runs)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soundwatch.atomic import write_json
from soundwatch.detectors.loading import load_run_detector
from soundwatch.errors import ConfigError, DetectorError
from soundwatch.export.hints import require
from soundwatch.run_decisions import machine_decider
from soundwatch.runs import Run
from soundwatch.runtime.manifest import DECISION_FILE, INDEX_FILE, MANIFEST_FILE

__all__ = ["FORMATS", "MachineExport", "export_run"]

log = logging.getLogger(__name__)

FORMATS = ("onnx",)


@dataclass(frozen=True)
class MachineExport:
    """What happened to one machine type's detector.

    Attributes:
        machine: The machine type.
        path: The export folder, or ``None`` when it was not exported.
        reason: Why it was not exported (one line), or ``None``.
        verified: The parity check (``max_rel_diff``, ``decisions_equal``), when run.
    """

    machine: str
    path: Path | None
    reason: str | None = None
    verified: dict[str, Any] | None = None


def export_run(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    machines: Sequence[str] | None = None,
    fmt: str = "onnx",
    verify: bool = True,
    on_machine: Callable[[MachineExport], None] | None = None,
    channel: int | str | None = None,
) -> list[MachineExport]:
    """Export the detectors of a run, one sub-folder of ``out`` per machine type.

    ``out/index.json`` lists the exported machine types, so
    ``soundwatch.runtime.load(out, machine=...)`` finds them.

    Args:
        run_dir: A run folder written by ``soundwatch train``.
        out: Export folder (created; the run folder itself is never written).
        machines: Machine types to export (default: every trained one).
        fmt: Export format; ``"onnx"`` only.
        verify: Check each export's scores against torch (see
            :func:`soundwatch.export.detector.export_detector`).
        on_machine: Called with each machine's result as it is done.
        channel: The audio channel the runtime reads (default: the run's, as it trained).

    Returns:
        One :class:`MachineExport` per machine type.

    Raises:
        ConfigError: Unknown format, unknown machine, an output folder inside the run, or
            no detector could be exported.
    """
    from soundwatch.export.detector import export_detector, export_reason

    if fmt not in FORMATS:
        raise ConfigError("--format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    require("onnx", "onnxruntime")
    run = Run.open(run_dir)
    trained = run.machines()
    wanted = list(machines) if machines else trained
    unknown = [m for m in wanted if m not in trained]
    if unknown:
        raise ConfigError("--machine", f"no trained detector for {', '.join(unknown)} in "
                          f"{run.root} (trained: {', '.join(trained) or 'none'})")
    root = Path(out)
    if root.resolve() == run.root.resolve() or run.root.resolve() in root.resolve().parents:
        raise ConfigError(root, "write the export outside the run folder")
    if root.exists() and not root.is_dir():
        raise ConfigError(root, "export path is a file")
    results: list[MachineExport] = []
    for machine in wanted:
        det = load_run_detector(run, machine)
        reason = export_reason(det)
        if reason is not None:
            result = MachineExport(machine, None, reason)
        else:
            try:
                path = export_detector(det, root / machine, machine=machine, verify=verify,
                                       channel=run.channel() if channel is None else channel)
            except DetectorError as exc:
                result = MachineExport(machine, None, f"{exc.where}: {exc.reason}")
            else:
                manifest = _carry_decision(run, machine, path)
                result = MachineExport(machine, path, None, manifest.get("verified"))
        results.append(result)
        if on_machine is not None:
            on_machine(result)
    done = [r.machine for r in results if r.path is not None]
    if not done:
        reasons = "; ".join(f"{r.machine}: {r.reason}" for r in results)
        raise ConfigError(run.root, f"nothing could be exported ({reasons})")
    write_json(root / INDEX_FILE, {"machines": done, "run": run.root.name})
    return results


def _carry_decision(run: Any, machine: str, path: Path) -> dict[str, Any]:
    """Put the run's decision rule into an export folder; the manifest names it.

    The rule (:func:`soundwatch.run_decisions.machine_decider`: the threshold set at
    training or by ``soundwatch threshold``, section thresholds, training scores) goes
    to ``decision.json``; ``manifest.json`` (rewritten last) gets its threshold, policy
    and estimated false-alarm rate, so the runtime decides as ``score`` does.
    """
    import json


    manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    try:
        decider = machine_decider(run, machine)
    except DetectorError as exc:
        log.warning("%s: the export keeps the detector's threshold (%s)", machine, exc)
        return manifest
    write_json(path / DECISION_FILE, {"machine": machine, **decider.as_dict()})
    summary = decider.summary()
    manifest["threshold"] = {"value": float(decider.threshold), "policy": decider.policy,
                             "file": DECISION_FILE, "false_alarm": summary["false_alarm"],
                             "sections": summary.get("sections", {})}
    write_json(path / MANIFEST_FILE, manifest)
    return manifest
