"""Benchmark of the monitoring history at scale: 200 machines, 10 million rows (generated).

Generates a history database of ``--machines`` machine types and ``--rows`` clips spread
over a year, starts ``soundwatch serve``'s app on it (uvicorn in a child process, on
127.0.0.1; the 200 machine types share one small trained detector, since only the
history is measured), and times what the page and an API client read:

* ``/v1/machines`` (the page's cards: counts and last clip per machine),
* ``/v1/events?limit=20`` (the page's anomaly table),
* ``/v1/machines/{m}/history?limit=500`` for random machines, its next page back
  (``before=``) and a one-day window (``since=``),
* ``/v1/machines/{m}/trend`` when the service has it,
* ``/metrics`` and ``/healthz``,

each ``--requests`` times from one client (p50/p99), plus the start-up check
(``PRAGMA quick_check``), a ``--keep-days`` retention pass and a backup. Target
(issue 28): p99 <= 200 ms for the page, ``/history`` and ``/trend``.

Run: ``.venv/bin/python benchmarks/history_scale.py [--rows 10000000] [--machines 200]
[--db PATH (kept and reused)]``. Prints a Markdown table and writes it to
docs/monitoring.md between the ``history-scale`` markers (``--no-write`` leaves it).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
HOST = "127.0.0.1"
YEAR = 365 * 86400.0


def generate(db: Path, machines: int, rows: int, seed: int = 0) -> float:
    """Write ``rows`` clips of ``machines`` machine types into a fresh history; seconds."""
    from soundwatch.monitor.history import History

    t0 = time.perf_counter()
    History(db).close()  # the schema
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    triggers = [r[0] for r in conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'clips'")]
    indexes = [r[0] for r in conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'clips' "
        "AND sql IS NOT NULL")]
    for name in [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('trigger', 'index') "
            "AND tbl_name = 'clips' AND sql IS NOT NULL")]:
        kind = conn.execute("SELECT type FROM sqlite_master WHERE name = ?", (name,)).fetchone()
        conn.execute(f"DROP {kind[0].upper()} {name}")
    rng = random.Random(seed)
    start = time.time() - YEAR
    step = YEAR / rows
    batch = 200_000
    names = [f"machine{m:03d}" for m in range(machines)]
    for first in range(0, rows, batch):
        values = []
        for i in range(first, min(rows, first + batch)):
            score = rng.gauss(0.0, 1.0)
            status = "error" if i % 997 == 0 else "ok"
            values.append((start + i * step, names[i % machines], "upload", f"clip{i}.wav",
                           status, score, 2.0, int(score > 2.0), 50.0, 10.0))
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO clips (ts, machine, source, name, status, score, "
                         "threshold, decision, percentile, seconds) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        conn.execute("COMMIT")
        print(f"\r  {min(rows, first + batch):,} rows", end="", flush=True)
    print()
    for sql in indexes + triggers:
        conn.execute(sql)
    conn.execute("PRAGMA user_version=1")  # History rebuilds the per-machine counters
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    History(db).close()
    return time.perf_counter() - t0


def _serve(run: str, db: str, machines: int, port: int) -> None:
    import dataclasses

    import uvicorn

    from soundwatch.monitor.health import open_history
    from soundwatch.monitor.scoring import MachineScorer
    from soundwatch.monitor.service import Service, create_app

    scorer = MachineScorer([run])
    (one,) = scorer.machines.values()
    scorer.machines = {f"machine{m:03d}": dataclasses.replace(one, machine=f"machine{m:03d}")
                       for m in range(machines)}
    t0 = time.perf_counter()
    history, _ = open_history(db)
    print(f"  start-up check (quick_check) {time.perf_counter() - t0:.1f} s", flush=True)
    service = Service(scorer, history, keep_clips=0)
    uvicorn.run(create_app(service), host=HOST, port=port, log_level="warning")


def _timed(client, url: str, n: int, make) -> tuple[float, float, int]:
    times = []
    status = 200
    for i in range(n):
        target = url + make(i)
        t0 = time.perf_counter()
        r = client.get(target)
        times.append(time.perf_counter() - t0)
        if r.status_code != 200:
            status = r.status_code
            break
    times.sort()
    p = lambda q: times[min(len(times) - 1, int(round(q * (len(times) - 1))))] * 1000  # noqa: E731
    return p(0.5), p(0.99), status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--machines", type=int, default=200)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--db", type=Path, default=None, help="keep the database here")
    parser.add_argument("--no-write", action="store_true", help="leave docs/monitoring.md")
    args = parser.parse_args()

    import httpx

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_doc import machine, usable_cores, write_section
    from serve import free_port
    from soundwatch import pipeline
    from soundwatch.synth import synth_machines

    with tempfile.TemporaryDirectory(prefix="soundwatch-history-scale-") as tmp:
        root = Path(tmp)
        db = args.db or root / "history.sqlite"
        made = None
        if not db.is_file():
            print(f"> generating {args.rows:,} rows of {args.machines} machines", flush=True)
            made = generate(db, args.machines, args.rows)
        size = db.stat().st_size / 2**20
        data = synth_machines(root / "data", machines=["fan"], train_source=8, train_target=1,
                              test_per_group=1, seconds=1.0, seed=0)
        run = pipeline.train(data, "mahalanobis", out=root / "run").root
        port = free_port()
        ctx = mp.get_context("spawn")
        proc = ctx.Process(target=_serve, args=(str(run), str(db), args.machines, port))
        t0 = time.perf_counter()
        proc.start()
        url = f"http://{HOST}:{port}"
        lines = []
        try:
            with httpx.Client(timeout=60) as client:
                while True:
                    try:
                        if client.get(url + "/healthz").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if not proc.is_alive() or time.perf_counter() - t0 > 900:
                        raise RuntimeError("the server did not start")
                    time.sleep(0.5)
                ready = time.perf_counter() - t0
                rng = random.Random(1)
                names = [f"machine{m:03d}" for m in range(args.machines)]
                newest = client.get(f"{url}/v1/machines/{names[0]}/history?limit=1").json()
                now_ts = newest["clips"][-1]["ts"]
                page = {}

                def history_page(i: int) -> str:
                    return f"/v1/machines/{rng.choice(names)}/history?limit=500"

                def older_page(i: int) -> str:
                    m = rng.choice(names)
                    first = page.get(m)
                    if first is None:
                        got = client.get(f"{url}/v1/machines/{m}/history?limit=500").json()
                        first = page[m] = got["clips"][0]["ts"]
                    return f"/v1/machines/{m}/history?limit=500&before={first}"

                n = args.requests
                cases = [
                    ("/v1/machines (page cards, 200 machines)", "/v1/machines", lambda i: ""),
                    ("/v1/events?limit=20 (page table)", "/v1/events?limit=20", lambda i: ""),
                    ("/v1/machines/{m}/history?limit=500", "", history_page),
                    ("... next page back (before=)", "", older_page),
                    ("... one day (since=)", "",
                     lambda i: f"/v1/machines/{rng.choice(names)}/history?limit=10000"
                               f"&since={now_ts - 86400}"),
                    ("/metrics", "/metrics", lambda i: ""),
                    ("/healthz", "/healthz", lambda i: ""),
                ]
                trend = client.get(f"{url}/v1/machines/{names[0]}/trend")
                if trend.status_code != 404:
                    cases.insert(3, ("/v1/machines/{m}/trend", "",
                                     lambda i: f"/v1/machines/{rng.choice(names)}/trend"))
                else:
                    lines.append("| /v1/machines/{m}/trend | not in this tree | | |")
                for label, path, make in cases:
                    p50, p99, status = _timed(client, url + path, n, make)
                    mark = "" if status == 200 else f" (HTTP {status})"
                    lines.append(f"| {label} | {p50:.1f} | {p99:.1f} | "
                                 f"{'yes' if p99 <= 200 else 'NO'}{mark} |")
                    print(lines[-1], flush=True)
        finally:
            proc.terminate()
            proc.join(30)
        from soundwatch.monitor.backup import backup, prune_older
        from soundwatch.monitor.history import History

        t0 = time.perf_counter()
        with History(db) as history:
            gone = history.count()
            prune_older(history, 364.0)
            gone -= history.count()
        prune_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        backup(db, root / "backup.sqlite")
        backup_s = time.perf_counter() - t0
    table = "\n".join([
        f"Machine: {machine()}; {usable_cores()} usable cores; load average "
        f"{os.getloadavg()[0]:.1f} at the end. {args.rows:,} rows of {args.machines} machine "
        f"types over a year, database {size:,.0f} MiB"
        + (f" (generated in {made:.0f} s)" if made else "") +
        f"; the server answered {ready:.1f} s after start (the quick_check included). "
        f"{args.requests} requests per line from one client on 127.0.0.1.",
        "",
        "| request | p50 ms | p99 ms | p99 <= 200 ms |",
        "|---|---|---|---|",
        *lines,
        "",
        f"Retention (`--keep-days 364`): {gone:,} rows deleted in {prune_s:.1f} s; "
        f"`soundwatch history backup`: {backup_s:.1f} s.",
        "",
        f"Command: `.venv/bin/python benchmarks/history_scale.py --rows {args.rows} "
        f"--machines {args.machines} --requests {args.requests}`",
    ])
    print(table)
    if not args.no_write:
        doc = Path(__file__).resolve().parents[1] / "docs" / "monitoring.md"
        print(f"written to {write_section('history-scale', table, doc)}")


if __name__ == "__main__":
    main()
