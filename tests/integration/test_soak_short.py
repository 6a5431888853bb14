"""The soak of serve + watch on one database: 2 minutes in CI (benchmarks/soak.py runs 30)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("httpx", reason="httpx is not installed (the serve extra)")
pytest.importorskip("fastapi", reason="fastapi is not installed (the serve extra)")

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


@pytest.mark.slow
def test_a_short_soak_loses_nothing_and_stays_bounded(tmp_path):
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    r = soak.run_soak(tmp_path, seconds=120, clients=10, file_every=0.5, sample=5)
    assert r["accepted"] > 200, r["refused"]
    assert r["lost"] == r["duplicated"] == r["phantom"] == 0
    assert r["files"] > 80 and r["files_lost"] == r["files_duplicated"] == 0
    assert r["locked_in_logs"] == 0 and r["tracebacks_in_logs"] == 0
    assert r["integrity"] == "ok"
    assert not r["refused"], r["refused"]
    for proc in ("serve", "watch"):
        lo, hi = r[f"{proc}_fds"]
        assert hi - lo <= 16, (proc, "fds", lo, hi)
        lo, hi = r[f"{proc}_threads"]
        assert hi - lo <= 8, (proc, "threads", lo, hi)
        lo, hi = r[f"{proc}_rss_mib"]
        assert hi - lo <= 80, (proc, "rss", lo, hi)
    lo, hi = r["kept_clips"]
    assert hi <= 100 + 10 + 50  # --keep-clips 100, pruned every 50 uploads, 10 in flight
    # no drift (loose: the CI machine is shared): the last window's p99 within 3x the first's
    assert r["p99_last_ms"] <= 3 * r["p99_first_ms"] + 250, (r["p99_first_ms"],
                                                            r["p99_last_ms"])
