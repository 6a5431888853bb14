"""Detection quality from an ``abnormal/`` folder given at training (never trained on)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from soundwatch.datasets.checks import check_clips
from soundwatch.detectors.loading import load_run_detector, run_context_for
from soundwatch.evaluation.metrics import roc_auc
from soundwatch.run_decisions import machine_decider
from soundwatch.thresholds import best_f1_threshold

if TYPE_CHECKING:
    from soundwatch.datasets.clip import Clip
    from soundwatch.runs import Run

__all__ = ["check_abnormal", "describe_check"]

log = logging.getLogger(__name__)


def check_abnormal(run: Run, machine: str, clips: Sequence[Clip]) -> dict[str, Any]:
    """Score a trained machine's abnormal recordings against its normal ones.

    The abnormal clips (``normal/`` + ``abnormal/`` folders, :mod:`soundwatch.datasets.folders`)
    never reach ``fit``: they are scored by the saved detector after training and set
    against the normal clips' out-of-fold training scores (each normal clip scored by a
    model that did not see it), which gives an honest AUC without holding normals out.
    The suggested threshold (best F1 on those scores) is only reported; the run's
    decisions keep the threshold fixed at training.

    Args:
        run: The trained run.
        machine: The machine type.
        clips: Its abnormal clips.

    Returns:
        JSON-able facts: ``abnormal_clips``, ``flagged`` (at the run's threshold),
        ``normal_clips``, ``normal_flagged`` (out-of-fold normal scores above it),
        ``threshold``, ``auc``, ``suggested_threshold``, ``suggested_f1``, ``skipped``
        (unreadable abnormal files, with reasons).
    """
    det = load_run_detector(run, machine)
    decider = machine_decider(run, machine, det)
    context = run_context_for(run)  # read as the run trained (its channel)
    good, skipped = check_clips(clips, True, context.channel)
    facts: dict[str, Any] = {"abnormal_clips": len(good), "skipped": skipped,
                             "threshold": float(decider.threshold)}
    normal = np.asarray(decider.train_scores, dtype=np.float64)
    normal = normal[np.isfinite(normal)]
    facts["normal_clips"] = int(normal.size)
    facts["normal_flagged"] = int(decider.decide(normal).sum())
    if not good:
        log.warning("%s: no readable abnormal recording to check the detector with", machine)
        return facts
    scores = np.asarray(det.score(good, context), dtype=np.float64)
    facts["flagged"] = int(decider.decide(scores).sum())
    facts["abnormal_scores"] = {str(c.path): float(s) for c, s in zip(good, scores, strict=True)}
    if normal.size:
        y = np.r_[np.zeros(normal.size), np.ones(scores.size)]
        both = np.r_[normal, scores]
        facts["auc"] = float(roc_auc(y, both))
        value, f1 = best_f1_threshold(y, both)
        facts["suggested_threshold"] = float(value)
        facts["suggested_f1"] = float(f1)
    return facts


def describe_check(machine: str, facts: dict[str, Any]) -> str:
    """The check in one line of plain words (what ``train`` prints)."""
    n = facts.get("abnormal_clips", 0)
    if not n:
        return f"{machine}: no readable abnormal recording to check the detector with"
    text = (f"{machine}: {facts['flagged']} of {n} abnormal recording(s) flagged (never "
            f"trained on), {facts['normal_flagged']} of {facts['normal_clips']} normal ones "
            f"(out of fold) at threshold {facts['threshold']:.4g}")
    if "auc" in facts:
        text += (f"; AUC {facts['auc']:.3f}; suggested threshold "
                 f"{facts['suggested_threshold']:.4g} (best F1 {facts['suggested_f1']:.2f} on "
                 "these clips; not applied)")
    return text
