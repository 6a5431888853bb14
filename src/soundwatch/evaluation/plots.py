"""Evaluation plots (PNG, written atomically): ROC curves, score histograms, confusion, bars."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from soundwatch.atomic import atomic_path
from soundwatch.errors import printable
from soundwatch.evaluation.dcase import METRIC_COLUMNS, iter_groups
from soundwatch.evaluation.metrics import roc_auc, roc_curve

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from soundwatch.thresholds import Thresholds

__all__ = ["plot_roc", "plot_histograms", "plot_confusion", "plot_metric_bars", "make_plots"]

log = logging.getLogger(__name__)

DPI = 100
_LABELS = {"auc_source": "AUC (source)", "auc_target": "AUC (target)", "pauc": "pAUC",
           "auc": "AUC"}


def _figure(width: float, height: float) -> Figure:
    # Figure + Agg canvas directly: no pyplot, no global backend state, no GUI.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: Path) -> Path:
    """Write a figure as PNG atomically (its folder made if missing); the one figure writer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    return path


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _roc_sets(df: pd.DataFrame, mode: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, y, score) curves of one machine type: per section, and per domain in 2024 mode."""
    curves = []
    for g in iter_groups(df):
        sec = f"sec {g.section} " if g.section else ""
        if mode == "dcase2024":
            for name, code in (("source", 0), ("target", 1)):
                keep = (g.domain == code) | (g.y == 1)
                curves.append((f"{sec}{name}", g.y[keep], g.score[keep]))
        else:
            curves.append((sec.strip() or "all", g.y, g.score))
    return curves


def plot_roc(df: pd.DataFrame, machine: str, mode: str, path: str | os.PathLike[str]) -> Path:
    """ROC curves of one machine type (per section, and per domain in DCASE 2024 mode)."""
    fig = _figure(4.8, 4.4)
    ax = fig.add_subplot()
    for label, y, s in _roc_sets(df[df["machine"] == machine], mode):
        fpr, tpr = roc_curve(y, s)
        if fpr.size and not np.isnan(fpr[0]):
            ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc(y, s):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.axvline(0.1, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC: {printable(machine)}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, Path(path))


def plot_histograms(
    df: pd.DataFrame, machine: str, path: str | os.PathLike[str],
    thresholds: Thresholds | None = None,
) -> Path:
    """Score histograms of one machine type by domain and label, thresholds marked."""
    part = df[df["machine"] == machine]
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    scores = part["score"].to_numpy(dtype=np.float64)
    bins = np.histogram_bin_edges(scores, bins=min(40, max(5, scores.size // 3))) \
        if scores.size else 10
    domains = part["domain"].where(part["domain"].notna(), "")
    for (domain, label), sub in part.groupby([domains, part["label"]], sort=True):
        name = "anomaly" if label == 1 else "normal"
        tag = f"{domain} {name}".strip()
        ax.hist(sub["score"], bins=bins, alpha=0.5, label=f"{tag} (n={len(sub)})")
    if thresholds is not None:
        seen: set[float] = set()
        for (m, sec), thr in sorted(thresholds.values.items()):
            if m != machine or thr in seen:
                continue
            seen.add(thr)
            sec_txt = f" sec {sec}" if sec else ""
            ax.axvline(thr, color="black", linestyle="--", linewidth=1.2,
                       label=f"threshold{sec_txt} ({thresholds.spec})")
    ax.set_xlabel("anomaly score (higher = more anomalous)")
    ax.set_ylabel("clips")
    ax.set_title(f"Scores: {printable(machine)}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return save_figure(fig, Path(path))


def plot_confusion(confusions: dict[str, list[list[int]]], path: str | os.PathLike[str]) -> Path:
    """Confusion matrices (rows: true label, columns: decision), one panel per machine type."""
    names = sorted(confusions)
    n = max(1, len(names))
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig = _figure(2.8 * cols, 2.6 * rows)
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        mat = np.asarray(confusions[name], dtype=np.float64)
        ax.imshow(mat, cmap="Blues", vmin=0, vmax=max(1.0, float(mat.max())))
        for r in range(2):
            for c in range(2):
                ax.text(c, r, str(int(mat[r, c])), ha="center", va="center",
                        color="white" if mat[r, c] > mat.max() / 2 else "black")
        ax.set_xticks([0, 1], ["normal", "anomaly"])
        ax.set_yticks([0, 1], ["normal", "anomaly"])
        ax.set_xlabel("decision")
        ax.set_ylabel("true")
        ax.set_title(printable(name), fontsize=9)
    fig.tight_layout()
    return save_figure(fig, Path(path))


def plot_metric_bars(machine_table: pd.DataFrame, mode: str, path: str | os.PathLike[str]
                     ) -> Path:
    """Bar chart of the AUC-type metrics per machine type (mean over its sections)."""
    cols = METRIC_COLUMNS[mode]
    names = [printable(str(m)) for m in machine_table["machine"]]
    fig = _figure(max(4.0, 1.1 * len(names) + 2), 3.6)
    ax = fig.add_subplot()
    x = np.arange(len(names))
    width = 0.8 / len(cols)
    for i, c in enumerate(cols):
        vals = machine_table[c].to_numpy(dtype=np.float64)
        ax.bar(x + (i - (len(cols) - 1) / 2) * width, np.nan_to_num(vals), width,
               label=_LABELS[c])
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xticks(x, names, rotation=30 if len(names) > 4 else 0)
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    ax.set_title("AUC and pAUC per machine type")
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, Path(path))


def make_plots(
    df: pd.DataFrame,
    mode: str,
    out_dir: str | os.PathLike[str],
    machine_table: pd.DataFrame,
    confusions: dict[str, list[list[int]]] | None = None,
    thresholds: Thresholds | None = None,
) -> dict[str, Any]:
    """Draw every evaluation plot of a labelled scores table into ``out_dir``.

    Args:
        df: Evaluable rows (labelled), with ``decision`` when thresholded.
        mode: Evaluation mode.
        out_dir: Folder for the PNGs.
        machine_table: Per machine type means (for the bar chart).
        confusions: Machine type -> confusion matrix.
        thresholds: Thresholds to mark on the histograms.

    Returns:
        ``{"roc": {machine: path}, "hist": {...}, "confusion": path | None, "bars": path}``.
    """
    out = Path(out_dir)
    paths: dict[str, Any] = {"roc": {}, "hist": {}, "confusion": None, "bars": None}
    for machine in sorted(df["machine"].astype(str).unique()):
        paths["roc"][machine] = plot_roc(df, machine, mode, out / f"roc_{_safe(machine)}.png")
        paths["hist"][machine] = plot_histograms(df, machine, out / f"hist_{_safe(machine)}.png",
                                                 thresholds)
    if confusions:
        paths["confusion"] = plot_confusion(confusions, out / "confusion_matrix.png")
    if not machine_table.empty:
        paths["bars"] = plot_metric_bars(machine_table, mode, out / "auc_pauc.png")
    log.info("wrote plots to %s", out)
    return paths
