"""Local sequential vs Ray backend on the synthetic machines set (5 types): wall times.

Run::

    .venv/bin/python benchmarks/scale.py                 # writes the "scale" section
    .venv/bin/python benchmarks/scale.py --quick --no-write

Measures, on a local Ray instance with the usable cores (no dashboard):

* Ray start-up: ``ray.init`` and the first no-op task (a worker process starting), i.e.
  what a ``--backend ray`` command pays before any work when it starts Ray itself;
* ``soundwatch train`` (``pipeline.train``) local sequential vs ``--backend ray`` (one task
  per machine type), and ``score`` local vs Ray Data, on the same data, without the
  feature cache; the wall-time ratio local / Ray with and without the start-up;
* per-clip costs (local): training and scoring seconds per clip, used by docs/scale.md's
  estimate; and whether the Ray scores equal the local ones.

The numbers go to docs/benchmarks.md between ``<!-- scale:start -->`` and ``<!-- scale:end -->``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_doc  # noqa: E402


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s clips, fewer of them")
    parser.add_argument("--detector", default="mahalanobis", help="detector (default mahalanobis)")
    parser.add_argument("--out", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")

    try:
        import ray
    except ImportError:
        print("benchmarks/scale.py needs Ray: pip install 'soundwatch[ray]'", file=sys.stderr)
        return 2
    import numpy as np

    from soundwatch import pipeline
    from soundwatch.scale.ray_backend import RayExecutor
    from soundwatch.scores import read_scores_table
    from soundwatch.synth import synth_machines

    seconds, train_source, test_per_group = (2.0, 12, 3) if args.quick else (10.0, 30, 5)
    scratch = args.out or Path(tempfile.mkdtemp(prefix="soundwatch-scale-"))
    load_before = os.getloadavg()[0]
    try:
        data, synth_s = _timed(synth_machines, scratch / "data", machines=5,
                               train_source=train_source, train_target=3,
                               test_per_group=test_per_group, seconds=seconds)
        cores = bench_doc.usable_cores()
        _, init_s = _timed(ray.init, num_cpus=cores, include_dashboard=False,
                           logging_level="WARNING")

        @ray.remote
        def noop() -> int:
            return 0

        _, first_task_s = _timed(ray.get, noop.remote())
        times: dict[str, float] = {}
        tables = {}
        for name in ("warm", "run-local", "run-ray", "run-ray-2"):  # runs of an earlier --out
            shutil.rmtree(scratch / name, ignore_errors=True)
        # warm-up: this process's imports (torch, librosa, the detector) are not timed
        pipeline.train(data, args.detector, machines=["fan"], out=scratch / "warm")
        runs = {}
        executors = {"local": None, "ray": RayExecutor()}
        for backend in ("local", "ray"):
            out = scratch / f"run-{backend}"
            runs[backend], times[f"train {backend}"] = _timed(
                pipeline.train, data, args.detector, out=out,
                executor=executors[backend])
            tables[f"train {backend}"] = read_scores_table(runs[backend].train_scores_path)
        # the same again at once: the task workers have done their imports
        _, times["train ray warm"] = _timed(
            pipeline.train, data, args.detector, out=scratch / "run-ray-2",
            executor=executors["ray"])
        for backend, run in runs.items():
            tables[backend], times[f"score {backend}"] = _timed(
                pipeline.score, run.root, out=run.root / "scores" / "test",
                executor=executors[backend])
        ray.shutdown()
    finally:
        if args.out is None:
            shutil.rmtree(scratch, ignore_errors=True)
    load_after = os.getloadavg()[0]

    n_train = len(tables["train local"])
    n_test = len(tables["local"])
    same = bool(np.array_equal(tables["local"]["score"].to_numpy(),
                               tables["ray"]["score"].to_numpy())
                and np.array_equal(tables["train local"]["score"].to_numpy(),
                                   tables["train ray"]["score"].to_numpy()))
    startup = init_s + first_task_s
    rows = [
        ("Ray start-up: `ray.init` (local, no dashboard)", f"{init_s:.1f} s"),
        ("Ray start-up: first no-op task (a worker process starts)", f"{first_task_s:.1f} s"),
    ]
    for step, clips in (("train", n_train), ("score", n_test)):
        local, remote = times[f"{step} local"], times[f"{step} ray"]
        rows += [
            (f"{step}: local sequential, {clips} clips", f"{local:.1f} s "
             f"({1000 * local / clips:.0f} ms / clip)"),
            (f"{step}: `--backend ray` (Ray already running)", f"{remote:.1f} s"),
            (f"{step}: wall-time ratio local / Ray", f"{local / remote:.2f}x "
             f"({local / (remote + startup):.2f}x counting the start-up)"),
        ]
    warm = times["train ray warm"]
    rows.insert(5, ("train: `--backend ray` again (worker processes already warm)",
                    f"{warm:.1f} s (ratio {times['train local'] / warm:.2f}x)"))
    rows.append(("Ray scores identical to local (train and test)", "yes" if same else "NO"))
    command = "benchmarks/scale.py" + (" --quick" if args.quick else "")
    text = "\n".join([
        "## Scale out: local sequential vs Ray (`--backend ray`)",
        "",
        f"`{command}`: synthetic machines set, 5 machine types, "
        f"{train_source + 3} training and {4 * test_per_group} test clips of {seconds:g} s "
        f"each (synth {synth_s:.0f} s), detector `{args.detector}` (preset), no feature "
        f"cache; local Ray instance with {cores} CPUs, one task or scoring actor per CPU. "
        f"Machine: {bench_doc.machine()}; load average {load_before:.1f} before and "
        f"{load_after:.1f} after (other work shares the cores).",
        "",
        "| measure | result |",
        "|---|---|",
        *[f"| {a} | {b} |" for a, b in rows],
        "",
        "With 2 cores Ray can at best halve the wall time; each Ray worker process pays "
        "its imports (torch, soundwatch) on its first task (the warm row shows a run "
        "without them), and the scoring actors are fresh processes in every `score` "
        "command, so small jobs are slower on Ray. See docs/scale.md for what runs where and "
        "the estimate for a large fleet.",
    ])
    print(text)
    if not args.no_write:
        print(f"wrote {bench_doc.write_section('scale', text)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
