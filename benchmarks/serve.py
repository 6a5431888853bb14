"""Benchmark of ``soundwatch serve``: throughput, latency, memory growth, no lost record.

Trains detectors on a small synthetic fan set (10 s clips), starts ``soundwatch serve`` as
a process on 127.0.0.1 and posts the set's 10 s test clips (WAV bodies, 320 kB each) from
client threads on the same machine, every request bounded in count and time:

* throughput (clips/s) and p50/p99 latency with 1 and with 10 concurrent clients;
* the server's resident memory growth over ``--requests`` (default 5,000) requests, after
  a warm-up of 200;
* the history database against the requests: every request carries a unique
  ``X-Request-Id``; the records must be exactly the accepted requests (none lost, none
  twice), also after ``kill -9`` of the server in the middle of a 10-client run. Requests
  in flight at the kill may or may not have been committed; after a restart the clients
  retry them with the same id, and each must end up recorded exactly once.

Targets on 2 cores (issue 17): >= 40 clips/s with the classical detector, p99 <= 250 ms at
10 clients, <= 50 MB growth, no lost or duplicated record.

Run: ``.venv/bin/python benchmarks/serve.py [--quick] [--detectors mahalanobis,ae]``
(``--quick``: 1,000 requests for the memory phase). The table is printed and written to
docs/benchmarks.md between the ``serve`` markers (``--no-write`` leaves it alone).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

SOUNDWATCH = Path(sys.executable).with_name("soundwatch")
HOST = "127.0.0.1"


@dataclass
class Phase:
    name: str
    clients: int
    requests: int = 0
    accepted: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    refused: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    wall: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.accepted) / self.wall if self.wall else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] * 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, run: Path, db: Path, log: Path) -> None:
        self.run, self.db, self.log = run, db, log
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        import httpx

        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with open(self.log, "ab") as handle:
            self.proc = subprocess.Popen(
                [str(SOUNDWATCH), "serve", str(self.run), "--host", HOST, "--port",
                 str(self.port), "--db", str(self.db), "--keep-clips", "100"],
                stdout=handle, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not start in 120 s")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)


def load(url: str, machine: str, clips: Sequence[bytes], phase: Phase, total: int,
         max_seconds: float, stop: threading.Event | None = None,
         ids: Sequence[str] | None = None) -> Phase:
    """``phase.clients`` threads post ``total`` requests (or until ``max_seconds``)."""
    import httpx

    lock = threading.Lock()
    counter = iter(range(total))
    stop = stop or threading.Event()
    deadline = time.monotonic() + max_seconds

    def worker() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set() and time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                rid = ids[i] if ids is not None else uuid.uuid4().hex
                t0 = time.perf_counter()
                try:
                    r = client.post(f"{url}/v1/machines/{machine}/score",
                                    content=clips[i % len(clips)],
                                    headers={"Content-Type": "audio/wav", "X-Request-Id": rid})
                except httpx.ConnectError:
                    return  # not sent: the server is gone
                except httpx.HTTPError as exc:  # sent, no answer: it may have been recorded
                    with lock:
                        phase.in_flight.append(rid)
                        phase.errors[type(exc).__name__] = phase.errors.get(
                            type(exc).__name__, 0) + 1
                    continue
                dt = time.perf_counter() - t0
                with lock:
                    phase.requests += 1
                    if r.status_code == 200:
                        phase.accepted.append(rid)
                        phase.latencies.append(dt)
                    else:
                        phase.refused += 1

    threads = [threading.Thread(target=worker) for _ in range(phase.clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    phase.wall = time.perf_counter() - t0
    return phase


def db_ids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT request_id FROM clips WHERE source = 'upload'")]


def check_records(db: Path, accepted: Sequence[str]) -> tuple[int, int, int]:
    """(records, lost accepted requests, duplicated ids)."""
    ids = db_ids(db)
    return len(ids), len(set(accepted) - set(ids)), len(ids) - len(set(ids))


def bench_detector(name: str, root: Path, data: Path, clips: list[bytes], requests: int,
                   warmup: int = 200) -> tuple[list[str], str]:
    from soundwatch import pipeline

    classical = name in ("mahalanobis", "knn", "gmm")
    run = pipeline.train(data, name, out=root / f"run-{name}",
                         epochs=None if classical else 5).root
    server = Server(run, root / f"{name}.sqlite", root / f"{name}.log")
    server.start()
    lines = []
    try:
        all_accepted: list[str] = []
        warm = load(server.url, "fan", clips, Phase("warm-up", 2), warmup, 120)
        all_accepted += warm.accepted
        phases = []
        for clients, n in ((1, 300), (10, 1000)):
            phase = load(server.url, "fan", clips, Phase(f"{clients} client(s)", clients), n, 60)
            all_accepted += phase.accepted
            phases.append(phase)
        rss0 = rss_mib(server.proc.pid)
        t0 = time.perf_counter()
        soak = load(server.url, "fan", clips, Phase("memory", 10), requests, 900)
        all_accepted += soak.accepted
        rss1 = rss_mib(server.proc.pid)
        records, lost, dup = check_records(server.db, all_accepted)
        for p in phases:
            lines.append(f"| {name} | {p.name} | {len(p.accepted)} | {p.rate:.1f} | "
                         f"{p.pct(50):.0f} | {p.pct(99):.0f} | {p.refused} |")
        memory = (f"| {name} | RSS after warm-up {rss0:.0f} MiB, after {len(soak.accepted)} more "
                  f"requests ({soak.rate:.1f}/s, {time.perf_counter() - t0:.0f} s) "
                  f"{rss1:.0f} MiB: growth {rss1 - rss0:+.1f} MiB; {records} records for "
                  f"{len(all_accepted)} accepted requests: lost {lost}, duplicated {dup} |")
    finally:
        server.kill(signal.SIGTERM)
    return lines, memory


def bench_kill(root: Path, data: Path, clips: list[bytes], after: float = 5.0) -> str:
    """10 clients; kill -9 the server after ``after`` s; restart; retry what was in flight."""
    from soundwatch import pipeline

    run = root / "run-mahalanobis"
    if not run.is_dir():
        run = pipeline.train(data, "mahalanobis", out=run).root
    server = Server(run, root / "kill.sqlite", root / "kill.log")
    server.start()
    total = 100000
    ids = [uuid.uuid4().hex for _ in range(total)]
    warm = load(server.url, "fan", clips, Phase("warm-up", 2), 20, 120, ids=ids[:20])
    phase = Phase("kill", 10)
    killer = threading.Timer(after, server.kill)
    killer.start()
    load(server.url, "fan", clips, phase, total - 20, after + 30, ids=ids[20:])
    killer.join()
    phase.accepted += warm.accepted
    records, lost, dup = check_records(server.db, phase.accepted)
    committed_unanswered = len(set(db_ids(server.db)) & set(phase.in_flight))
    server.start()  # restart on the same database; the clients retry their in-flight requests
    retry = Phase("retry", 1)
    load(server.url, "fan", clips, retry, len(phase.in_flight), 120, ids=phase.in_flight)
    final_ids = db_ids(server.db)
    expected = set(phase.accepted) | set(phase.in_flight)
    server.kill(signal.SIGTERM)
    exact = set(final_ids) == expected and len(final_ids) == len(expected)
    return (f"| kill -9 after {after:.0f} s of 10 clients | accepted {len(phase.accepted)}, "
            f"in flight {len(phase.in_flight)} ({', '.join(sorted(phase.errors)) or 'none'}; "
            f"of which committed {committed_unanswered}); "
            f"records {records}: lost {lost}, duplicated {dup}; after restart and retries: "
            f"{len(final_ids)} records for {len(expected)} requests, each exactly once: "
            f"{'yes' if exact else 'NO'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 requests for memory")
    parser.add_argument("--requests", type=int, default=None, help="memory-phase requests")
    parser.add_argument("--detectors", default="mahalanobis",
                        help="comma-separated detectors (default mahalanobis)")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md")
    args = parser.parse_args()
    requests = args.requests or (1000 if args.quick else 5000)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_doc import machine, usable_cores, write_section
    from soundwatch.synth import synth_machines

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="soundwatch-bench-serve-") as tmp:
        root = Path(tmp)
        data = synth_machines(root / "data", machines=["fan"], train_source=20, train_target=2,
                              test_per_group=5, seconds=10.0, seed=0)
        clips = [p.read_bytes() for p in sorted((Path(data) / "fan" / "test").glob("*.wav"))]
        lines, memory = [], []
        for name in args.detectors.split(","):
            print(f"> {name}", flush=True)
            rates, mem = bench_detector(name.strip(), root, Path(data), clips, requests)
            lines += rates
            memory.append(mem)
            print("\n".join([*rates, mem]), flush=True)
        print("> kill -9", flush=True)
        kill_line = bench_kill(root, Path(data), clips)
    flags = (" --quick" if args.quick else "") + (
        f" --requests {args.requests}" if args.requests else "") + (
        f" --detectors {args.detectors}" if args.detectors != "mahalanobis" else "")
    table = "\n".join([
        "## HTTP service (`soundwatch serve`)",
        "",
        f"Machine: {machine()}; {usable_cores()} usable cores; load average "
        f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after the run (other work on "
        "the machine shares its cores). Server and clients on the same "
        "machine (127.0.0.1), one torch thread; 10 s fan clips posted as WAV bodies (320 kB); "
        "history in SQLite (WAL). Targets: >= 40 clips/s classical, p99 <= 250 ms at 10 "
        "clients, <= 50 MB growth, no lost or duplicated record.",
        "",
        "| detector | clients | accepted | clips/s | p50 ms | p99 ms | refused |",
        "|---|---|---|---|---|---|---|",
        *lines,
        "",
        "| detector | memory and records |",
        "|---|---|",
        *memory,
        kill_line.replace("| kill", "| mahalanobis, kill", 1),
        "",
        f"Command: `.venv/bin/python benchmarks/serve.py{flags}`",
    ])
    print(table)
    if not args.no_write:
        print(f"written to {write_section('serve', table)}")


if __name__ == "__main__":
    main()
