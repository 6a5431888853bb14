"""Soak test of ``soundwatch serve`` and ``soundwatch watch`` together on one history.

Starts ``serve`` and ``watch`` as processes on 127.0.0.1 sharing one SQLite history, then
for ``--minutes`` (default 30): ``--clients`` (10) threads post clips with unique
``X-Request-ID`` s, and a feeder drops a file into the watched folder every
``--file-every`` seconds. Every ``--sample`` seconds it records, for both processes,
resident memory, open file descriptors and threads, the database's size (with its WAL)
and the kept-clips folder, and the p99 latency of the window. At the end it checks:

* every request answered 200 is in the history exactly once, and nothing else is
  (unanswered requests are retried with their id first), every file exactly once;
* no "database is locked" (or any traceback) in either process's log;
* memory, descriptors and threads stay bounded, and p99 does not drift (last windows
  against the first ones).

``main()`` returns the figures as a dict (``tests/integration/test_soak_short.py`` runs a
short version); the command prints a Markdown summary and writes it to docs/reliability.md
between the ``soak`` markers (``--no-write`` leaves it).
All traffic goes to 127.0.0.1, bounded in time.

Run: ``.venv/bin/python benchmarks/soak.py [--minutes 30] [--clients 10]``
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
HOST = "127.0.0.1"
SOUNDWATCH = Path(sys.executable).with_name("soundwatch")


def _proc_status(pid: int) -> dict[str, float]:
    out = {"rss_mib": float("nan"), "threads": float("nan"), "fds": float("nan")}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_mib"] = int(line.split()[1]) / 1024
            elif line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        pass
    return out


def _size_mib(*paths: Path) -> float:
    total = 0
    for path in paths:
        try:
            total += path.stat().st_size
        except OSError:
            pass
    return total / 2**20


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] * 1000


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as handle:
        return subprocess.Popen([str(SOUNDWATCH), *args], stdout=handle,
                                stderr=subprocess.STDOUT, env=env)


def run_soak(root: Path, seconds: float, clients: int = 10, file_every: float = 1.0,
             sample: float = 10.0) -> dict[str, Any]:
    """Run the soak in ``root`` for ``seconds``; return its figures."""
    import httpx

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from serve import free_port
    from soundwatch import pipeline
    from soundwatch.synth import synth_machines

    data = synth_machines(root / "data", machines=["fan"], train_source=12, train_target=2,
                          test_per_group=3, seconds=1.0, seed=0)
    run = pipeline.train(data, "mahalanobis", out=root / "run").root
    clips = [p.read_bytes() for p in sorted((Path(data) / "fan" / "test").glob("*.wav"))]
    db, port = root / "history.sqlite", free_port()
    url = f"http://{HOST}:{port}"
    incoming = root / "incoming" / "fan"
    incoming.mkdir(parents=True)
    slog, wlog = root / "serve.log", root / "watch.log"
    server = _start(["serve", str(run), "--host", HOST, "--port", str(port), "--db", str(db),
                     "--keep-clips", "100"], slog)
    watcher = _start(["watch", str(run), str(incoming.parent), "--db", str(db), "--settle",
                      "0.3", "--poll", "0.1", "--rescan", "5"], wlog)
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"serve did not start: {slog.read_text()[-2000:]}")
        time.sleep(0.3)

    lock = threading.Lock()
    stop = threading.Event()
    accepted: set[str] = set()
    unsure: set[str] = set()
    refused: dict[int, int] = {}
    samples: list[tuple[float, float]] = []  # (time since start, latency)
    files: list[Path] = []
    t_start = time.monotonic()

    def client_loop(k: int) -> None:
        with httpx.Client(timeout=60) as client:
            i = 0
            while not stop.is_set():
                rid = uuid.uuid4().hex
                body = clips[(i + k) % len(clips)]
                i += 1
                t0 = time.perf_counter()
                try:
                    r = client.post(f"{url}/v1/machines/fan/score", content=body,
                                    headers={"Content-Type": "audio/wav", "X-Request-ID": rid})
                except httpx.HTTPError:
                    with lock:
                        unsure.add(rid)
                    continue
                dt = time.perf_counter() - t0
                with lock:
                    if r.status_code == 200:
                        accepted.add(rid)
                        samples.append((time.monotonic() - t_start, dt))
                    else:
                        refused[r.status_code] = refused.get(r.status_code, 0) + 1

    def feeder() -> None:
        n = 0
        while not stop.wait(file_every):
            target = incoming / f"clip{n:06d}.wav"
            tmp = incoming / f".clip{n:06d}.wav.part"
            tmp.write_bytes(clips[n % len(clips)] + b"")  # a copy, then an atomic rename
            os.replace(tmp, target)
            files.append(target)
            n += 1

    stats: list[dict[str, float]] = []

    def sampler() -> None:
        while not stop.wait(sample):
            s = {"t": time.monotonic() - t_start}
            for name, proc in (("serve", server), ("watch", watcher)):
                for key, value in _proc_status(proc.pid).items():
                    s[f"{name}_{key}"] = value
            s["db_mib"] = _size_mib(db, db.with_name(db.name + "-wal"))
            clips_dir = db.with_name(db.stem + "-clips")
            s["kept_clips"] = len(os.listdir(clips_dir)) if clips_dir.is_dir() else 0
            with lock:
                s["accepted"] = len(accepted)
            stats.append(s)

    threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(clients)]
    threads += [threading.Thread(target=feeder), threading.Thread(target=sampler)]
    for t in threads:
        t.start()
    try:
        time.sleep(seconds)
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    # retry what got no answer (the same ids), then let watch finish the last files
    with httpx.Client(timeout=60) as client:
        for rid in sorted(unsure):
            r = client.post(f"{url}/v1/machines/fan/score", content=clips[0],
                            headers={"Content-Type": "audio/wav", "X-Request-ID": rid})
            if r.status_code == 200:
                accepted.add(rid)
    wait_until = time.monotonic() + 120
    watched: list[str] = []
    while time.monotonic() < wait_until:
        with sqlite3.connect(db, timeout=30) as conn:
            watched = [r[0] for r in conn.execute(
                "SELECT path FROM clips WHERE source = 'watch'")]
        if len(set(watched)) >= len(files):
            break
        time.sleep(0.5)
    end_status = {name: _proc_status(proc.pid) for name, proc in
                  (("serve", server), ("watch", watcher))}
    for proc in (server, watcher):
        proc.send_signal(signal.SIGTERM)
    for proc in (server, watcher):
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT request_id FROM clips WHERE source='upload'")]
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        rows = conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0]
    logs = slog.read_text(errors="replace") + wlog.read_text(errors="replace")
    lat = [dt for _, dt in samples]
    window = max(sample, seconds / 10)
    firsts = [dt for t, dt in samples if t <= window + 5]
    lasts = [dt for t, dt in samples if t >= seconds - window]
    warm = [s for s in stats if s["t"] >= min(60.0, seconds / 4)] or stats

    def spread(key: str) -> tuple[float, float]:
        values = [s[key] for s in warm if s.get(key) == s.get(key)]
        return (min(values), max(values)) if values else (float("nan"), float("nan"))

    return {
        "seconds": seconds, "clients": clients, "accepted": len(accepted),
        "rate": len(accepted) / seconds, "refused": refused, "unanswered": len(unsure),
        "recorded_uploads": len(ids), "lost": len(accepted - set(ids)),
        "duplicated": len(ids) - len(set(ids)), "phantom": len(set(ids) - accepted),
        "files": len(files), "watched": len(watched),
        "files_lost": len({str(f) for f in files} - set(watched)),
        "files_duplicated": len(watched) - len(set(watched)),
        "locked_in_logs": logs.count("database is locked"),
        "tracebacks_in_logs": logs.count("Traceback"),
        "integrity": integrity, "rows": rows,
        "p50_ms": _pct(lat, 0.5), "p99_ms": _pct(lat, 0.99),
        "p99_first_ms": _pct(firsts, 0.99), "p99_last_ms": _pct(lasts, 0.99),
        "serve_rss_mib": spread("serve_rss_mib"), "watch_rss_mib": spread("watch_rss_mib"),
        "serve_fds": spread("serve_fds"), "watch_fds": spread("watch_fds"),
        "serve_threads": spread("serve_threads"), "watch_threads": spread("watch_threads"),
        "db_mib": spread("db_mib"), "kept_clips": spread("kept_clips"),
        "end": end_status, "samples": stats,
    }


def summary(r: dict[str, Any]) -> str:
    """The figures as Markdown."""
    def rng(key: str, fmt: str = ".0f") -> str:
        lo, hi = r[key]
        return f"{lo:{fmt}}–{hi:{fmt}}"

    return "\n".join([
        f"{r['seconds'] / 60:.1f} minutes, {r['clients']} clients posting 1 s clips + one file "
        f"a second into the watched folder, serve and watch on one database:",
        "",
        "| figure | value |",
        "|---|---|",
        f"| accepted requests | {r['accepted']:,} ({r['rate']:.1f}/s); refused "
        f"{sum(r['refused'].values())}; unanswered then retried {r['unanswered']} |",
        f"| uploads recorded / lost / duplicated / never accepted | {r['recorded_uploads']:,} / "
        f"{r['lost']} / {r['duplicated']} / {r['phantom']} |",
        f"| watched files recorded / lost / duplicated | {r['watched']:,} of {r['files']:,} / "
        f"{r['files_lost']} / {r['files_duplicated']} |",
        f"| \"database is locked\" / tracebacks in the logs | {r['locked_in_logs']} / "
        f"{r['tracebacks_in_logs']} |",
        f"| latency p50 / p99 (all) | {r['p50_ms']:.0f} / {r['p99_ms']:.0f} ms |",
        f"| p99 first window / last window | {r['p99_first_ms']:.0f} / {r['p99_last_ms']:.0f} ms |",
        f"| serve RSS / fds / threads (after warm-up, min–max) | {rng('serve_rss_mib')} MiB / "
        f"{rng('serve_fds')} / {rng('serve_threads')} |",
        f"| watch RSS / fds / threads | {rng('watch_rss_mib')} MiB / {rng('watch_fds')} / "
        f"{rng('watch_threads')} |",
        f"| database + WAL | {rng('db_mib', '.1f')} MiB for {r['rows']:,} rows; "
        f"integrity_check {r['integrity']} |",
        f"| kept upload copies (--keep-clips 100) | {rng('kept_clips')} |",
    ])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the soak from the command line; return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--file-every", type=float, default=1.0)
    parser.add_argument("--sample", type=float, default=10.0)
    parser.add_argument("--no-write", action="store_true", help="leave docs/reliability.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soundwatch-soak-") as tmp:
        result = run_soak(Path(tmp), args.minutes * 60, args.clients, args.file_every,
                          args.sample)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_doc import machine, usable_cores, write_section

    text = "\n".join([
        f"Machine: {machine()}; {usable_cores()} usable cores; load average "
        f"{os.getloadavg()[0]:.1f} at the end (other work shares the cores).",
        "", summary(result), "",
        f"Command: `.venv/bin/python benchmarks/soak.py --minutes {args.minutes:g} "
        f"--clients {args.clients}`"])
    print(text)
    if not args.no_write:
        doc = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
        print(f"written to {write_section('soak', text, doc)}")
    return result


if __name__ == "__main__":
    main()
