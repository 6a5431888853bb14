"""All benchmarks in one run (``make bench``): tables printed and written to docs/benchmarks.md.

Run::

    .venv/bin/python benchmarks/run.py                  # full run (< 60 min on 2 cores)
    .venv/bin/python benchmarks/run.py --quick          # smaller data and epochs (< 8 min)
    .venv/bin/python benchmarks/run.py --only pink,speed --out /tmp/bench --no-write
    .venv/bin/python benchmarks/run.py --only machines --machines-seed 1 --no-write
                                                        # a validation set (not reported)

Sections (``--only`` takes a comma-separated subset):

* ``accept``   the issue-5 acceptance row: pink-noise task (synthetic base, SNR 0-10 dB,
               400 train / 200 test 10 s clips), supervised ``cnn1d`` and ``wavevision``
               with their ``configs/*-pink.yaml`` configs: AUC and training wall time.
* ``pink``     pink-noise detection at SNR +10, +5, 0, -5, -10 dB: AUC, F1, accuracy of
               every detector, supervised and unsupervised; AUC-vs-SNR plot.
* ``machines`` synthetic machines (DCASE 2024 layout): AUC (source), AUC (target), pAUC,
               official score per detector and machine type, difference to
               ``ae-mahalanobis`` (:data:`REFERENCE`).
* ``real``     ../shared/data/real/dcase2020-mini (DCASE 2020 layout): slider (75 training
               clips) and few-shot machine types, bootstrap 95 % intervals.
* ``speed``    feature throughput (benchmarks/features.py), training seconds per epoch and
               inference milliseconds per 10 s clip for every detector.

Hyper-parameters come from the shipped ``configs/`` (else the detector presets); only
``epochs`` is capped to fit the time budget (every cap is printed and written). Everything
runs on the CPU with one torch thread (``OMP_NUM_THREADS``, default 1) and fixed seeds;
the feature-throughput rows use the usable cores, as the feature targets are for 2 cores.
Scratch data goes to ``--out`` (default: a temporary folder that is deleted afterwards),
never into the repository. A failing section is reported and the run goes on.
docs/benchmarks.md is rewritten from this run's numbers, keeping the marker sections of
the standalone scripts (``--no-write`` leaves it alone).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import logging
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench_doc import md_table, scratch_folder

# The same thread setting as the CLI (soundwatch.cli.main), set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "benchmarks_pink_auc_snr.png"
REAL = ROOT.parent / "shared" / "data" / "real" / "dcase2020-mini"
SECTIONS = ("accept", "pink", "machines", "real", "speed")
TITLES = {
    "accept": "Pink-noise acceptance (issue 5)",
    "pink": "Pink-noise detection against SNR",
    "machines": "Synthetic machines (DCASE 2024 layout)",
    "real": "Real recordings (DCASE 2020 mini)",
    "speed": "Speed and memory",
}
NETWORKS = ("cnn1d", "wavevision")
REFERENCE = "ae-mahalanobis"
"""The machines table's reference: the DCASE baseline network, selective Mahalanobis score."""
SAME_NETWORK = ("ae",)
"""Left out of the automatic lists: ``REFERENCE``'s network scored by MSE (``ae`` is in the
embeddings and synth-select benchmarks; here it would repeat the network's training)."""
SEED = 0
THREADS = int(os.environ["OMP_NUM_THREADS"])
log = logging.getLogger("bench")


# ----------------------------------------------------------------------------- sizes
@dataclass(frozen=True)
class Scale:
    """Data sizes and epoch caps of one mode (full or quick).

    Epoch caps map a detector name (or ``default``) to the epochs used instead of the
    detector's (only when it has more).
    """

    name: str
    budget_min: float
    section_budget_min: dict[str, float]
    accept: tuple[int, int, float]  # n_train, n_test, seconds
    accept_epochs: dict[str, int] | None  # None: the configs' epochs
    snrs: tuple[float, ...]
    pink: tuple[int, int, float]
    pink_epochs: dict[str, int]
    machine_types: str | None  # None: all
    machines: tuple[int, int, int, float]  # train_source, train_target, test_per_group, s
    machine_epochs: dict[str, int]
    real_types: tuple[str, ...] | None  # None: all
    real_epochs: dict[str, int]
    n_boot: int
    speed_clips: int
    speed_epochs: int
    feature_clips: int
    feature_seed_clips: int


FULL = Scale(
    name="full", budget_min=60.0,
    section_budget_min={"accept": 14, "pink": 10, "machines": 10, "real": 6, "speed": 3},
    accept=(400, 200, 10.0), accept_epochs=None,
    snrs=(10.0, 5.0, 0.0, -5.0, -10.0), pink=(60, 60, 5.0),
    pink_epochs={"default": 6, REFERENCE: 30},
    machine_types=None, machines=(20, 3, 6, 5.0), machine_epochs={"default": 6, REFERENCE: 30},
    real_types=None, real_epochs={"default": 6, REFERENCE: 30}, n_boot=1000,
    speed_clips=24, speed_epochs=3, feature_clips=200, feature_seed_clips=10,
)
QUICK = Scale(
    name="quick", budget_min=8.0,
    section_budget_min={"accept": 0.7, "pink": 2.3, "machines": 2.3, "real": 1.7, "speed": 1},
    accept=(40, 20, 3.0), accept_epochs={"cnn1d": 2, "wavevision": 2},
    snrs=(10.0, 0.0, -10.0), pink=(16, 16, 3.0), pink_epochs={"default": 2},
    machine_types="fan,valve", machines=(8, 2, 3, 3.0), machine_epochs={"default": 2},
    real_types=("fan", "slider"), real_epochs={"default": 2}, n_boot=200,
    speed_clips=6, speed_epochs=2, feature_clips=40, feature_seed_clips=3,
)


def cap(caps: dict[str, int], name: str) -> int:
    """The epoch cap of detector ``name`` in a section."""
    return caps.get(name, caps["default"])


@dataclass
class Ctx:
    """What every section gets: sizes, scratch folder, cache and the list of overrides."""

    scale: Scale
    out: Path
    workers: int
    write: bool = True
    overrides: list[str] = field(default_factory=list)
    machines_seed: int = SEED

    @property
    def cache_dir(self) -> str:
        return str(self.out / "feature-cache")

    @property
    def quick(self) -> bool:
        return self.scale.name == "quick"


@dataclass
class Result:
    """One section's outcome."""

    key: str
    status: str = "ok"
    text: str = ""
    error: str = ""
    wall_s: float = 0.0
    peak_rss_mb: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- helpers
def load_script(name: str) -> Any:
    """Import benchmarks/<name>.py as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).with_name(
        f"{name}.py"))
    if spec is None or spec.loader is None:
        raise ImportError(f"benchmarks/{name}.py not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def maxrss_mb() -> float:
    """Peak RSS of this process so far (ru_maxrss, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_info() -> dict[str, str]:
    import torch

    cpu = platform.processor() or "?"
    ram = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))} ({platform.release()})"
    except OSError:
        pass
    from bench_doc import usable_cores

    cores = str(usable_cores())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {
        "cpu": cpu, "cores": f"{cores} usable ({os.cpu_count()} logical)", "ram": ram,
        "os": os_name, "python": platform.python_version(),
        "torch": f"{torch.__version__} ({torch.get_num_threads()} threads, CPU)",
        "load": f"{load:.1f}",
    }


def git_info() -> tuple[str, str]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return "unknown", "unknown"
    return commit, "dirty (uncommitted changes)" if dirty else "clean"


def command_line() -> str:
    exe = Path(sys.executable)
    try:
        exe_text = str(exe.relative_to(ROOT))
    except ValueError:
        exe_text = "python"
    script = Path(sys.argv[0]).resolve()
    try:
        script_text = str(script.relative_to(ROOT))
    except ValueError:
        script_text = sys.argv[0]
    return shlex.join([exe_text, script_text, *sys.argv[1:]])


def f3(x: float | None) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3f}"


# ----------------------------------------------------------------------------- detectors
@dataclass(frozen=True)
class System:
    """A detector as benchmarked: a label, the registry name and its resolved parameters."""

    label: str
    name: str
    params: dict[str, Any]
    config: str


def make_system(ctx: Ctx, section: str, name: str, config: str | None = None,
                objective: str | None = None, epochs: int | None = None,
                label: str | None = None) -> System:
    """A detector with its shipped config (when one exists) and an ``epochs`` cap (recorded)."""
    from bench_runs import config_epochs
    from soundwatch.config import find_config

    config = config or name
    if find_config(config) is None:
        config = None
    params: dict[str, Any] = {}
    if objective is not None:
        params["objective"] = objective
    old = config_epochs(name, config) if epochs is not None else None
    if old is not None and epochs is not None and old > epochs:
        params["epochs"] = epochs
        note = f"{section}: `{label or name}` epochs {old} -> {epochs}"
        if note not in ctx.overrides:
            ctx.overrides.append(note)
    return System(label or name, name, params, config or "(detector defaults)")


def unsupervised_systems(ctx: Ctx, section: str, caps: dict[str, int],
                         names: Sequence[str] | None = None,
                         both_objectives: bool = True) -> list[System]:
    """Every registered detector (or ``names``) with its config; networks in both objectives."""
    from soundwatch.detectors import list_detectors

    systems = []
    for name in names or list_detectors():
        if name in NETWORKS:
            objectives = ("auxiliary", "synthetic") if both_objectives else (None,)
            for obj in objectives:
                label = f"{name} {obj}" if obj else f"{name} (preset objective)"
                # the synthetic objective has its own configs (configs/<net>-synthetic.yaml)
                config = f"{name}-synthetic" if obj == "synthetic" else None
                systems.append(make_system(ctx, section, name, config=config,
                                           epochs=cap(caps, name), label=label))
        elif name in ("ensemble",):
            continue  # compositions of the others: benchmarked in their own section
        elif name in SAME_NETWORK:
            continue  # REFERENCE's network with another scorer (embeddings, synth-select)
        else:
            systems.append(make_system(ctx, section, name, epochs=cap(caps, name)))
    return systems


def fit_and_score(ctx: Ctx, system: System, data: Path, tag: str,
                  machines: list[str] | None = None) -> Any:
    """``soundwatch train`` + ``score`` of one system on a data folder (the CLI's functions)."""
    from bench_runs import train_and_score

    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in system.label)
    out = ctx.out / "runs" / f"{tag}-{safe}"
    shutil.rmtree(out, ignore_errors=True)
    config = None if system.config.startswith("(") else system.config
    return train_and_score(data, system.name, out, config=config, params=system.params,
                           seed=SEED, machines=machines, cache_dir=ctx.cache_dir)


# ----------------------------------------------------------------------------- pink
def _pink_data(ctx: Ctx, n_train: int, n_test: int, seconds: float, snr: Any, tag: str
               ) -> Path:
    from soundwatch.synth import synth_pink_noise

    root = ctx.out / f"pink-{tag}-{n_train}-{n_test}-{seconds:g}s"
    synth_pink_noise(root, n_train=n_train, n_test=n_test, snr_db=snr, seconds=seconds,
                     seed=SEED, workers=ctx.workers)
    return root


def _labelled_metrics(fs: Any, threshold: str) -> dict[str, float]:
    from soundwatch.evaluation import evaluate_scores

    res = evaluate_scores(fs.test, fs.train, threshold=threshold, mode="labelled")
    row = res.sections.iloc[0]
    return {k: float(row[k]) for k in ("auc", "pauc", "f1", "accuracy")}


def section_accept(ctx: Ctx) -> Result:
    n_train, n_test, seconds = ctx.scale.accept
    t0 = time.perf_counter()
    data = _pink_data(ctx, n_train, n_test, seconds, (0.0, 10.0), "snr0-10")
    synth_s = time.perf_counter() - t0
    rows, extra = [], {}
    for name in NETWORKS:
        epochs = None if ctx.scale.accept_epochs is None else ctx.scale.accept_epochs[name]
        system = make_system(ctx, "accept", name, config=f"{name}-pink", epochs=epochs)
        try:
            fs = fit_and_score(ctx, system, data, "accept")
            m = _labelled_metrics(fs, "fixed:0.5")
            ok_auc = "yes" if m["auc"] >= 0.97 else "**no**"
            ok_t = "yes" if fs.fit_s <= 600 else "**no**"
            rows.append([f"`{name}` (`configs/{name}-pink.yaml`)", f3(m["auc"]), ok_auc,
                         f"{fs.fit_s / 60:.1f} min", ok_t, f3(m["f1"]), f3(m["accuracy"]),
                         fs.epochs, f"{fs.score_s / len(fs.test) * 1000:.0f}"])
            extra[name] = {"auc": m["auc"], "fit_s": fs.fit_s}
            print(f"  accept {name}: AUC {m['auc']:.4f} fit {fs.fit_s:.0f} s", flush=True)
        except Exception as exc:  # noqa: BLE001 - one detector failing must not lose the rest
            traceback.print_exc()
            rows.append([f"`{name}`", f"failed: {type(exc).__name__}: {exc}", "", "", "", "", "",
                         "", ""])
    text = "\n".join([
        f"Pink-noise task, synthetic machine base, SNR drawn uniformly in 0-10 dB per clip, "
        f"{n_train} training / {n_test} test clips of {seconds:g} s (balanced), supervised "
        f"objective, presets' hyper-parameters. Targets: AUC >= 0.97, training <= 10 min each. "
        f"F1 and accuracy at probability 0.5. Data generation: {synth_s:.0f} s.",
        "",
        md_table(["detector", "AUC", "AUC >= 0.97", "training wall", "<= 10 min", "F1 @0.5",
                  "accuracy @0.5", "epochs run", "ms / test clip"], rows),
    ])
    return Result("accept", text=text, extra=extra)


def section_pink(ctx: Ctx) -> Result:
    n_train, n_test, seconds = ctx.scale.pink
    ep = ctx.scale.pink_epochs
    sup = [make_system(ctx, "pink", n, config=f"{n}-pink", epochs=cap(ep, n),
                       label=f"{n} supervised")
           for n in NETWORKS]
    names = ["cnn1d", "wavevision", "vae1d", "unet1d-ae", REFERENCE, "gmm", "knn",
             "mahalanobis", "knn-frames", "embedding"]
    from soundwatch.detectors import list_detectors

    names = [n for n in names if n in list_detectors()]
    unsup = unsupervised_systems(ctx, "pink", ep, names, both_objectives=False)
    results: dict[str, dict[float, dict[str, float]]] = {}
    times: dict[str, float] = {}
    for snr in ctx.scale.snrs:
        data = _pink_data(ctx, n_train, n_test, seconds, snr, f"snr{snr:+g}")
        for setting, systems, threshold in (
            ("supervised", sup, "fixed:0.5"),
            ("unsupervised", unsup, "gamma"),
        ):
            for system in systems:
                key = system.label if setting == "supervised" else f"{system.label} unsup."
                t_fit = time.perf_counter()
                try:
                    fs = fit_and_score(ctx, system, data, f"pink{snr:+g}")
                    m = _labelled_metrics(fs, threshold)
                    times[key] = times.get(key, 0.0) + fs.fit_s + fs.score_s
                except Exception as exc:  # noqa: BLE001
                    traceback.print_exc()
                    m = {"error": f"{type(exc).__name__}: {exc}"}  # type: ignore[dict-item]
                results.setdefault(key, {})[snr] = m
                auc = m.get("auc", float("nan"))
                print(f"  pink SNR {snr:+g} dB {key}: AUC {f3(auc)} "
                      f"({time.perf_counter() - t_fit:.0f} s)", flush=True)
    snrs = ctx.scale.snrs
    header = ["detector (setting)", *[f"{s:+g} dB" for s in snrs], "fit+score s (all SNRs)"]
    tables = []
    for metric, title in (("auc", "AUC"), ("f1", "F1"), ("accuracy", "accuracy")):
        rows = []
        for key, per in results.items():
            cells = [f"failed ({per[s]['error']})" if "error" in per[s] else f3(per[s][metric])
                     for s in snrs]
            rows.append([f"`{key}`", *cells, f"{times.get(key, float('nan')):.0f}"])
        tables += [f"**{title}**", "", md_table(header, rows), ""]
    plot_path = _plot_pink(results, snrs, ctx.quick, PLOT if ctx.write else ctx.out / PLOT.name)
    counts = (f"{n_train} training clips ({n_train // 2} normal, {n_train - n_train // 2} with "
              f"pink noise) and {n_test} test clips ({n_test // 2} / {n_test - n_test // 2}) "
              f"of {seconds:g} s per SNR")
    text = "\n".join([
        f"One data set per SNR (`synth_pink_noise`, synthetic machine base, fixed SNR): "
        f"{counts}. **Supervised**: `cnn1d`/`wavevision` with `configs/<net>-pink.yaml` "
        "(objective supervised) trained on the labelled training clips; F1/accuracy at "
        "probability 0.5. **Unsupervised**: every detector trained on the normal training "
        "clips only, with its `configs/<name>.yaml` config (`cnn1d`/`wavevision`: the "
        "preset's `auxiliary` objective; with a single class it learns normal vs. synthetic "
        "anomalies, which include pink noise, so it has seen the kind of anomaly it is "
        "tested on); F1/accuracy at the DCASE-baseline `gamma` threshold (90 % quantile of a "
        "gamma fitted to the training clips' scores; no test labels used). The seed reported "
        "AUC 0.96-0.97 at an unknown SNR.",
        "",
        *tables,
        f"![AUC against SNR]({plot_path.name})" if plot_path else "(plot failed)",
    ])
    return Result("pink", text=text, extra={"auc": {k: {s: v.get("auc") for s, v in per.items()}
                                                    for k, per in results.items()}})


def _plot_pink(results: dict[str, dict[float, dict[str, float]]], snrs: Sequence[float],
               quick: bool, path: Path) -> Path | None:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from soundwatch.atomic import atomic_path

        fig = Figure(figsize=(8, 5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for key, per in results.items():
            y = [per[s].get("auc", np.nan) for s in snrs]
            style = "-o" if "unsup" not in key else "--s"
            ax.plot(snrs, y, style, label=key, markersize=4)
        ax.axhspan(0.96, 0.97, color="grey", alpha=0.25, label="seed: AUC 0.96-0.97 (SNR ?)")
        ax.set_xlabel("SNR of the pink noise (dB)")
        ax.set_ylabel("ROC AUC (test)")
        ax.set_ylim(0.3, 1.02)
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
        ax.set_title("Pink-noise detection" + (" (QUICK run: tiny data, 2 epochs)" if quick
                                               else ""))
        ax.set_xticks(list(snrs))
        ax.legend(fontsize=7, loc="lower left", ncol=2)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        return path
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        return None


# ----------------------------------------------------------------------------- DCASE tables
def run_systems(ctx: Ctx, systems: Sequence[System], data: Path, machines: Sequence[str],
                tag: str) -> tuple[dict[str, Any], dict[str, float], dict[str, str]]:
    """Train/score every system (all machine types) through the pipeline."""
    tables: dict[str, Any] = {}
    walls: dict[str, float] = {}
    errors: dict[str, str] = {}
    for system in systems:
        t0 = time.perf_counter()
        try:
            fs = fit_and_score(ctx, system, data, tag, machines=list(machines))
            tables[system.label] = (fs.test, fs.train)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            errors[system.label] = f"{type(exc).__name__}: {exc}"
        walls[system.label] = time.perf_counter() - t0
        print(f"  {tag} {system.label}: {walls[system.label]:.0f} s"
              + (f" FAILED {errors[system.label]}" if system.label in errors else ""), flush=True)
    return tables, walls, errors


def section_machines(ctx: Ctx) -> Result:
    from soundwatch.datasets import discover
    from soundwatch.evaluation import evaluate_scores
    from soundwatch.synth import MACHINE_TYPES, synth_machines

    src, tgt, per_group, seconds = ctx.scale.machines
    types = (ctx.scale.machine_types or "all").replace(",", "-")
    data_seed = ctx.machines_seed
    root = ctx.out / f"machines-{types}-{src}-{tgt}-{per_group}-{seconds:g}s-seed{data_seed}"
    t0 = time.perf_counter()
    synth_machines(root, ctx.scale.machine_types, src, tgt, per_group, seconds, 16000, data_seed,
                   ctx.workers)
    synth_s = time.perf_counter() - t0
    clips = discover(root)
    machines = [m for m in MACHINE_TYPES if any(c.machine == m for c in clips)]
    systems = unsupervised_systems(ctx, "machines", ctx.scale.machine_epochs)
    tables, walls, errors = run_systems(ctx, systems, root, machines, "machines")
    rows, summary = [], []
    per: dict[str, dict[str, dict[str, float]]] = {}
    official: dict[str, float] = {}
    for label, (test_df, train_df) in tables.items():
        res = evaluate_scores(test_df, train_df, threshold="gamma", mode="dcase2024")
        official[label] = res.official_score
        per[label] = {}
        for m in machines:
            sub = test_df[test_df["machine"] == m]
            r = evaluate_scores(sub, train_df[train_df["machine"] == m], threshold="gamma",
                                mode="dcase2024")
            sec = r.sections.iloc[0]
            per[label][m] = {"auc_source": float(sec["auc_source"]),
                             "auc_target": float(sec["auc_target"]),
                             "pauc": float(sec["pauc"]), "score": r.official_score,
                             "f1": float(sec.get("f1", np.nan))}
    ref = per.get(REFERENCE)
    for label in [s.label for s in systems]:
        if label in errors:
            summary.append([f"`{label}`", f"failed: {errors[label]}", "", "", ""])
            continue
        d_off = (official[label] - official[REFERENCE] if REFERENCE in official
                 else float("nan"))
        summary.append([f"`{label}`", f3(official[label]),
                        "reference" if label == REFERENCE else f"{d_off:+.3f}",
                        " / ".join(f3(per[label][m]["score"]) for m in machines),
                        f"{walls[label]:.0f}"])
        for m in machines:
            v = per[label][m]
            diff = ("ref." if label == REFERENCE else
                    f"{v['score'] - ref[m]['score']:+.3f}" if ref else "n/a")
            rows.append([m, f"`{label}`", f3(v["auc_source"]), f3(v["auc_target"]),
                         f3(v["pauc"]), f3(v["score"]), diff, f3(v["f1"])])
    rows.sort(key=lambda r: machines.index(r[0]))
    n_test = 4 * per_group
    seed_text = ("data seed 0 (the benchmark set; seeds >= 1, `--machines-seed`, are "
                 "validation sets for choosing detectors, see `benchmarks/synth_select.py`)"
                 if data_seed == 0 else f"data seed {data_seed} (a VALIDATION set, not the "
                 "benchmark set of seed 0)")
    text = "\n".join([
        f"`synth_machines`: {len(machines)} machine types ({', '.join(machines)}), each "
        f"{src} source + {tgt} target normal training clips and {n_test} test clips "
        f"({per_group} per source/target x normal/anomaly) of {seconds:g} s, {seed_text}; "
        f"data generation {synth_s:.0f} s. One detector per machine type, trained on its "
        "normal training clips with its preset (`cnn1d`/`wavevision` in both unsupervised "
        "objectives). "
        "Metrics as the DCASE 2024 evaluator (`soundwatch.evaluation`, mode dcase2024); "
        "score = harmonic mean of AUC (source), AUC (target), pAUC; official = harmonic "
        "mean over all machine types. F1 at the gamma threshold (training scores).",
        "",
        md_table(["detector", "official score", f"vs `{REFERENCE}`",
                  f"score per type ({' / '.join(machines)})", "train+score s"], summary),
        "",
        md_table(["machine", "detector", "AUC (source)", "AUC (target)", "pAUC", "score",
                  f"score - {REFERENCE}", "F1 @gamma"], rows),
    ])
    return Result("machines", text=text, extra={"official": official})


def section_real(ctx: Ctx) -> Result:
    from soundwatch.datasets import discover
    from soundwatch.evaluation import evaluate_scores

    if not REAL.is_dir():
        msg = f"skipped: {REAL} not found (the real recordings are not on this machine)"
        print("  " + msg)
        return Result("real", status="skipped", text=msg)
    clips = discover(REAL)
    machines = sorted({c.machine for c in clips})
    if ctx.scale.real_types is not None:
        machines = [m for m in machines if m in ctx.scale.real_types]
        clips = [c for c in clips if c.machine in machines]
    counts = {m: (sum(1 for c in clips if c.machine == m and c.split == "train"),
                  sum(1 for c in clips if c.machine == m and c.split == "test" and c.label == 0),
                  sum(1 for c in clips if c.machine == m and c.split == "test" and c.label == 1))
              for m in machines}
    systems = unsupervised_systems(ctx, "real", ctx.scale.real_epochs)
    tables, walls, errors = run_systems(ctx, systems, REAL, machines, "real")
    n_boot = ctx.scale.n_boot
    slider_rows, few_rows = [], []
    for system in systems:
        label = system.label
        if label in errors:
            slider_rows.append([f"`{label}`", f"failed: {errors[label]}", "", "", ""])
            continue
        test_df, _ = tables[label]
        for m in machines:
            sub = test_df[test_df["machine"] == m]
            r = evaluate_scores(sub, threshold="fixed:0", mode="dcase2020", ci=True,
                                n_boot=n_boot, seed=SEED)
            aucs, paucs, ci = [], [], r.ci or {}
            for _, sec in r.sections.iterrows():
                g = ci.get("groups", {}).get(f"{m}/{sec['section']}", {})
                lo, hi = g.get("auc", [np.nan, np.nan])
                plo, phi = g.get("pauc", [np.nan, np.nan])
                aucs.append(f"{sec['section']}: {f3(sec['auc'])} [{f3(lo)}, {f3(hi)}]")
                paucs.append(f"{sec['section']}: {f3(sec['pauc'])} [{f3(plo)}, {f3(phi)}]")
            s_ci = ci.get("summary", {}).get("official_score", [np.nan, np.nan])
            row = [f"`{label}`", "<br>".join(aucs), "<br>".join(paucs),
                   f"{f3(r.official_score)} [{f3(s_ci[0])}, {f3(s_ci[1])}]"]
            if m == "slider":
                slider_rows.append([*row, f"{walls[label]:.0f}"])
            else:
                few_rows.append([m, *row])
    few_rows.sort(key=lambda r: r[0])
    count_text = ", ".join(f"{m} {tr} train / {n0}+{n1} test" for m, (tr, n0, n1)
                           in counts.items())
    text = "\n".join([
        f"`{REAL.relative_to(ROOT.parent)}` (real DCASE 2020 recordings, 10 s, 16 kHz). "
        f"**Small samples**: {count_text} (normal+anomalous test clips). Each detector is "
        "trained per machine type on its normal training clips with its preset; slider has "
        "75 training clips, the other types only 5-7 (few-shot). AUC and pAUC per machine ID "
        f"(section), DCASE 2020 definitions, with percentile bootstrap 95 % intervals "
        f"({n_boot} replicates, stratified by label, seed {SEED}); score = mean of AUC and pAUC "
        "(our DCASE 2020 convention). With 10-20 test clips per ID the intervals are wide: "
        "differences inside them are not meaningful.",
        "",
        "**slider (75 training clips)**",
        "",
        md_table(["detector", "AUC per ID [95 % CI]", "pAUC per ID [95 % CI]",
                  "score [95 % CI]", "train+score s (all types)"], slider_rows),
        "",
        "**Few-shot machine types (5-7 training clips)**",
        "",
        md_table(["machine", "detector", "AUC per ID [95 % CI]", "pAUC per ID [95 % CI]",
                  "score [95 % CI]"], few_rows),
    ])
    return Result("real", text=text)


# ----------------------------------------------------------------------------- speed
def section_speed(ctx: Ctx) -> Result:
    from bench_doc import median_score_ms, usable_cores
    from soundwatch.audio import load
    from soundwatch.datasets import discover
    from soundwatch.pipeline import make_detector, resolve_config, run_context
    from soundwatch.synth import synth_machines

    fb = load_script("features")
    wav = ctx.out / "speed-wav"
    wav.mkdir(parents=True, exist_ok=True)
    n_feat = ctx.scale.feature_clips
    paths = fb.make_clips(wav, n_feat)
    waves = [load(p) for p in paths[:64]]
    cores = usable_cores()  # the feature targets are for 2 cores
    images = fb.bench_images(waves, ctx.scale.feature_seed_clips, "cpu", cores)
    ext = fb.bench_extract(paths, ctx.out / "speed-cache", "cpu", cores)
    feat_rows = [
        [f"seed image path (librosa + pyplot savefig + PNG decode + resize, one clip at a "
         f"time), {ctx.scale.feature_seed_clips} clips", f"{images['seed']:.1f} clips/s"],
        [f"soundwatch image path (`logmel_seed` + `render_batch` 228x228, batches of 64, "
         f"{cores} torch threads)", f"{images['soundwatch']:.0f} clips/s"],
        ["image path ratio (soundwatch / matplotlib)",
         f"**{images['soundwatch'] / images['seed']:.0f}x**"],
        [f"load + log-mel (`extract`, no cache, {cores} torch threads), {n_feat} clips",
         f"{ext['load_logmel']:.0f} clips/s"],
        ["cache fill / cache hit (open memmaps)",
         f"{ext['cache_fill']:.0f} / {ext['cache_hit_open']:.0f} clips/s"],
    ]
    n = ctx.scale.speed_clips
    root = ctx.out / f"speed-machines-{n}"
    synth_machines(root, "fan", n, 0, 1, 10.0, 16000, SEED, ctx.workers)
    train = [c for c in discover(root) if c.split == "train"]
    signals = [load(c.path) for c in train[:8]]
    systems = unsupervised_systems(ctx, "speed", {"default": ctx.scale.speed_epochs})
    det_rows = []
    for system in systems:
        try:
            config = None if system.config.startswith("(") else system.config
            det = make_detector(resolve_config(None, system.name, config, params=system.params,
                                               seed=SEED, device="cpu"))
            log_dir = ctx.out / "speed-logs" / system.label.replace(" ", "-")
            t0 = time.perf_counter()
            det.fit(train, context=run_context(device="cpu", log_dir=log_dir))
            fit_s = time.perf_counter() - t0
            times = []
            if (log_dir / "train_log.csv").is_file():
                with open(log_dir / "train_log.csv", newline="", encoding="utf-8") as handle:
                    times = [float(r["time_s"]) for r in csv.DictReader(handle)]
            epoch = f"{np.median(times[1:] if len(times) > 1 else times):.2f}" if times \
                else "n/a (no epochs)"
            ms = median_score_ms(det, signals, 16000)
            det_rows.append([f"`{system.label}`", f"{fit_s:.1f}", epoch, f"{ms:.0f}"])
            print(f"  speed {system.label}: fit {fit_s:.1f} s, epoch {epoch} s, {ms:.0f} ms/clip",
                  flush=True)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            det_rows.append([f"`{system.label}`", f"failed: {type(exc).__name__}: {exc}", "",
                             ""])
    text = "\n".join([
        "**Features** (`benchmarks/features.py` functions, synthetic 10 s 16 kHz clips, CPU):",
        "",
        md_table(["measure", "result"], feat_rows),
        "",
        f"**Detectors**: fitted on {len(train)} synthetic `fan` clips of 10 s (no feature "
        f"cache, so the fit includes feature extraction), presets with epochs capped at "
        f"{ctx.scale.speed_epochs}; s / epoch = median epoch time from the training log "
        "(first epoch left out); inference = `score_signals` on one 10 s clip at a time "
        "(features + network), median of 8 clips.",
        "",
        md_table(["detector", "fit s (incl. features)", f"s / epoch ({len(train)} clips)",
                  "inference ms / 10 s clip"], det_rows),
    ])
    return Result("speed", text=text)


RUNNERS: dict[str, Callable[[Ctx], Result]] = {
    "accept": section_accept, "pink": section_pink, "machines": section_machines,
    "real": section_real, "speed": section_speed,
}


# ----------------------------------------------------------------------------- main
def run_section(key: str, ctx: Ctx) -> Result:
    from bench_doc import PeakRSS

    print(f"== {TITLES[key]} ({key})", flush=True)
    t0 = time.perf_counter()
    with PeakRSS() as peak:
        try:
            result = RUNNERS[key](ctx)
        except Exception as exc:  # noqa: BLE001 - a failed section must not lose the others
            traceback.print_exc()
            result = Result(key, status="failed", error=f"{type(exc).__name__}: {exc}")
    result.wall_s = time.perf_counter() - t0
    result.peak_rss_mb = peak.peak
    print(f"== {key}: {result.status}, {result.wall_s:.0f} s, peak RSS {peak.peak:.0f} MB",
          flush=True)
    return result


def render(results: list[Result], ctx: Ctx, info: dict[str, str], commit: str, dirty: str,
           started: str, total_s: float, budget: list[list[Any]], verdict: str) -> str:
    quick = ctx.quick
    lines = ["# Benchmarks" + (" (QUICK RUN)" if quick else ""), ""]
    if quick:
        lines += ["> **QUICK run** (`--quick`): tiny data sets and 2-3 epochs. These numbers "
                  "check that the benchmark works; they say little about the detectors. "
                  "Run `make bench` for the real numbers.", ""]
    lines += [
        "Every number in this file comes from one run of `benchmarks/run.py` "
        "(`make bench`); the file is rewritten by each run.",
        "",
        f"* Command: `{command_line()}`",
        f"* Date: {started}; total wall time {total_s / 60:.1f} min "
        f"(mode: {ctx.scale.name}, budget {ctx.scale.budget_min:g} min)",
        f"* Git commit: `{commit}` ({dirty})",
        f"* Machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, {info['os']}",
        f"* Python {info['python']}, torch {info['torch']}; seed {SEED}; "
        f"load average at start {info['load']}",
        f"* Peak RSS of the whole run (ru_maxrss): {maxrss_mb():.0f} MB",
        "* Hyper-parameters: the shipped configs (`configs/`); overrides (epoch caps to fit the "
        "budget): "
        + ("; ".join(ctx.overrides) if ctx.overrides else "none"),
        "",
        "## Budget",
        "",
        md_table(["section", "status", "wall", "budget", "peak RSS during section"], budget),
        "",
        verdict,
        "",
    ]
    for r in results:
        lines += [f"## {TITLES[r.key]}" + (" (QUICK)" if quick else ""), ""]
        lines.append(f"Wall time {r.wall_s:.0f} s, peak RSS during the section "
                     f"{r.peak_rss_mb:.0f} MB.")
        lines.append("")
        if r.status == "failed":
            lines += [f"**FAILED**: `{r.error}` (see the run's output for the traceback).", ""]
        if r.text:
            lines += [r.text, ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data and epochs (< 8 min)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections ({', '.join(SECTIONS)})")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for scratch data (default: a temporary folder, deleted)")
    parser.add_argument("--workers", type=int, default=2, help="data-generation processes")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument("--machines-seed", type=int, default=SEED,
                        help="data seed of the synthetic machines set (0: the benchmark set; "
                        "others: validation sets for choosing detectors)")
    args = parser.parse_args(argv)
    if args.machines_seed != SEED and not args.no_write:
        parser.error("--machines-seed other than 0 makes a validation run: add --no-write "
                     "(docs/benchmarks.md reports the benchmark set, seed 0)")
    keys = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    keys = [k for k in SECTIONS if k in keys]

    import torch

    torch.set_num_threads(THREADS)
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)

    scale = QUICK if args.quick else FULL
    out, tmp = scratch_folder(args.out, "soundwatch-bench-")
    ctx = Ctx(scale, out, args.workers, write=not args.no_write,
              machines_seed=args.machines_seed)
    info = machine_info()
    commit, dirty = git_info()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    label = "QUICK run" if args.quick else "full run"
    print(f"soundwatch benchmarks, {label}: sections {', '.join(keys)}; scratch {out}")
    print(f"machine: {info}")
    t_all = time.perf_counter()
    results: list[Result] = []
    try:
        for key in keys:
            results.append(run_section(key, ctx))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    total = time.perf_counter() - t_all

    budget_rows = []
    for r in results:
        b = scale.section_budget_min[r.key]
        flag = "" if r.wall_s <= 60 * b else " **over**"
        budget_rows.append([r.key, r.status, f"{r.wall_s / 60:.1f} min{flag}", f"{b:g} min",
                            f"{r.peak_rss_mb:.0f} MB"])
    ok = total <= 60 * scale.budget_min
    verdict = (f"Total {total / 60:.1f} min of {scale.budget_min:g} min: "
               + ("within budget." if ok else "**OVER BUDGET**."))
    text = render(results, ctx, info, commit, dirty, started, total, budget_rows, verdict)
    print()
    print(text)
    print("budget check:")
    print(md_table(["section", "status", "wall", "budget", "peak RSS"], budget_rows))
    print(verdict)
    if ctx.overrides:
        print("overrides: " + "; ".join(ctx.overrides))
    if not args.no_write:
        from bench_doc import STANDALONE_HEADING, standalone_sections
        from soundwatch.atomic import write_text

        kept = standalone_sections()
        if kept:
            text = (text.rstrip() + f"\n\n{STANDALONE_HEADING}\n\nSections written by "
                    "`benchmarks/features.py` and `benchmarks/cnn.py` in their own runs (command, "
                    "machine and numbers inside each), kept as they were; `make bench` does not "
                    "rerun them.\n\n" + kept + "\n")
        write_text(DOC, text)
        print(f"written: {DOC}")
    failed = [r.key for r in results if r.status == "failed"]
    if failed:
        print(f"failed sections: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
